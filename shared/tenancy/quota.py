"""A tenant's plan limits against its usage: what is left today and this month, and warnings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.tenancy.plans import WARN_RATIO


def _used_today(usage: dict[str, Any], today: dt.date) -> int:
    # Counters belong to a day/month; a stale row means nothing was used since.
    return int(usage.get("daily_runs") or 0) if usage.get("usage_date") == today else 0


def _used_this_month(usage: dict[str, Any], today: dt.date) -> int:
    if usage.get("usage_month") == today.replace(day=1):
        return int(usage.get("monthly_runs") or 0)
    return 0


def quota_report(
    subscription: dict[str, Any], usage: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """Limits, usage, remaining and the 80 % / 100 % warnings of ARCHITECTURE.md."""
    today = now.date()
    windows = {
        "daily": (_used_today(usage, today), int(subscription["daily_run_limit"])),
        "monthly": (_used_this_month(usage, today), int(subscription["monthly_run_limit"])),
    }
    report: dict[str, Any] = {"plan": subscription["plan"], "warnings": []}
    for window, (used, limit) in windows.items():
        report[window] = {"used": used, "limit": limit, "remaining": max(0, limit - used)}
        if used >= limit:
            report["warnings"].append(f"{window} run limit reached: new runs are blocked")
        elif used >= WARN_RATIO * limit:
            report["warnings"].append(f"{window} runs at {used}/{limit} (80 % warning)")
    running = int(usage.get("running_runs") or 0)
    concurrent_limit = int(subscription["concurrent_run_limit"])
    report["concurrent"] = {
        "running": running,
        "limit": concurrent_limit,
        "available": max(0, concurrent_limit - running),
    }
    report["blocked"] = (
        any(used >= limit for used, limit in windows.values()) or running >= concurrent_limit
    )
    return report

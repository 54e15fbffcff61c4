"""A tenant's plan limits against its usage: what is left, when it resets, warnings and refusals."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.platform.errors import ApiError, too_many_requests
from shared.tenancy.plans import WARN_RATIO

if TYPE_CHECKING:  # the BigQuery client loads with the warehouse, on first use
    from shared.platform.warehouse import Warehouse

# How long a refused caller should wait when only the concurrency limit is full.
CONCURRENT_RETRY_SECONDS = 60


def usage_snapshot(warehouse: Warehouse, tenant_id: str, now: dt.datetime) -> dict[str, Any] | None:
    """Plan, limits, counters and running runs in one statement; None for an unknown tenant.

    `running` counts slots still held: admitted run ids whose runs are not
    terminal (see shared.scheduling.admission).
    """
    from shared.scheduling.admission import LIVE_HORIZON, live_runs_sql

    rows = warehouse.query(
        "SELECT s.plan, s.daily_run_limit, s.monthly_run_limit, s.concurrent_run_limit, "
        "u.usage_date, u.daily_runs, u.usage_month, u.monthly_runs, "
        f"(SELECT COUNT(*) FROM ({live_runs_sql(warehouse)}) AS l WHERE l.tenant_id = @t) "
        "AS running "
        f"FROM {warehouse.central('tenant_subscriptions')} AS s "
        f"LEFT JOIN {warehouse.central('tenant_usage_quotas')} AS u ON u.tenant_id = s.tenant_id "
        "WHERE s.tenant_id = @t ORDER BY s.created_at LIMIT 1",
        {"t": tenant_id, "horizon": now - LIVE_HORIZON},
        component="quota",
        tenant_id=tenant_id,
    )
    return rows[0] if rows else None


def _used_today(usage: dict[str, Any], today: dt.date) -> int:
    # Counters belong to a day/month; a stale row means nothing was used since.
    return int(usage.get("daily_runs") or 0) if usage.get("usage_date") == today else 0


def _used_this_month(usage: dict[str, Any], today: dt.date) -> int:
    if usage.get("usage_month") == today.replace(day=1):
        return int(usage.get("monthly_runs") or 0)
    return 0


def next_midnight(now: dt.datetime) -> dt.datetime:
    today = now.astimezone(dt.UTC).date()
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)


def next_month(now: dt.datetime) -> dt.date:
    first = now.astimezone(dt.UTC).date().replace(day=1)
    return (first + dt.timedelta(days=32)).replace(day=1)


def _window(used: int, limit: int) -> dict[str, Any]:
    return {
        "used": used,
        "limit": limit,
        "remaining": max(0, limit - used),
        "warning": used >= WARN_RATIO * limit,
        "exceeded": used >= limit,
    }


def quota_report(snapshot: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """Limits, usage, running runs, reset times and the 80 % / 100 % flags of ARCHITECTURE.md."""
    today = now.astimezone(dt.UTC).date()
    daily = _window(_used_today(snapshot, today), int(snapshot["daily_run_limit"]))
    monthly = _window(_used_this_month(snapshot, today), int(snapshot["monthly_run_limit"]))
    daily["resets_at"] = next_midnight(now).isoformat().replace("+00:00", "Z")
    monthly["resets_on"] = next_month(now).isoformat()
    running = int(snapshot.get("running") or 0)
    concurrent_limit = int(snapshot["concurrent_run_limit"])
    warnings = []
    for name, window in (("daily", daily), ("monthly", monthly)):
        if window["exceeded"]:
            warnings.append(f"{name} run limit reached: new runs are blocked")
        elif window["warning"]:
            warnings.append(f"{name} runs at {window['used']}/{window['limit']} (80 % warning)")
    return {
        "plan": snapshot["plan"],
        "daily": daily,
        "monthly": monthly,
        "concurrent": {
            "running": running,
            "limit": concurrent_limit,
            "available": max(0, concurrent_limit - running),
            "exceeded": running >= concurrent_limit,
        },
        "running": running,
        "warnings": warnings,
        "blocked": daily["exceeded"] or monthly["exceeded"] or running >= concurrent_limit,
    }


def refusal(tenant_id: str, snapshot: dict[str, Any], wanted: int, now: dt.datetime) -> ApiError:
    """The 429 for runs that did not fit, worded as the seed documents word it."""
    report = quota_report(snapshot, now)
    daily, monthly, concurrent = report["daily"], report["monthly"], report["concurrent"]
    if daily["used"] + wanted > daily["limit"]:
        reset = next_midnight(now)
        return too_many_requests(
            f"Daily pipeline quota exceeded. Used {daily['used']}/{daily['limit']} pipelines "
            f"today{_asked(wanted)}.",
            int((reset - now).total_seconds()),
            tenant_id=tenant_id,
            quota="daily",
            quota_reset_time=daily["resets_at"],
        )
    if monthly["used"] + wanted > monthly["limit"]:
        reset_on = next_month(now)
        reset = dt.datetime.combine(reset_on, dt.time(), dt.UTC)
        return too_many_requests(
            f"Monthly pipeline quota exceeded. Used {monthly['used']}/{monthly['limit']} "
            f"pipelines this month{_asked(wanted)}.",
            int((reset - now).total_seconds()),
            tenant_id=tenant_id,
            quota="monthly",
            quota_reset_date=reset_on.isoformat(),
        )
    return too_many_requests(
        f"Concurrent pipeline limit reached. {concurrent['running']}/{concurrent['limit']} "
        f"pipelines currently running{_asked(wanted)}.",
        CONCURRENT_RETRY_SECONDS,
        tenant_id=tenant_id,
        quota="concurrent",
    )


def _asked(wanted: int) -> str:
    return "" if wanted == 1 else f"; {wanted} runs requested"


class _Window(BaseModel):
    used: int
    limit: int
    remaining: int
    warning: bool
    exceeded: bool


class DailyWindow(_Window):
    resets_at: str


class MonthlyWindow(_Window):
    resets_on: str


class ConcurrentRuns(BaseModel):
    running: int
    limit: int
    available: int
    exceeded: bool


class QuotaReport(BaseModel):
    """GET /quota: plan limits, usage, running runs, warnings and whether runs are blocked."""

    tenant_id: str
    plan: str
    daily: DailyWindow
    monthly: MonthlyWindow
    concurrent: ConcurrentRuns
    running: int
    warnings: list[str]
    blocked: bool

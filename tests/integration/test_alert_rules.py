"""Alert rules against the emulator: each is one MERGE, and repeating it alerts once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.deps import Deps
from shared.notify import quota_alerts, run_alerts
from tests.integration.conftest import Platform

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def alerts(deps: Deps, tenant_id: str, kind: str) -> list[dict[str, Any]]:
    wh = deps.warehouse
    return wh.query(
        f"SELECT dedupe_key, subject, facts_json FROM {wh.central('tenant_notification_outbox')} "
        "WHERE tenant_id = @t AND kind = @k ORDER BY dedupe_key",
        {"t": tenant_id, "k": kind},
    )


def insert_run(deps: Deps, tenant_id: str, run_id: str, state: str, finished: dt.datetime) -> None:
    wh = deps.warehouse
    wh.execute(
        f"INSERT INTO {wh.central('tenant_pipeline_runs')} (run_id, tenant_id, config_id, "
        "pipeline, state, `trigger`, run_date, attempt, finished_at, error_code, created_at, "
        "updated_at) VALUES (@r, @t, 'pcfg_x', 'gcp_billing_to_focus', @s, 'SCHEDULE', "
        "DATE '2026-12-01', 1, @f, IF(@s = 'FAILED', 'step_failed', NULL), @f, @f)",
        {"r": run_id, "t": tenant_id, "s": state, "f": finished},
    )


def test_a_failure_after_a_success_and_the_recovery_each_alert_once(platform: Platform) -> None:
    tenant_id = platform.onboarded()["tenant_id"]
    deps = platform.deps
    states = ["SUCCEEDED", "FAILED", "FAILED", "SUCCEEDED", "SUCCEEDED"]
    for i, state in enumerate(states):
        insert_run(deps, tenant_id, f"run_{i}", state, NOW + dt.timedelta(hours=i))
        run_alerts.record_run_end(deps.warehouse, f"run_{i}", NOW + dt.timedelta(hours=i))
        run_alerts.record_run_end(deps.warehouse, f"run_{i}", NOW + dt.timedelta(hours=i))

    failed = alerts(deps, tenant_id, "pipeline_failed")
    recovered = alerts(deps, tenant_id, "pipeline_recovered")
    assert [a["dedupe_key"] for a in failed] == ["pipeline_failed:pcfg_x:run_1"]
    assert [a["dedupe_key"] for a in recovered] == ["pipeline_recovered:pcfg_x:run_3"]
    assert "step_failed" in failed[0]["subject"]


def test_quota_alerts_at_80_and_100_percent_once_per_day(platform: Platform) -> None:
    tenant_id = platform.onboarded(subscription_plan="PROFESSIONAL")["tenant_id"]  # 25 a day
    deps = platform.deps
    wh = deps.warehouse

    def use(daily: int) -> None:
        wh.execute(
            f"UPDATE {wh.central('tenant_usage_quotas')} SET usage_date = @d, daily_runs = @n, "
            "usage_month = @m, monthly_runs = @n, updated_at = @now WHERE tenant_id = @t",
            {
                "d": NOW.date(),
                "m": NOW.date().replace(day=1),
                "n": daily,
                "now": NOW,
                "t": tenant_id,
            },
        )

    use(19)
    assert quota_alerts.record_quota_alerts(wh, NOW) == 0
    use(20)
    assert quota_alerts.record_quota_alerts(wh, NOW) == 1
    assert quota_alerts.record_quota_alerts(wh, NOW) == 0
    use(25)
    assert quota_alerts.record_quota_alerts(wh, NOW) == 1
    keys = [a["dedupe_key"] for a in alerts(deps, tenant_id, "quota")]
    assert keys == ["quota:daily:2026-12-02:100", "quota:daily:2026-12-02:80"]

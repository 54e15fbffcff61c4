"""The runner evaluates a tenant's budgets after a successful run that wrote rows, once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobs.pipeline_runner import execute_run
from shared.deps import deps as current_deps
from tests.integration.conftest import Platform
from tests.integration.insights_support import seed_focus


def budget_rows(platform: Platform, tenant_id: str) -> list[dict[str, Any]]:
    wh = platform.deps.warehouse
    return wh.query(
        f"SELECT dedupe_key FROM {wh.central('tenant_notification_outbox')} "
        "WHERE tenant_id = @t AND kind LIKE 'budget_%' ORDER BY dedupe_key",
        {"t": tenant_id},
    )


def test_a_successful_run_records_crossed_budgets_once_and_a_failed_run_none(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    tenant_id, key = tenant["tenant_id"], tenant["api_key"]
    today = dt.datetime.now(dt.UTC).date()
    seed_focus(
        platform.deps.warehouse,
        tenant["dataset_id"],
        tenant_id,
        [(today, "Google Cloud", "Compute", "p", "us", "USD", "90", "90", {})],
    )
    budget = platform.tenant_call(
        "costs",
        "POST",
        "/budgets",
        key,
        json={"name": "all", "amount": "100", "forecast_thresholds": []},
    )
    assert budget.status_code == 201, budget.get_json()
    bid = budget.get_json()["budget_id"]

    def run(sql: str) -> str:
        config = platform.tenant_call(
            "pipelines",
            "POST",
            "/configs",
            key,
            json={
                "name": "etl " + sql[:20],
                "pipeline": "bq_etl",
                "schedule_cron": "0 3 * * *",
                "parameters": {
                    "sql": sql,
                    "target_table": "answers",
                    "write_disposition": "WRITE_TRUNCATE",
                },
            },
        )
        assert config.status_code == 201, config.get_json()
        started = platform.tenant_call(
            "pipelines",
            "POST",
            "/runs",
            key,
            json={"config_id": config.get_json()["config_id"], "run_date": today.isoformat()},
        )
        assert started.status_code == 202, started.get_json()
        [run_id] = started.get_json()["run_ids"]
        execute_run(current_deps(), run_id)
        got = platform.tenant_call("pipelines", "GET", f"/runs/{run_id}", key).get_json()
        return str(got["state"])

    # A failing run (a bad cast at run time) evaluates nothing. The statement analyzes as INT64,
    # the column's type, so it is BigQuery's runtime that refuses it, as the emulator does.
    assert run("SELECT CAST(CONCAT('not ', 'a number') AS INT64) AS answer") == "FAILED"
    assert budget_rows(platform, tenant_id) == []
    assert run("SELECT 42 AS answer") == "SUCCEEDED"
    period = today.strftime("%Y-%m")
    expected = [{"dedupe_key": f"budget_actual:{bid}:{period}:{p}"} for p in (50, 80)]
    assert budget_rows(platform, tenant_id) == expected
    # Another successful run: nothing new is crossed, nothing recorded twice.
    assert run("SELECT 43 AS answer") == "SUCCEEDED"
    assert budget_rows(platform, tenant_id) == expected

"""The costs function through the running local stack: summary, top movers, budgets CRUD."""

from __future__ import annotations

import datetime as dt
import decimal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import bigquery

from local import demo
from tests.e2e.stack import RunningStack, call, call_json, onboard, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("costs") / "data", env={"SCHEDULER_TICK_SECONDS": "3600"}
    )
    yield running
    assert running.stop() == 0


def seed(stack: RunningStack, dataset: str, tenant_id: str, rows: list[tuple[Any, ...]]) -> None:
    """FOCUS rows INSERTed (DML, as the FOCUS steps write) with the real client."""
    endpoints = stack.endpoints()
    target = demo.Stack(
        endpoints["gateway_url"], endpoints["emulator_url"], endpoints["project"], "unused"
    )
    client = demo.bigquery_client(target)
    structs = ", ".join(
        f"STRUCT(TIMESTAMP '{day.isoformat()} 00:00:00+00' AS s, '{service}' AS svc, "
        f"'{account}' AS acct, '{currency}' AS cur, NUMERIC '{cost}' AS cost)"
        for day, service, account, currency, cost in rows
    )
    client.query(
        f"INSERT INTO `{endpoints['project']}.{dataset}.focus_cost` (ChargePeriodStart, "
        "ProviderName, ServiceName, SubAccountId, RegionId, ChargeCategory, BillingCurrency, "
        "BilledCost, EffectiveCost, Tags, x_tenant_id, x_pipeline_id, x_run_date, x_run_id, "
        "x_ingested_at) SELECT r.s, 'Google Cloud', r.svc, r.acct, 'us', 'Usage', r.cur, r.cost, "
        "r.cost, '{}', @t, 'pcf_e2e', DATE(r.s), 'run_e2e', CURRENT_TIMESTAMP() "
        f"FROM UNNEST([{structs}]) AS r",
        job_config=bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("t", "STRING", tenant_id)]
        ),
    ).result()


def wait_for_run(stack: RunningStack, key: str, run_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, run = call(
            "GET", f"{stack.url}/pipelines/runs/{run_id}", headers={"X-API-Key": key}
        )
        if status == 200 and run["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return dict(run)
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish:\n{stack.output()[-3000:]}")


def test_summary_movers_and_budgets_crud_over_http(stack: RunningStack) -> None:
    tenant, other = onboard(stack), onboard(stack)
    headers = {"X-API-Key": tenant["api_key"]}
    today = dt.datetime.now(dt.UTC).date()
    d1, d2 = today - dt.timedelta(days=1), today - dt.timedelta(days=8)
    seed(
        stack,
        tenant["dataset_id"],
        tenant["tenant_id"],
        [
            (d1, "Compute", "p1", "USD", "70.5"),
            (d1, "Storage", "p2", "USD", "10"),
            (d2, "Compute", "p1", "USD", "5"),
            (d1, "Compute", "p1", "EUR", "3"),
        ],
    )

    status, _, summary = call(
        "GET",
        f"{stack.url}/costs/summary?from={d2}&to={today}&group_by=service",
        headers=headers,
    )
    assert status == 200, summary
    totals = {t["currency"]: decimal.Decimal(t["billed_cost"]) for t in summary["totals"]}
    assert totals == {"USD": decimal.Decimal("85.5"), "EUR": decimal.Decimal("3")}
    status, _, bad = call("GET", f"{stack.url}/costs/summary?group_by=colour", headers=headers)
    assert status == 422 and "group_by" in str(bad), bad

    status, _, movers = call("GET", f"{stack.url}/costs/top-movers?period=7d", headers=headers)
    assert status == 200, movers
    assert "Compute" in str(movers)

    status, _, budget = call_json(
        "POST",
        f"{stack.url}/costs/budgets",
        {"name": "compute", "scope": {"service": ["Compute"]}, "amount": "100", "currency": "USD"},
        headers,
    )
    assert status == 201, budget
    bid = budget["budget_id"]
    status, _, listed = call("GET", f"{stack.url}/costs/budgets", headers=headers)
    assert status == 200 and bid in str(listed)
    status, _, patched = call_json(
        "PATCH", f"{stack.url}/costs/budgets/{bid}", {"amount": "120"}, headers
    )
    assert status == 200 and decimal.Decimal(patched["amount"]) == 120, patched
    status, _, refused = call_json(
        "POST", f"{stack.url}/costs/budgets", {"name": "x", "amount": -1}, headers
    )
    assert status == 422, refused
    foreign = {"X-API-Key": other["api_key"]}
    status, _, _ = call("GET", f"{stack.url}/costs/budgets/{bid}", headers=foreign)
    assert status == 404
    status, _, _ = call("DELETE", f"{stack.url}/costs/budgets/{bid}", headers=foreign)
    assert status == 404

    status, _, _ = call("DELETE", f"{stack.url}/costs/budgets/{bid}", headers=headers)
    assert status in (200, 204)
    status, _, _ = call("GET", f"{stack.url}/costs/budgets/{bid}", headers=headers)
    assert status == 404

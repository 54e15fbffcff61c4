"""Figures for issue 20: cost API latency on 1M FOCUS rows, budget evaluation after a tick.

Run with `make bench`. Nothing here asserts a duration: timings vary by machine.
Sizes: BENCH_COST_ROWS (default 1,000,000), BENCH_BUDGET_TENANTS (default 1,000)
with BENCH_BUDGETS_PER_TENANT (default 10).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import pytest

from shared.insights import budget_alerts
from shared.tenancy.tenant_dataset import dataset_id_for
from tests.bench.test_bench_tenancy import measure
from tests.integration.conftest import Platform

NOW = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)
SERVICES = ["Compute", "Storage", "BigQuery", "Networking", "Logging"]


def fill_focus(platform: Platform, table: str, tenant_id: str, rows: int) -> None:
    """`rows` FOCUS rows over 90 days in ONE INSERT ... SELECT FROM UNNEST(GENERATE_ARRAY)."""
    services = "[" + ", ".join(f"'{s}'" for s in SERVICES) + "]"
    platform.deps.warehouse.execute(
        f"INSERT INTO {table} (ChargePeriodStart, ProviderName, ServiceName, SubAccountId, "
        "RegionId, ChargeCategory, BillingCurrency, BilledCost, EffectiveCost, Tags, "
        "x_tenant_id, x_pipeline_id, x_run_date, x_run_id, x_ingested_at) "
        "SELECT TIMESTAMP_SUB(@end, INTERVAL MOD(n, 90 * 24) HOUR), 'Google Cloud', "
        f"{services}[OFFSET(MOD(n, {len(SERVICES)}))], CONCAT('p', CAST(MOD(n, 20) AS STRING)), "
        "'us', 'Usage', 'USD', CAST(MOD(n, 97) AS NUMERIC) / 100, "
        'CAST(MOD(n, 89) AS NUMERIC) / 100, CONCAT(\'{"team":"t\', CAST(MOD(n, 7) AS STRING), '
        "'\"}'), @t, 'pcf_bench', DATE(TIMESTAMP_SUB(@end, INTERVAL MOD(n, 90 * 24) HOUR)), "
        "'run_bench', @end FROM UNNEST(GENERATE_ARRAY(1, @rows)) AS n",
        {"end": NOW, "t": tenant_id, "rows": rows},
    )


@pytest.mark.timeout(3600)  # 1M rows / 1,000 tenants outlast the suite's 300 s
def test_bench_cost_api_on_a_tenant_with_1m_focus_rows(platform: Platform) -> None:
    rows = int(os.environ.get("BENCH_COST_ROWS", "1000000"))
    body = platform.onboarded()
    wh = platform.deps.warehouse
    started = time.perf_counter()
    fill_focus(platform, wh.table(body["dataset_id"], "focus_cost"), body["tenant_id"], rows)
    print(f"BENCH cost rows loaded: {rows} in {time.perf_counter() - started:.1f} s")
    platform.travel_to(NOW)
    key = body["api_key"]

    def get(path: str) -> None:
        response = platform.tenant_call("costs", "GET", path, key)
        assert response.status_code == 200, response.get_json()

    get("/summary")  # warms the auth and plan caches
    measure(f"cost summary month to date ({rows} rows)", 50, lambda: get("/summary"))
    measure(
        "cost summary 30d by service",
        50,
        lambda: get("/summary?from=2026-02-19&to=2026-03-20&group_by=service"),
    )
    measure(
        "cost summary 30d by tag:team",
        50,
        lambda: get("/summary?from=2026-02-19&to=2026-03-20&group_by=tag:team"),
    )
    measure("cost top movers 7d", 50, lambda: get("/top-movers?period=7d"))


@pytest.mark.timeout(3600)  # 1M rows / 1,000 tenants outlast the suite's 300 s
def test_bench_budgets_of_many_tenants_after_a_tick(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = int(os.environ.get("BENCH_BUDGET_TENANTS", "1000"))
    per_tenant = int(os.environ.get("BENCH_BUDGETS_PER_TENANT", "10"))
    wh = platform.deps.warehouse
    template = platform.onboarded()
    template_table = wh.table(template["dataset_id"], "focus_cost")
    fill_focus(platform, template_table, template["tenant_id"], 200)
    suffix = platform.deps.settings.tenant_dataset_suffix
    ids = [f"tbench{i:06d}" for i in range(tenants)]
    started = time.perf_counter()
    client = wh.client
    focus_spec = platform.deps.catalog.tenant["focus_cost"]
    for tenant_id in ids:
        dataset = dataset_id_for(tenant_id, suffix)
        client.create_dataset(f"{wh.project}.{dataset}", exists_ok=True)
        # A copy of the template's rows: the setup, not what is measured. The table comes
        # from its schema file (partitioned and clustered like a tenant's); CREATE TABLE AS
        # SELECT would not pass the GoogleSQL check.
        wh.create_table(dataset, focus_spec)
        wh.execute(f"INSERT INTO {wh.table(dataset, 'focus_cost')} SELECT * FROM {template_table}")
    # Budget ids are global (an alert's dedupe key names the budget, not the tenant).
    wh.execute(
        f"INSERT INTO {wh.central('tenant_budgets')} (budget_id, tenant_id, name, scope_json, "
        "amount, currency, actual_thresholds, forecast_thresholds, created_at, updated_at) "
        "SELECT CONCAT(@prefix, t, '_', CAST(n AS STRING)), t, 'bench', "
        'IF(MOD(n, 2) = 0, \'{}\', \'{"service":["Compute"],"tag:team":["t1","t2"]}\'), '
        "CAST(10 + MOD(n, 10) * 20 AS NUMERIC), 'USD', [50, 80, 100], [100], @now, @now "
        "FROM UNNEST(@tenants) AS t, UNNEST(GENERATE_ARRAY(1, @per)) AS n",
        {"prefix": "bgt_bench_", "tenants": ids, "per": per_tenant, "now": NOW},
    )
    print(
        f"BENCH budget setup: {tenants} tenants, {tenants * per_tenant} budgets in "
        f"{time.perf_counter() - started:.1f} s"
    )
    statements = 0
    original = client.query_and_wait

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal statements
        statements += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(client, "query_and_wait", counting)
    started = time.perf_counter()
    recorded = budget_alerts.evaluate_budgets(platform.deps, ids, NOW)
    seconds = time.perf_counter() - started
    print(
        f"BENCH budgets after a tick: {tenants} tenants, {tenants * per_tenant} budgets: "
        f"{statements} statements, {seconds:.1f} s, {recorded} alerts recorded"
    )
    statements = 0
    started = time.perf_counter()
    again = budget_alerts.evaluate_budgets(platform.deps, ids, NOW)
    print(
        f"BENCH budgets again (nothing new): {statements} statements, "
        f"{time.perf_counter() - started:.1f} s, {again} recorded"
    )

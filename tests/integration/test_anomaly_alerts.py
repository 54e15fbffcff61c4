"""The cost anomaly rule on a tenant's focus_cost: spikes beyond median + MAD and a minimum."""

from __future__ import annotations

import datetime as dt
import decimal
import json

from shared.deps import Deps
from shared.notify import anomaly
from tests.integration.conftest import Platform

NOW = dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 12, 1)


def seed(deps: Deps, tenant_id: str, costs: dict[tuple[str, dt.date], str]) -> None:
    wh = deps.warehouse
    rows = [
        f"(TIMESTAMP '{day.isoformat()} 00:00:00+00', 'Google Cloud', '{service}', 'USD', "
        f"PARSE_NUMERIC('{cost}'), @t, 'p', DATE '{day.isoformat()}', 'run_x', @now)"
        for (service, day), cost in costs.items()
    ]
    wh.execute(
        f"INSERT INTO {wh.table(tenant_id, 'focus_cost')} (ChargePeriodStart, ProviderName, "
        "ServiceName, BillingCurrency, BilledCost, x_tenant_id, x_pipeline_id, x_run_date, "
        "x_run_id, x_ingested_at) VALUES " + ", ".join(rows),
        {"t": tenant_id, "now": NOW},
    )


def history(service: str, base: int, jitter: int) -> dict[tuple[str, dt.date], str]:
    return {
        (service, DAY - dt.timedelta(days=d)): str(base + (d % 5) * jitter)
        for d in range(1, anomaly.BASELINE_DAYS + 1)
    }


def test_a_spike_alerts_once_while_noise_and_small_changes_do_not(platform: Platform) -> None:
    tenant_id = platform.onboarded()["tenant_id"]
    deps = platform.deps
    costs = {
        **history("Compute Engine", 1000, 10),
        ("Compute Engine", DAY): "1900",  # a spike far beyond the noise
        **history("BigQuery", 1000, 40),
        ("BigQuery", DAY): "1160",  # inside 3 scaled MADs of its own noise
        **history("Cloud Storage", 2, 0),
        ("Cloud Storage", DAY): "40",  # 20x, but below the minimum absolute change
    }
    seed(deps, tenant_id, costs)

    first = anomaly.record_anomalies(deps.warehouse, tenant_id, tenant_id, DAY, NOW)
    again = anomaly.record_anomalies(deps.warehouse, tenant_id, tenant_id, DAY, NOW)

    assert (first, again) == (1, 0)
    wh = deps.warehouse
    [row] = wh.query(
        f"SELECT dedupe_key, facts_json FROM {wh.central('tenant_notification_outbox')} "
        "WHERE tenant_id = @t AND kind = 'anomaly'",
        {"t": tenant_id},
    )
    assert row["dedupe_key"] == "anomaly:Google Cloud/Compute Engine/USD:2026-12-01"
    facts = json.loads(row["facts_json"])
    assert facts["direction"] == "spike"
    assert decimal.Decimal(facts["cost"]) == decimal.Decimal("1900")
    assert decimal.Decimal(facts["baseline_median"]) == decimal.Decimal("1020")

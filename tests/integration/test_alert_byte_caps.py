"""Alert MERGEs that read tenant cost data run under the tenant plan's byte cap."""

from __future__ import annotations

import datetime as dt

from shared.deps import Deps
from shared.insights.budget_alerts import evaluate_budgets
from shared.notify.anomaly import record_anomalies
from shared.tenancy.plans import PLANS
from tests.integration.conftest import Platform, emulator_deps
from tests.integration.insights_support import seed_focus
from tests.integration.test_api_keys import RecordingClient

NOW = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


def recording(platform: Platform) -> Deps:
    return emulator_deps(platform, RecordingClient, clock=lambda: NOW)


def plan_cap(platform: Platform, tenant_id: str) -> int:
    wh = platform.deps.warehouse
    rows = wh.query(
        f"SELECT plan FROM {wh.central('tenant_subscriptions')} WHERE tenant_id = @t "
        "ORDER BY created_at DESC LIMIT 1",
        {"t": tenant_id},
    )
    return PLANS[str(rows[0]["plan"])].max_bytes_billed


def test_budget_alert_merge_carries_the_plans_byte_cap(platform: Platform) -> None:
    body = platform.onboarded()
    tenant_id, key = body["tenant_id"], body["api_key"]
    rows = [
        (dt.date(2026, 3, d), "Google Cloud", "Compute", "p", "us", "USD", "10", "10", {})
        for d in range(1, 10)
    ]
    seed_focus(platform.deps.warehouse, body["dataset_id"], tenant_id, rows)
    platform.travel_to(NOW)
    created = platform.tenant_call(
        "costs", "POST", "/budgets", key, json={"name": "all", "amount": "100"}
    )
    assert created.status_code == 201, created.get_json()
    RecordingClient.caps.clear()

    # 90 of 100: the 50 and 80 % thresholds (and the forecast's 100 %) are crossed.
    assert evaluate_budgets(recording(platform), [tenant_id], NOW) >= 2

    merges = [cap for component, cap in RecordingClient.caps if component == "budget_alerts"]
    # The tenants-with-budgets SELECT reads only central tables; the MERGE is capped.
    assert merges[-1] == plan_cap(platform, tenant_id)
    assert merges[-1] is not None


def test_anomaly_merge_carries_the_byte_cap_it_is_given(platform: Platform) -> None:
    body = platform.onboarded()
    deps = recording(platform)
    RecordingClient.caps.clear()

    record_anomalies(
        deps.warehouse,
        body["tenant_id"],
        body["dataset_id"],
        NOW.date(),
        NOW,
        maximum_bytes_billed=12345678,
    )

    assert ("notify_anomaly", 12345678) in RecordingClient.caps

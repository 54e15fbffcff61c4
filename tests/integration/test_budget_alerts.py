"""Budget alert evaluation on the emulator: thresholds crossed once per month, scopes, tenants."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from shared.insights.budget_alerts import evaluate_budgets
from tests.integration.conftest import Platform
from tests.integration.insights_support import seed_focus

NOW = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


def outbox(platform: Platform) -> list[dict[str, Any]]:
    wh = platform.deps.warehouse
    return wh.query(
        f"SELECT tenant_id, dedupe_key, kind, status, facts_json FROM "
        f"{wh.central('tenant_notification_outbox')} ORDER BY dedupe_key"
    )


def test_thresholds_are_recorded_once_per_month_however_often_evaluation_repeats(
    platform: Platform,
) -> None:
    body = platform.onboarded()
    tenant_id, key = body["tenant_id"], body["api_key"]
    # 9 complete days of 10 USD of Compute (tag team=core), plus noise out of scope.
    rows = [
        (
            dt.date(2026, 3, d),
            "Google Cloud",
            "Compute",
            "p",
            "us",
            "USD",
            "10",
            "10",
            {"team": "core"},
        )
        for d in range(1, 10)
    ] + [(dt.date(2026, 3, 2), "Google Cloud", "Storage", "p", "us", "USD", "500", "500", {})]
    seed_focus(platform.deps.warehouse, body["dataset_id"], tenant_id, rows)
    platform.travel_to(NOW)
    budget = platform.tenant_call(
        "costs",
        "POST",
        "/budgets",
        key,
        json={
            "name": "core",
            "scope": {"service": ["Compute"], "tag:team": ["core"]},
            "amount": "150",
        },
    ).get_json()
    other_tag = platform.tenant_call(
        "costs",
        "POST",
        "/budgets",
        key,
        json={"name": "data", "scope": {"tag:team": ["data"]}, "amount": "1"},
    )
    assert other_tag.status_code == 201
    # actual 90 of 150 = 60 % -> 50; forecast 90 + 10 x 22 = 310 -> 100.
    assert evaluate_budgets(platform.deps, [tenant_id], NOW) == 2
    assert evaluate_budgets(platform.deps, [tenant_id], NOW) == 0
    bid = budget["budget_id"]
    recorded = outbox(platform)
    assert [r["dedupe_key"] for r in recorded] == [
        f"budget_actual:{bid}:2026-03:50",
        f"budget_forecast:{bid}:2026-03:100",
    ]
    assert {r["status"] for r in recorded} == {"PENDING"}
    facts = json.loads(recorded[0]["facts_json"])
    assert (facts["threshold_percent"], facts["currency"], facts["period"]) == (
        50,
        "USD",
        "2026-03",
    )
    # More spend crosses 80 %: only the new threshold is recorded.
    seed_focus(
        platform.deps.warehouse,
        body["dataset_id"],
        tenant_id,
        [
            (
                dt.date(2026, 3, 10),
                "Google Cloud",
                "Compute",
                "p",
                "us",
                "USD",
                "35",
                "35",
                {"team": "core"},
            )
        ],
    )
    assert evaluate_budgets(platform.deps, [tenant_id], NOW) == 1
    assert evaluate_budgets(platform.deps, [tenant_id], NOW) == 0
    # A new month starts afresh.
    april = dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC)
    assert evaluate_budgets(platform.deps, [tenant_id], april) == 1  # forecast from March's rate
    keys = [r["dedupe_key"] for r in outbox(platform)]
    assert f"budget_actual:{bid}:2026-03:80" in keys
    assert f"budget_forecast:{bid}:2026-04:100" in keys
    assert len(keys) == 4

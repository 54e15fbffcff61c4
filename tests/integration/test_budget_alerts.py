"""Budget alert evaluation on the emulator: thresholds crossed once per month, scopes, tenants."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from shared.insights.budget_alerts import evaluate_budgets
from tests.integration.conftest import Platform
from tests.integration.insights_support import CostRow, seed_focus

NOW = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


def outbox(platform: Platform) -> list[dict[str, Any]]:
    wh = platform.deps.warehouse
    return wh.query(
        f"SELECT tenant_id, dedupe_key, kind, status, facts_json FROM "
        f"{wh.central('tenant_notification_outbox')} WHERE kind LIKE 'budget_%' ORDER BY dedupe_key"
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
    # A new month starts afresh: on April 1 nothing is spent yet, but the last 7
    # complete days (March 25-31, 10 a day) forecast 10 x 30 = 300 >= 150.
    seed_focus(
        platform.deps.warehouse,
        body["dataset_id"],
        tenant_id,
        [
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
            for d in range(25, 32)
        ],
    )
    april = dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC)
    assert evaluate_budgets(platform.deps, [tenant_id], april) == 1
    assert evaluate_budgets(platform.deps, [tenant_id], april) == 0
    keys = [r["dedupe_key"] for r in outbox(platform)]
    assert f"budget_actual:{bid}:2026-03:80" in keys
    assert f"budget_forecast:{bid}:2026-04:100" in keys
    assert len(keys) == 4


def row(day: int, service: str, billed: str, currency: str = "USD", **tags: str) -> CostRow:
    return (
        dt.date(2026, 3, day),
        "Google Cloud",
        service,
        "p",
        "us",
        currency,
        billed,
        billed,
        tags,
    )


def test_one_statement_evaluates_several_tenants_each_against_its_own_costs(
    platform: Platform,
) -> None:
    a, b, idle = platform.onboarded(), platform.onboarded(), platform.onboarded()
    wh = platform.deps.warehouse
    seed_focus(wh, a["dataset_id"], a["tenant_id"], [row(2, "Compute", "100", team="web")])
    # B spends far more, in the same service and tag: it must not count for A.
    seed_focus(wh, b["dataset_id"], b["tenant_id"], [row(2, "Compute", "9000", team="web")])
    # Tenant A's spend in another currency never counts against a USD budget.
    seed_focus(wh, a["dataset_id"], a["tenant_id"], [row(3, "Compute", "9000", "EUR", team="web")])
    platform.travel_to(NOW)
    created = {}
    for body, scope in ((a, {"tag:team": ["web", "ops"]}), (b, {"service": ["Storage"]})):
        response = platform.tenant_call(
            "costs",
            "POST",
            "/budgets",
            body["api_key"],
            json={
                "name": "web",
                "scope": scope,
                "amount": "1000",
                "currency": "USD",
                "forecast_thresholds": [],
            },
        )
        assert response.status_code == 201, response.get_json()
        created[body["tenant_id"]] = response.get_json()["budget_id"]
    tenants = [a["tenant_id"], b["tenant_id"], idle["tenant_id"], "not a tenant; DROP"]
    # A: 100 of 1000 crosses nothing; B: nothing in Storage.
    assert evaluate_budgets(platform.deps, tenants, NOW) == 0
    seed_focus(wh, a["dataset_id"], a["tenant_id"], [row(4, "Compute", "450", team="ops")])
    assert evaluate_budgets(platform.deps, tenants, NOW) == 1
    recorded = outbox(platform)
    assert [(r["tenant_id"], r["dedupe_key"]) for r in recorded] == [
        (a["tenant_id"], f"budget_actual:{created[a['tenant_id']]}:2026-03:50")
    ]
    # A decimal string (BigQuery writes "550", bqemulator "550.000000000").
    assert decimal.Decimal(json.loads(recorded[0]["facts_json"])["actual"]) == 550


def test_a_deleted_budget_or_an_unmatched_tag_alerts_nobody(platform: Platform) -> None:
    body = platform.onboarded()
    wh = platform.deps.warehouse
    # A tag value that only looks like the scope's ("core" inside "score", "c.re").
    seed_focus(
        wh,
        body["dataset_id"],
        body["tenant_id"],
        [row(2, "Compute", "500", team="score"), row(3, "Compute", "500", team="cxre")],
    )
    platform.travel_to(NOW)
    key = body["api_key"]
    tagged = platform.tenant_call(
        "costs",
        "POST",
        "/budgets",
        key,
        json={"name": "core", "scope": {"tag:team": ["c.re", "core"]}, "amount": "10"},
    ).get_json()
    gone = platform.tenant_call(
        "costs", "POST", "/budgets", key, json={"name": "all", "scope": {}, "amount": "10"}
    ).get_json()
    assert platform.tenant_call(
        "costs", "DELETE", f"/budgets/{gone['budget_id']}", key
    ).status_code in (200, 204)
    assert evaluate_budgets(platform.deps, [body["tenant_id"]], NOW) == 0
    assert outbox(platform) == []
    assert tagged["budget_id"]

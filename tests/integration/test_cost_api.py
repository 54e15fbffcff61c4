"""The cost API on the emulator: summaries per currency and group, filters, limits, top movers."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest

from shared.insights import cost_query
from tests.integration.conftest import Platform
from tests.integration.insights_support import CostRow, seed_focus

D = dt.date
TODAY = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)

ROWS: list[CostRow] = [
    (
        D(2026, 3, 1),
        "Google Cloud",
        "Compute Engine",
        "proj-a",
        "us-east1",
        "USD",
        "10.123456789",
        "9.5",
        {"team": "core"},
    ),
    (
        D(2026, 3, 1),
        "Google Cloud",
        "Cloud Storage",
        "proj-b",
        "europe-west1",
        "USD",
        "0.000000001",
        "0.000000001",
        {"team": "data"},
    ),
    (
        D(2026, 3, 2),
        "Google Cloud",
        "Compute Engine",
        "proj-a",
        "us-east1",
        "USD",
        "20",
        "19",
        {"team": "core"},
    ),
    (
        D(2026, 3, 2),
        "Microsoft",
        "Virtual Machines",
        "sub-1",
        "westeurope",
        "EUR",
        "7.25",
        "7.25",
        {},
    ),
    # Outside the asked range: must not count (and must be pruned).
    (
        D(2026, 2, 28),
        "Google Cloud",
        "Compute Engine",
        "proj-a",
        "us-east1",
        "USD",
        "1000",
        "1000",
        {"team": "core"},
    ),
]


@pytest.fixture
def tenant(platform: Platform) -> dict[str, Any]:
    body = platform.onboarded()
    seed_focus(platform.deps.warehouse, body["dataset_id"], body["tenant_id"], ROWS)
    platform.travel_to(TODAY)
    return body


def get(platform: Platform, key: str, path: str) -> Any:
    return platform.tenant_call("costs", "GET", path, key)


def test_totals_are_per_billing_currency_exact_and_never_added(
    platform: Platform, tenant: dict[str, Any]
) -> None:
    response = get(platform, tenant["api_key"], "/summary?from=2026-03-01&to=2026-03-31")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["currencies"] == ["EUR", "USD"]
    totals = {t["currency"]: t for t in body["totals"]}
    assert decimal.Decimal(totals["USD"]["billed_cost"]) == decimal.Decimal("30.123456790")
    assert decimal.Decimal(totals["USD"]["effective_cost"]) == decimal.Decimal("28.500000001")
    assert decimal.Decimal(totals["EUR"]["billed_cost"]) == decimal.Decimal("7.25")
    assert "never added" in body["currency_note"]
    usd_days = {
        p["date"]: p["billed_cost"]
        for s in body["series"]
        if s["currency"] == "USD"
        for p in s["daily"]
    }
    assert decimal.Decimal(usd_days["2026-03-01"]) == decimal.Decimal("10.123456790")
    assert set(usd_days) == {"2026-03-01", "2026-03-02"}


def test_group_by_two_dimensions_and_a_tag_filter(
    platform: Platform, tenant: dict[str, Any]
) -> None:
    response = get(
        platform,
        tenant["api_key"],
        "/summary?from=2026-03-01&to=2026-03-31&group_by=service,tag:team&provider=Google%20Cloud",
    )
    assert response.status_code == 200, response.get_json()
    groups = {(g["key"]["service"], g["key"]["tag:team"]): g for g in response.get_json()["groups"]}
    assert set(groups) == {("Compute Engine", "core"), ("Cloud Storage", "data")}
    assert decimal.Decimal(groups[("Compute Engine", "core")]["billed_cost"]) == decimal.Decimal(
        "30.123456789"
    )
    assert [p["date"] for p in groups[("Compute Engine", "core")]["daily"]] == [
        "2026-03-01",
        "2026-03-02",
    ]
    filtered = get(
        platform, tenant["api_key"], "/summary?from=2026-03-01&to=2026-03-31&tag:team=data"
    )
    assert [t["billed_cost"] for t in filtered.get_json()["totals"]] == ["1E-9"] or [
        decimal.Decimal(t["billed_cost"]) for t in filtered.get_json()["totals"]
    ] == [decimal.Decimal("0.000000001")]


def test_tag_groups_and_filters_combine_with_plain_filters(
    platform: Platform, tenant: dict[str, Any]
) -> None:
    response = get(
        platform,
        tenant["api_key"],
        "/summary?from=2026-03-01&to=2026-03-31&group_by=tag:team"
        "&service=Compute%20Engine,Cloud%20Storage&tag:team=core,ops",
    )
    assert response.status_code == 200, response.get_json()
    groups = response.get_json()["groups"]
    assert [(g["key"], g["currency"]) for g in groups] == [({"tag:team": "core"}, "USD")]
    assert decimal.Decimal(groups[0]["billed_cost"]) == decimal.Decimal("30.123456789")
    untagged = get(
        platform, tenant["api_key"], "/summary?from=2026-03-01&to=2026-03-31&group_by=tag:team"
    ).get_json()["groups"]
    # Rows without the tag are a group of their own (key null), never dropped;
    # groups come by currency, the largest BilledCost first.
    assert [
        (g["key"]["tag:team"], g["currency"], decimal.Decimal(g["billed_cost"])) for g in untagged
    ] == [
        (None, "EUR", decimal.Decimal("7.25")),
        ("core", "USD", decimal.Decimal("30.123456789")),
        ("data", "USD", decimal.Decimal("0.000000001")),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2025-01-01&to=2026-02-01", "to"),
        ("group_by=owner", "group_by"),
        ("group_by=service,region,provider", "group_by"),
        ("colour=red", "filter.colour"),
        ("from=yesterday", "from"),
        ("tag:te%22am=x", 'filter.tag:te"am'),
    ],
)
def test_bad_queries_are_422_naming_the_field(
    platform: Platform, tenant: dict[str, Any], query: str, field: str
) -> None:
    response = get(platform, tenant["api_key"], f"/summary?{query}")
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == field


def test_more_groups_than_the_limit_is_a_422_that_says_so(
    platform: Platform, tenant: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cost_query, "MAX_GROUPS", 2)
    response = get(
        platform, tenant["api_key"], "/summary?from=2026-03-01&to=2026-03-31&group_by=sub_account"
    )
    assert response.status_code == 422
    assert response.get_json()["error"] == "too_many_groups"
    assert "more than 2 groups" in response.get_json()["detail"]


def test_a_tenant_sees_only_its_own_costs(platform: Platform, tenant: dict[str, Any]) -> None:
    other = platform.onboarded()
    response = get(platform, other["api_key"], "/summary?from=2026-03-01&to=2026-03-31")
    assert response.status_code == 200
    assert response.get_json()["totals"] == []
    assert get(platform, "", "/summary").status_code == 401


def test_top_movers_compare_against_the_previous_period_of_the_same_length(
    platform: Platform, tenant: dict[str, Any]
) -> None:
    response = get(platform, tenant["api_key"], "/top-movers?period=2d&to=2026-03-02")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["current"] == {"from": "2026-03-01", "to": "2026-03-02"}
    assert body["previous"] == {"from": "2026-02-27", "to": "2026-02-28"}
    services = [m for m in body["movers"] if m["dimension"] == "service"]
    top = services[0]
    assert (top["value"], top["currency"]) == ("Compute Engine", "USD")
    assert decimal.Decimal(top["change"]) == decimal.Decimal("-971.5")
    assert decimal.Decimal(top["previous_effective_cost"]) == decimal.Decimal("1000")
    accounts = {
        (m["value"], m["currency"]): m for m in body["movers"] if m["dimension"] == "sub_account"
    }
    assert set(accounts) == {("proj-a", "USD"), ("proj-b", "USD"), ("sub-1", "EUR")}
    assert decimal.Decimal(accounts[("proj-a", "USD")]["change"]) == decimal.Decimal("-971.5")
    assert accounts[("proj-a", "USD")]["change_percent"] == "-97.2"
    assert decimal.Decimal(accounts[("sub-1", "EUR")]["current_effective_cost"]) == 7.25
    assert accounts[("sub-1", "EUR")]["change_percent"] is None
    assert [m["dimension"] for m in body["movers"]] == ["service"] * 3 + ["sub_account"] * 3
    assert [m["value"] for m in body["movers"][:3]] == [
        "Compute Engine",
        "Virtual Machines",
        "Cloud Storage",
    ]
    limited = get(platform, tenant["api_key"], "/top-movers?period=2d&to=2026-03-02&limit=1")
    assert [m["value"] for m in limited.get_json()["movers"]] == ["Compute Engine", "proj-a"]
    assert get(platform, tenant["api_key"], "/top-movers?period=year").status_code == 422

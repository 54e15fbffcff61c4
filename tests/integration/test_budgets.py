"""Budgets CRUD on the emulator: validation naming the field, currency, idempotency, tenants."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.integration.conftest import Platform
from tests.integration.insights_support import seed_focus

NOW = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)


@pytest.fixture
def tenant(platform: Platform) -> dict[str, Any]:
    body = platform.onboarded()
    seed_focus(
        platform.deps.warehouse,
        body["dataset_id"],
        body["tenant_id"],
        [(dt.date(2026, 3, 1), "Microsoft", "VMs", "sub-1", "westeurope", "EUR", "1", "1", {})],
    )
    platform.travel_to(NOW)
    return body


def call(platform: Platform, tenant: dict[str, Any], method: str, path: str, **kw: Any) -> Any:
    return platform.tenant_call("costs", method, f"/budgets{path}", tenant["api_key"], **kw)


BODY = {"name": "VMs", "scope": {"service": ["VMs"]}, "amount": "1500.50"}


def test_a_budget_is_created_with_defaults_read_listed_patched_and_deleted(
    platform: Platform, tenant: dict[str, Any]
) -> None:
    created = call(platform, tenant, "POST", "/", json=BODY)
    assert created.status_code == 201, created.get_json()
    budget = created.get_json()
    assert budget["currency"] == "EUR"  # the currency of the tenant's costs
    assert budget["amount"] == "1500.5"
    assert (budget["actual_thresholds"], budget["forecast_thresholds"]) == ([50, 80, 100], [100])
    path = f"/{budget['budget_id']}"
    assert call(platform, tenant, "GET", path).get_json()["name"] == "VMs"
    assert [b["budget_id"] for b in call(platform, tenant, "GET", "/").get_json()["budgets"]] == [
        budget["budget_id"]
    ]
    patched = call(
        platform, tenant, "PATCH", path, json={"amount": "2000", "forecast_thresholds": []}
    )
    assert patched.status_code == 200, patched.get_json()
    assert (patched.get_json()["amount"], patched.get_json()["forecast_thresholds"]) == ("2000", [])
    assert patched.get_json()["scope"] == {"service": ["VMs"]}
    replaced = call(platform, tenant, "PUT", path, json={"name": "All", "amount": "10"})
    assert replaced.get_json()["scope"] == {}
    assert call(platform, tenant, "DELETE", path).status_code == 200
    assert call(platform, tenant, "GET", path).status_code == 404
    assert call(platform, tenant, "DELETE", path).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"currency": "USD"}, "currency"),
        ({"scope": {"owner": ["x"]}}, "scope.owner"),
        ({"scope": {"service": []}}, "scope.service"),
        ({"actual_thresholds": [0]}, "actual_thresholds"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_budgets_are_422_naming_the_field_and_nothing_is_written(
    platform: Platform, tenant: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    response = call(platform, tenant, "POST", "/", json={**BODY, **change})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == field
    assert call(platform, tenant, "GET", "/").get_json()["budgets"] == []


def test_a_replayed_idempotency_key_creates_one_budget(
    platform: Platform, tenant: dict[str, Any]
) -> None:
    headers = {"Idempotency-Key": "budget-1"}
    first = call(platform, tenant, "POST", "/", json=BODY, headers=headers)
    again = call(platform, tenant, "POST", "/", json=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["budget_id"] == again.get_json()["budget_id"]
    other = call(platform, tenant, "POST", "/", json={**BODY, "amount": "9"}, headers=headers)
    assert other.status_code == 409
    assert len(call(platform, tenant, "GET", "/").get_json()["budgets"]) == 1


def test_another_tenants_budget_is_a_404_for_every_verb(
    platform: Platform, tenant: dict[str, Any]
) -> None:
    budget_id = call(platform, tenant, "POST", "/", json=BODY).get_json()["budget_id"]
    intruder = platform.onboarded()
    for method, body in (
        ("GET", None),
        ("PATCH", {"amount": "1"}),
        ("PUT", BODY),
        ("DELETE", None),
    ):
        response = platform.tenant_call(
            "costs", method, f"/budgets/{budget_id}", intruder["api_key"], json=body
        )
        assert response.status_code in (404, 422), (method, response.get_json())
        assert response.status_code == 404 or method == "PUT", method
    # Still there, unchanged, for its owner.
    assert call(platform, tenant, "GET", f"/{budget_id}").get_json()["amount"] == "1500.5"
    # A tenant without costs budgets in USD.
    usd = platform.tenant_call("costs", "POST", "/budgets", intruder["api_key"], json=BODY)
    assert usd.get_json()["currency"] == "USD"

"""Golden GCP export -> FOCUS 1.2: hand-written export rows, hand-computed FOCUS rows, exact."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from shared.pipelines.context import StepError
from shared.sources.gcp import mapping as focus
from shared.sources.gcp import reader as gcp_billing
from tests.integration.conftest import Platform
from tests.integration.focus_support import FocusTenant, make_tenant

DAY = dt.date(2026, 11, 10)
UTC = dt.UTC


def ts(day: dt.date, hour: int, minute: int = 0) -> str:
    return f"{day.isoformat()} {hour:02d}:{minute:02d}:00 UTC"


def row(key: str, **fields: Any) -> dict[str, Any]:
    """An export row; `key` goes into sku.description so the test can find the FOCUS row."""
    base: dict[str, Any] = {
        "billing_account_id": "01A2B3-C4D5E6-F7A8B9",
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": "2E27-4F75-95CD", "description": key},
        "usage_start_time": ts(DAY, 3),
        "usage_end_time": ts(DAY, 4),
        "project": {
            "id": "acme-web-prod",
            "number": "310443220117",
            "name": "Web Prod",
            "labels": [{"key": "team", "value": "web"}],
            "ancestry_numbers": "/123456789012/201/",
            "ancestors": [
                {"resource_name": "projects/310443220117", "display_name": "Web Prod"},
                {"resource_name": "organizations/123456789012", "display_name": "acme.example"},
            ],
        },
        "labels": [],
        "system_labels": [],
        "location": {
            "location": "us-central1-a",
            "country": "US",
            "region": "us-central1",
            "zone": "us-central1-a",
        },
        "resource": {
            "name": "vm-1",
            "global_name": "//compute.googleapis.com/projects/acme-web-prod/zones/"
            "us-central1-a/instances/vm-1",
        },
        "tags": [],
        "export_time": ts(DAY, 9),
        "cost": 0.0,
        "currency": "USD",
        "currency_conversion_rate": 1.0,
        "usage": {
            "amount": 7200.0,
            "unit": "seconds",
            "amount_in_pricing_units": 2.0,
            "pricing_unit": "hour",
        },
        "credits": [],
        "invoice": {"month": "202611", "publisher_type": "GOOGLE"},
        "cost_type": "regular",
        "cost_at_list": 0.0,
        "price": {
            "effective_price": 0.031611,
            "tier_start_amount": 0.0,
            "unit": "hour",
            "pricing_unit_quantity": 1.0,
        },
        "transaction_type": "GOOGLE",
        "seller_name": "Google",
    }
    base.update(fields)
    return base


CUD_ID = "projects/310443220117/regions/us-central1/commitments/cud-a"
GOLDEN = [
    row(
        "credits-labels",
        cost=10.123456,
        cost_at_list=12.5,
        credits=[
            {
                "name": "Sustained use",
                "amount": -1.1,
                "full_name": "Sustained use",
                "id": "sud-1",
                "type": "SUSTAINED_USAGE_DISCOUNT",
            },
            {
                "name": "CUD cpu",
                "amount": -2.000001,
                "full_name": "CUD cpu us-central1",
                "id": CUD_ID,
                "type": "COMMITTED_USAGE_DISCOUNT",
            },
        ],
        labels=[{"key": "env", "value": "prod"}, {"key": "app", "value": 'we"b'}],
        tags=[{"key": "team", "value": "finops", "inherited": True, "namespace": "123"}],
    ),
    row(
        "tax-no-project",
        service={"id": "", "description": "Invoice"},
        sku={"id": "", "description": "tax-no-project"},
        project=None,
        location=None,
        resource=None,
        usage={"amount": 0.0, "unit": None, "amount_in_pricing_units": 0.0, "pricing_unit": None},
        price=None,
        cost_type="tax",
        cost=1.5,
        cost_at_list=1.5,
    ),
    row(
        "adjustment",
        cost_type="adjustment",
        cost=-0.75,
        cost_at_list=-0.75,
        adjustment_info={
            "id": "adj-1",
            "description": "SLA credit",
            "mode": "MANUAL_ADJUSTMENT",
            "type": "GENERAL_ADJUSTMENT",
        },
    ),
    row(
        "rounding",
        service={"id": "", "description": "Invoice"},
        project=None,
        cost_type="rounding_error",
        cost=0.000001,
        cost_at_list=0.000001,
    ),
    row(
        "eur",
        currency="EUR",
        currency_conversion_rate=0.92,
        cost=3.333333,
        cost_at_list=3.333333,
        credits=[
            {
                "name": "Promo",
                "amount": -0.333333,
                "full_name": "Promo",
                "id": "promo-1",
                "type": "PROMOTION",
            }
        ],
    ),
    # Float traps: 0.1 and 0.2 are not exact in binary; the NUMERIC copy must be.
    row(
        "float-a",
        cost=0.1,
        cost_at_list=0.1,
        credits=[
            {"name": "Free", "amount": -0.1, "full_name": "Free", "id": "ft", "type": "FREE_TIER"}
        ],
    ),
    row(
        "float-b",
        cost=0.2,
        cost_at_list=0.3,
        usage={
            "amount": 1.5e15,
            "unit": "byte-seconds",
            "amount_in_pricing_units": 1e-10,
            "pricing_unit": "gibibyte month",
        },
    ),
    row("big", cost=123456.789012, cost_at_list=130000.000001),
]
# Hand-computed: 10.123456 - 1.1 - 2.000001 + 1.5 - 0.75 + 0.000001 + 3.333333 - 0.333333
#                + 0.1 - 0.1 + 0.2 + 123456.789012
EXPECTED_BILLED = Decimal("123467.762468")
EXPECTED_LIST = Decimal(
    "130016.983335"
)  # 12.5 + 1.5 - 0.75 + 0.000001 + 3.333333 + 0.1 + 0.3 + 130000.000001


@pytest.fixture
def tenant(platform: Platform) -> FocusTenant:
    t = make_tenant(platform)
    assert t.seed(GOLDEN) == len(GOLDEN)
    return t


def run_pipeline(tenant: FocusTenant, day: dt.date, **params: Any) -> None:
    gcp_billing.extract(tenant.ctx("extract", day, **params))
    focus.convert_gcp(tenant.ctx("convert", day, **params))


def focus_rows(tenant: FocusTenant) -> dict[str, dict[str, Any]]:
    rows = tenant.query("SELECT * FROM {focus}")
    return {r["ChargeDescription"]: r for r in rows}


def test_golden_rows_map_to_hand_computed_focus_columns(tenant: FocusTenant) -> None:
    run_pipeline(tenant, DAY, lookback_days=0)
    rows = focus_rows(tenant)
    assert len(rows) == len(GOLDEN)

    a = rows["credits-labels"]
    assert a["BilledCost"] == Decimal("7.023455")
    assert a["EffectiveCost"] == Decimal("7.023455")
    assert a["ContractedCost"] == Decimal("10.123456")
    assert a["ListCost"] == Decimal("12.5")
    assert (a["ChargeCategory"], a["ChargeClass"], a["ChargeFrequency"]) == (
        "Usage",
        None,
        "Usage-Based",
    )
    assert a["PricingCategory"] == "Committed"
    assert a["CommitmentDiscountId"] == CUD_ID
    assert a["CommitmentDiscountCategory"] == "Usage"
    assert a["CommitmentDiscountStatus"] == "Used"
    assert a["CommitmentDiscountName"] == "CUD cpu us-central1"
    assert json.loads(a["Tags"]) == {"app": 'we"b', "env": "prod", "123/team": "finops"}
    assert (a["SubAccountId"], a["SubAccountName"], a["SubAccountType"]) == (
        "acme-web-prod",
        "Web Prod",
        "Project",
    )
    assert (a["RegionId"], a["RegionName"], a["AvailabilityZone"]) == (
        "us-central1",
        "Iowa",
        "us-central1-a",
    )
    assert a["ResourceId"].endswith("/instances/vm-1") and a["ResourceName"] == "vm-1"
    assert (a["ConsumedQuantity"], a["ConsumedUnit"]) == (Decimal(7200), "Seconds")
    assert (a["PricingQuantity"], a["PricingUnit"]) == (Decimal(2), "Hours")
    assert a["InvoiceId"] == "01A2B3-C4D5E6-F7A8B9/202611"
    assert a["ContractedUnitPrice"] == Decimal("0.031611")
    assert (a["ServiceName"], a["ServiceCategory"], a["ServiceSubcategory"]) == (
        "Compute Engine",
        "Compute",
        "Virtual Machines",
    )
    assert (a["ProviderName"], a["PublisherName"], a["InvoiceIssuerName"]) == ("Google Cloud",) * 3
    assert a["SkuId"] == "2E27-4F75-95CD"
    # invoice.month 202611 in Pacific time: Nov 1 00:00 PDT .. Dec 1 00:00 PST (exclusive).
    assert a["BillingPeriodStart"] == dt.datetime(2026, 11, 1, 7, tzinfo=UTC)
    assert a["BillingPeriodEnd"] == dt.datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert a["ChargePeriodStart"] == dt.datetime(2026, 11, 10, 3, tzinfo=UTC)
    assert a["ChargePeriodEnd"] == dt.datetime(2026, 11, 10, 4, tzinfo=UTC)
    assert a["x_tenant_id"] == tenant.tenant_id and a["x_pipeline_id"] == tenant.config_id
    assert a["x_credential_id"] == tenant.credential_id and a["x_run_date"] == DAY
    assert a["x_focus_version"] == "1.2"

    tax = rows["tax-no-project"]
    assert (tax["ChargeCategory"], tax["ChargeFrequency"]) == ("Tax", "One-Time")
    assert tax["BilledCost"] == Decimal("1.5")
    assert tax["SubAccountId"] is None and tax["PricingCategory"] is None and tax["SkuId"] is None
    assert (tax["ServiceName"], tax["ServiceCategory"], tax["ServiceSubcategory"]) == (
        "Invoice",
        "Other",
        "Other (Other)",
    )
    assert tax["ConsumedQuantity"] is None and tax["PricingQuantity"] is None

    adj = rows["adjustment"]
    assert (adj["ChargeCategory"], adj["ChargeClass"]) == ("Adjustment", "Correction")
    assert adj["BilledCost"] == Decimal("-0.75")

    rounding = rows["rounding"]
    assert (rounding["ChargeCategory"], rounding["ChargeClass"]) == ("Adjustment", None)
    assert rounding["BilledCost"] == Decimal("0.000001")

    eur = rows["eur"]
    assert (eur["BillingCurrency"], eur["PricingCurrency"]) == ("EUR", "EUR")
    assert eur["BilledCost"] == Decimal("3.000000")
    assert eur["CommitmentDiscountId"] is None and eur["PricingCategory"] == "Standard"

    assert rows["float-a"]["BilledCost"] == Decimal(0)
    assert rows["float-b"]["ListCost"] == Decimal("0.3")
    assert rows["float-b"]["ConsumedQuantity"] == Decimal("1500000000000000")
    # 1e-10 is below NUMERIC's 9 decimals: rounds to 0 (documented).
    assert rows["float-b"]["PricingQuantity"] == Decimal(0)
    assert rows["big"]["BilledCost"] == Decimal("123456.789012")
    assert rows["credits-labels"]["Tags"] is not None and rows["eur"]["Tags"] is None


def test_sums_reconcile_exactly_and_the_check_step_passes(tenant: FocusTenant) -> None:
    run_pipeline(tenant, DAY, lookback_days=0)
    total = tenant.query("SELECT SUM(BilledCost) AS b, SUM(ListCost) AS l FROM {focus}")[0]
    assert total["b"] == EXPECTED_BILLED
    assert total["l"] == EXPECTED_LIST
    raw = tenant.query(
        "SELECT (SELECT SUM(cost) FROM {raw}) + "
        "(SELECT SUM(c.amount) FROM {raw} AS r, UNNEST(r.credits) AS c) AS s"
    )[0]["s"]
    assert raw == EXPECTED_BILLED
    result = focus.check_gcp(tenant.ctx("dq", DAY, lookback_days=0))
    assert {r.check_name: r.status for r in result.dq_results} == {
        "reconciliation_billed_cost": "PASS",
        "reconciliation_list_cost": "PASS",
        "row_count": "PASS",
        "not_null_mandatory": "PASS",
        "allowed_values": "PASS",
    }


def test_the_check_step_fails_when_focus_drifts_from_the_export(tenant: FocusTenant) -> None:
    run_pipeline(tenant, DAY, lookback_days=0)
    # One micro-unit off, and an unknown cost type: both must be caught.
    tenant.query(
        "UPDATE {focus} SET BilledCost = BilledCost + 0.000001 WHERE ChargeDescription = 'big'"
    )
    tenant.query("UPDATE {focus} SET ChargeCategory = 'usage' WHERE ChargeDescription = 'eur'")
    with pytest.raises(StepError) as caught:
        focus.check_gcp(tenant.ctx("dq", DAY, lookback_days=0))
    assert caught.value.code == "dq_failed"
    statuses = {r.check_name: r.status for r in caught.value.dq_results}  # type: ignore[attr-defined]
    assert statuses["reconciliation_billed_cost"] == "FAIL"
    assert statuses["allowed_values"] == "FAIL"
    assert statuses["reconciliation_list_cost"] == "PASS"


def test_focus_13_switch_adds_the_13_columns(tenant: FocusTenant) -> None:
    gcp_billing.extract(tenant.ctx("extract", DAY, lookback_days=0))
    focus.convert_gcp(tenant.ctx("convert", DAY, lookback_days=0, focus_version="1.3"))
    rows = tenant.query(
        "SELECT DISTINCT x_focus_version AS v, ServiceProviderName AS s FROM {focus}"
    )
    assert rows == [{"v": "1.3", "s": "Google Cloud"}]
    assert "ServiceProviderName" in focus.focus_columns("1.3")
    assert "ServiceProviderName" not in focus.focus_columns("1.2")

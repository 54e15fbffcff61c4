"""focus_native.convert + check on the emulator: Google's FOCUS export passes into focus_cost."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from local.gcp_focus_export import (
    FOCUS_1_0_EXPORT_SCHEMA,
    FOCUS_EXPORT_SCHEMA,
    seed_focus_export,
)
from shared.pipelines.context import StepError
from shared.sources.focus_checks import DqFailed
from shared.sources.focus_native import native
from tests.integration.conftest import Platform
from tests.integration.focus_support import SOURCE_PROJECT, FocusTenant, make_tenant

DAY = dt.date(2026, 3, 31)
APRIL = DAY + dt.timedelta(days=1)


def ts(day: dt.date, hour: int) -> str:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC).isoformat()


def period(day: dt.date) -> tuple[str, str]:
    start = day.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return ts(start, 0), ts(end, 0)


def focus_row(rid: str, billed: str, day: dt.date, **over: Any) -> dict[str, Any]:
    start, end = period(day)
    row: dict[str, Any] = {
        "BilledCost": billed,
        "EffectiveCost": billed,
        "ListCost": billed,
        "ContractedCost": billed,
        "BillingAccountId": "0123AB-4567CD-89EF01",
        "BillingCurrency": "USD",
        "BillingPeriodStart": start,
        "BillingPeriodEnd": end,
        "ChargeCategory": "Usage",
        "ChargeDescription": f"sku {rid}",
        "ChargePeriodStart": ts(day, 3),
        "ChargePeriodEnd": ts(day, 4),
        "ProviderName": "Google Cloud",
        "PublisherName": "Google Cloud",
        "ServiceName": "Compute Engine",
        "SkuId": rid,
        "SubAccountId": "acme-prod",
        "x_ExportTime": ts(day, 9),
        "x_CostType": "regular",
        "x_Labels": [{"Key": "team", "Value": "data"}],
        "x_Tags": [{"Key": "env", "Value": "prod", "x_Inherited": False, "x_Namespace": "123"}],
        "x_Credits": [],
        "PricingCurrency": "USD",
        "PricingCurrencyEffectiveCost": billed,
    }
    row.update(over)
    return row


def export_table(
    tenant: FocusTenant, table: str = "gcp_billing_export_focus_0123AB_4567CD_89EF01"
) -> str:
    """Points the tenant's GCP config at a fresh FOCUS export table, through the API (a tenant
    has one GCP config: the billing export or the FOCUS export, never both)."""
    dataset = "gcp_billing_immutable_" + uuid.uuid4().hex[:8] + "_us"
    response = tenant.platform.tenant_call(
        "credentials",
        "PUT",
        f"/provider-configs/{tenant.config_id}",
        tenant.api_key,
        json={
            "source_project_id": SOURCE_PROJECT,
            "billing_export_dataset": dataset,
            "billing_export_table": table,
            "currency": "USD",
            "credential_id": tenant.credential_id,
        },
    )
    assert response.status_code == 200, response.get_json()
    return f"{SOURCE_PROJECT}.{dataset}.{table}"


ROWS = [
    focus_row("vm", "0.123456789", DAY),
    focus_row("vm2", "0.1", DAY),
    focus_row("vm3", "0.2", DAY),
    focus_row(
        "cud",
        "7.000000001",
        DAY,
        x_Credits=[{"Name": "CUD", "Amount": "-3.5", "Id": "c1", "Type": "CUD", "FullName": "x"}],
    ),
    focus_row("tax", "1.5", DAY, ChargeCategory="Tax", x_CostType="tax"),
    focus_row("gem", "12.345678901", APRIL, ServiceName="Gemini API"),
]


@pytest.fixture
def tenant(platform: Platform) -> FocusTenant:
    t = make_tenant(platform)
    t.source_table = export_table(t)
    seed_focus_export(t.client, t.source_table, ROWS)
    return t


def focus_rows(tenant: FocusTenant) -> list[dict[str, Any]]:
    return tenant.query(
        "SELECT SkuId, BilledCost, ChargeFrequency, InvoiceIssuerName, ServiceCategory, "
        "ServiceSubcategory, PricingCurrency, Tags, x_provider_columns, x_export_time, "
        "x_focus_version, x_pipeline_id FROM {focus} ORDER BY SkuId"
    )


def test_the_export_passes_into_focus_cost_and_reconciles_per_billing_period_exactly(
    tenant: FocusTenant,
) -> None:
    converted = native.convert(tenant.ctx("convert", APRIL, lookback_days=1))
    checked = native.check(tenant.ctx("quality", APRIL, lookback_days=1))

    assert converted.rows_processed == len(ROWS)
    assert {r.check_name: r.status for r in checked.dq_results} == {
        "reconciliation_billed_cost": "PASS",
        "row_count": "PASS",
        "not_null_mandatory": "PASS",
        "allowed_values": "PASS",
    }
    rows = {r["SkuId"]: r for r in focus_rows(tenant)}
    march = [r for r in ROWS if r["ChargePeriodStart"].startswith("2026-03")]
    assert sum(r["BilledCost"] for k, r in rows.items() if k != "gem") == sum(
        Decimal(r["BilledCost"]) for r in march
    )
    assert rows["vm"]["BilledCost"] == Decimal("0.123456789")
    assert rows["gem"]["BilledCost"] == Decimal("12.345678901")
    # Mandatory columns Google's preview export lacks are filled from the ones it has.
    assert rows["vm"]["ChargeFrequency"] == "Usage-Based"
    assert rows["tax"]["ChargeFrequency"] == "One-Time"
    assert rows["vm"]["InvoiceIssuerName"] == "Google Cloud"
    assert (rows["vm"]["ServiceCategory"], rows["vm"]["ServiceSubcategory"]) == (
        "Other",
        "Other (Other)",
    )
    assert json.loads(rows["vm"]["Tags"]) == {"team": "data", "123/env": "prod"}
    # Provider columns kept, as JSON; lineage names the config and the export time.
    # Keys compared case-blind: the emulator lower-cases struct aliases in TO_JSON_STRING,
    # BigQuery keeps the provider's spelling.
    extras = {k.lower(): v for k, v in json.loads(rows["cud"]["x_provider_columns"]).items()}
    assert extras["x_costtype"] == "regular"
    credit = {k.lower(): v for k, v in extras["x_credits"][0].items()}
    assert Decimal(str(credit["amount"])) == Decimal("-3.5")
    assert rows["vm"]["x_export_time"] == dt.datetime.combine(DAY, dt.time(9), tzinfo=dt.UTC)
    assert {r["x_pipeline_id"] for r in rows.values()} == {tenant.config_id}
    assert {r["x_focus_version"] for r in rows.values()} == {"1.2"}


def test_a_re_run_replaces_its_window_and_picks_up_a_late_row(tenant: FocusTenant) -> None:
    native.convert(tenant.ctx("convert", APRIL, lookback_days=1))
    seed_focus_export(
        tenant.client,
        tenant.source_table,
        [focus_row("late", "-0.3", DAY, ChargeClass="Correction", x_ExportTime=ts(APRIL, 20))],
    )

    native.convert(tenant.ctx("convert", APRIL, lookback_days=1))
    native.check(tenant.ctx("quality", APRIL, lookback_days=1))

    rows = focus_rows(tenant)
    assert len(rows) == len(ROWS) + 1
    assert [r["SkuId"] for r in rows].count("vm") == 1


def test_the_check_fails_when_focus_cost_lost_a_row(tenant: FocusTenant) -> None:
    native.convert(tenant.ctx("convert", APRIL, lookback_days=1))
    tenant.query("DELETE FROM {focus} WHERE SkuId = 'vm'")

    with pytest.raises(DqFailed) as failed:
        native.check(tenant.ctx("quality", APRIL, lookback_days=1))

    statuses = {r.check_name: r.status for r in failed.value.dq_results}
    assert statuses["reconciliation_billed_cost"] == "FAIL"
    assert statuses["row_count"] == "FAIL"


def test_a_window_reads_only_its_charge_days(tenant: FocusTenant) -> None:
    converted = native.convert(tenant.ctx("convert", APRIL, lookback_days=0))

    assert converted.rows_processed == 1
    assert [r["SkuId"] for r in focus_rows(tenant)] == ["gem"]


def test_an_export_without_billed_cost_fails_naming_the_column_and_writes_nothing(
    platform: Platform,
) -> None:
    tenant = make_tenant(platform)
    tenant.source_table = export_table(tenant)
    schema = [f for f in FOCUS_EXPORT_SCHEMA if f.name != "BilledCost"]
    row = focus_row("vm", "1", DAY)
    del row["BilledCost"]
    seed_focus_export(tenant.client, tenant.source_table, [row], schema)

    with pytest.raises(StepError) as failed:
        native.convert(tenant.ctx("convert", DAY))

    assert failed.value.code == "source_schema"
    assert "BilledCost" in str(failed.value)
    assert focus_rows(tenant) == []


def test_a_focus_1_0_export_gets_the_1_2_columns_from_its_own(platform: Platform) -> None:
    tenant = make_tenant(platform)
    tenant.source_table = export_table(tenant, "focus_1_0_export_aws")
    names = {f.name for f in FOCUS_1_0_EXPORT_SCHEMA}
    row = focus_row("vm", "2.5", DAY, InvoiceIssuerName="Reseller Ltd", ServiceCategory="Compute")
    row = {k: v for k, v in row.items() if k in names}
    seed_focus_export(tenant.client, tenant.source_table, [row], FOCUS_1_0_EXPORT_SCHEMA)

    native.convert(tenant.ctx("convert", DAY))
    native.check(tenant.ctx("quality", DAY))

    got = tenant.query(
        "SELECT InvoiceIssuerName, PricingCurrency, PricingCurrencyEffectiveCost, "
        "ServiceSubcategory, Tags FROM {focus}"
    )
    assert got == [
        {
            "InvoiceIssuerName": "Reseller Ltd",
            "PricingCurrency": "USD",
            "PricingCurrencyEffectiveCost": Decimal("2.5"),
            "ServiceSubcategory": "Other (Compute)",
            "Tags": None,
        }
    ]


def test_another_tenants_config_is_not_read(platform: Platform, tenant: FocusTenant) -> None:
    other = make_tenant(platform)
    other.config_id = tenant.config_id  # a forged config id: the tenant's, not its own

    with pytest.raises(StepError) as failed:
        native.convert(other.ctx("convert", APRIL))

    assert failed.value.code == "provider_config_missing"

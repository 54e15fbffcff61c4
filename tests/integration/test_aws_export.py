"""aws.land/convert/check over exports the generator writes to moto: exact, idempotent, strict."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from local.aws_export import export_table, write_export
from local.cloud_access import CloudStandIns
from shared.pipelines.context import StepError
from shared.platform.warehouse import table_from_spec
from shared.sources.aws import steps
from shared.tenancy.tenant_dataset import add_appended_columns
from tests.integration.aws_support import PREFIX, AwsTenant, make_aws_tenant
from tests.integration.conftest import Platform

PERIOD = "2026-01"
RUN_DAY = dt.date(2026, 1, 20)  # past the 15-day restatement window of December


@pytest.fixture
def settings_overrides(clouds: CloudStandIns) -> dict[str, object]:
    return dict(clouds.environment())


def run(tenant: AwsTenant, day: dt.date = RUN_DAY) -> None:
    steps.land(tenant.ctx("land", day))
    steps.convert(tenant.ctx("convert", day))


def focus_totals(tenant: AwsTenant) -> tuple[int, Decimal]:
    row = tenant.query("SELECT COUNT(*) AS n, IFNULL(SUM(BilledCost), 0) AS b FROM {focus}")[0]
    return int(row["n"]), row["b"]


@pytest.mark.parametrize(
    ("export_type", "fmt"),
    [("CUR2", "parquet"), ("FOCUS_1_2_AWS", "parquet"), ("FOCUS_1_0_AWS", "csv")],
)
def test_a_period_lands_reconciled_exactly_and_rerunning_replaces_it(
    platform: Platform, clouds: CloudStandIns, export_type: str, fmt: str
) -> None:
    tenant = make_aws_tenant(platform, clouds, export_type)
    sent = write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, export_type, PERIOD,
        rows=300, seed=7, fmt=fmt,
    )  # fmt: skip
    run(tenant)
    assert focus_totals(tenant) == (sent.rows, sent.billed_total)
    result = steps.check(tenant.ctx("check", RUN_DAY))
    assert result.dq_results and all(r.status == "PASS" for r in result.dq_results)
    lineage = tenant.query("SELECT DISTINCT x_source_file AS f FROM {focus}")
    assert {r["f"].split("#")[1] for r in lineage} == set(sent.data_keys)
    assert all(r["f"].split("#")[0] == sent.manifest_key for r in lineage)
    # A newer delivery of the same period replaces it: no duplicates, the new totals.
    again = write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, export_type, PERIOD,
        rows=120, seed=8, fmt=fmt,
    )  # fmt: skip
    run(tenant)
    run(tenant)
    assert focus_totals(tenant) == (again.rows, again.billed_total)


def test_cur2_mapping_follows_the_conversion_configs_with_their_fixes(
    platform: Platform, clouds: CloudStandIns
) -> None:
    tenant = make_aws_tenant(platform, clouds, "CUR2")
    write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, "CUR2", PERIOD, rows=400, seed=3
    )
    run(tenant)
    rows = tenant.query(
        "SELECT r.line_item_line_item_type AS t, f.ChargeCategory AS cat, f.ChargeClass AS cls, "
        "f.CommitmentDiscountId AS cid, f.EffectiveCost AS eff, f.BilledCost AS billed, "
        "r.line_item_net_unblended_cost AS net, r.savings_plan_savings_plan_effective_cost AS sp, "
        "r.savings_plan_net_savings_plan_effective_cost AS sp_net, "
        "r.reservation_effective_cost AS ri, r.reservation_net_effective_cost AS ri_net, "
        "r.reservation_net_unused_amortized_upfront_fee_for_billing_period "
        "+ r.reservation_net_unused_recurring_fee AS ri_unused_net, "
        "f.Tags AS tags, r.resource_tags AS raw_tags "
        "FROM {focus} AS f JOIN {raw} AS r "
        "ON f.x_source_file = CONCAT(r.x_manifest, '#', r.x_source_file) "
        "AND f.ChargePeriodStart = r.line_item_usage_start_date "
        "AND f.ChargeDescription = r.line_item_line_item_description "
        "AND f.BilledCost = IFNULL(r.line_item_net_unblended_cost, r.line_item_unblended_cost)"
    )
    by_type: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        by_type.setdefault(str(r["t"]), []).append(r)
    assert {r["cat"] for r in by_type["Credit"]} == {"Credit"}
    assert {(r["cat"], r["cls"]) for r in by_type["Refund"]} == {("Adjustment", "Correction")}
    assert {r["cat"] for r in by_type["Tax"]} == {"Tax"}
    assert all(
        str(r["cid"]).startswith("arn:aws:savingsplans") for r in by_type["SavingsPlanCoveredUsage"]
    )
    # EffectiveCost reads the net (after-discount) columns, which the generator puts 5 % under
    # the gross ones: reading a gross column fails here.
    assert by_type["SavingsPlanCoveredUsage"] and by_type["DiscountedUsage"] and by_type["RIFee"]
    assert all(
        r["eff"] == r["sp_net"] and r["sp_net"] < r["sp"]
        for r in by_type["SavingsPlanCoveredUsage"]
    )
    assert all(
        r["eff"] == r["ri_net"] and r["ri_net"] < r["ri"] for r in by_type["DiscountedUsage"]
    )
    assert all(r["eff"] == r["ri_unused_net"] for r in by_type["RIFee"])
    assert all(r["eff"] == 0 for r in by_type["SavingsPlanNegation"])
    assert all(r["billed"] == r["net"] for r in by_type["Usage"])
    tagged = [r for r in by_type["Usage"] if r["raw_tags"]]
    assert tagged and all(
        json.loads(str(r["tags"])) == json.loads(str(r["raw_tags"])) for r in tagged
    )


def test_the_previous_period_is_reread_for_15_days_after_it_ends(
    platform: Platform, clouds: CloudStandIns
) -> None:
    tenant = make_aws_tenant(platform, clouds, "FOCUS_1_2_AWS")
    dec = write_export(
        tenant.s3,
        tenant.bucket,
        PREFIX,
        tenant.export_name,
        "FOCUS_1_2_AWS",
        "2025-12",
        rows=50,
        seed=1,
    )
    jan = write_export(
        tenant.s3,
        tenant.bucket,
        PREFIX,
        tenant.export_name,
        "FOCUS_1_2_AWS",
        PERIOD,
        rows=60,
        seed=2,
    )
    run(tenant, dt.date(2026, 1, 15))
    assert focus_totals(tenant) == (110, dec.billed_total + jan.billed_total)
    restated = write_export(
        tenant.s3,
        tenant.bucket,
        PREFIX,
        tenant.export_name,
        "FOCUS_1_2_AWS",
        "2025-12",
        rows=40,
        seed=9,
    )
    run(tenant, dt.date(2026, 1, 16))  # day 16 of January: December is closed for us
    assert focus_totals(tenant) == (110, dec.billed_total + jan.billed_total)
    run(tenant, dt.date(2026, 1, 15))
    assert focus_totals(tenant) == (100, restated.billed_total + jan.billed_total)


# ------------------------------------------------------------------ bad input


@pytest.fixture
def landed(platform: Platform, clouds: CloudStandIns) -> tuple[AwsTenant, tuple[int, Decimal]]:
    """A CUR2 tenant with a good January already in focus_cost."""
    tenant = make_aws_tenant(platform, clouds, "CUR2")
    write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, "CUR2", PERIOD, rows=80, seed=5
    )
    run(tenant)
    return tenant, focus_totals(tenant)


def fails(tenant: AwsTenant, code: str, *words: str) -> None:
    with pytest.raises(StepError) as caught:
        run(tenant)
    assert caught.value.code == code, str(caught.value)
    assert not caught.value.transient
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_a_manifest_naming_a_missing_file_fails_and_keeps_the_period(
    landed: tuple[AwsTenant, tuple[int, Decimal]],
) -> None:
    tenant, before = landed
    sent = write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, "CUR2", PERIOD, rows=90, seed=6
    )
    tenant.s3.delete_object(Bucket=tenant.bucket, Key=sent.data_keys[1])
    fails(tenant, "source_file_missing", sent.data_keys[1])
    assert focus_totals(tenant) == before


def test_a_truncated_parquet_file_fails_naming_it(
    landed: tuple[AwsTenant, tuple[int, Decimal]],
) -> None:
    tenant, before = landed
    sent = write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, "CUR2", PERIOD, rows=90, seed=6
    )
    body = tenant.s3.get_object(Bucket=tenant.bucket, Key=sent.data_keys[0])["Body"].read()
    tenant.s3.put_object(Bucket=tenant.bucket, Key=sent.data_keys[0], Body=body[: len(body) // 2])
    fails(tenant, "bad_source_file", sent.data_keys[0], "Parquet")
    assert focus_totals(tenant) == before


def test_a_csv_cell_of_the_wrong_type_fails_naming_file_and_column(
    landed: tuple[AwsTenant, tuple[int, Decimal]],
) -> None:
    tenant, before = landed
    table = export_table("CUR2", PERIOD, 30, 4)
    costs = table.column("line_item_unblended_cost").to_pylist()
    bad = pa.array([str(v) for v in costs[:7]] + ["12,50"] + [str(v) for v in costs[8:]])
    table = table.set_column(
        table.column_names.index("line_item_unblended_cost"), "line_item_unblended_cost", bad
    )
    sent = write_export(
        tenant.s3,
        tenant.bucket,
        PREFIX,
        tenant.export_name,
        "CUR2",
        PERIOD,
        table=table,
        fmt="csv",
        files=1,
    )
    fails(tenant, "bad_value", sent.data_keys[0], "line_item_unblended_cost", "row 8")
    assert focus_totals(tenant) == before


def test_a_missing_required_column_fails_naming_it(
    landed: tuple[AwsTenant, tuple[int, Decimal]],
) -> None:
    tenant, before = landed
    table = export_table("CUR2", PERIOD, 30, 4).drop_columns(["line_item_currency_code"])
    write_export(tenant.s3, tenant.bucket, PREFIX, tenant.export_name, "CUR2", PERIOD, table=table)
    fails(tenant, "missing_column", "line_item_currency_code", "Manifest.json")
    assert focus_totals(tenant) == before


def test_two_currencies_in_one_period_fail(landed: tuple[AwsTenant, tuple[int, Decimal]]) -> None:
    tenant, before = landed
    usd = export_table("CUR2", PERIOD, 30, 4)
    eur = export_table("CUR2", PERIOD, 30, 5, currency="EUR")
    sent = write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, "CUR2", PERIOD,
        table=pa.concat_tables([usd, eur]), files=2,
    )  # fmt: skip
    fails(tenant, "mixed_currency", sent.data_keys[1], "line_item_currency_code", "EUR, USD")
    assert focus_totals(tenant) == before


def test_an_unknown_export_version_fails(landed: tuple[AwsTenant, tuple[int, Decimal]]) -> None:
    tenant, before = landed
    # A legacy CUR (lineItem/... names) delivered where CUR 2.0 is configured.
    table = export_table("CUR2", PERIOD, 10, 4)
    table = table.rename_columns([c.replace("line_item_", "lineItem/") for c in table.column_names])
    write_export(tenant.s3, tenant.bucket, PREFIX, tenant.export_name, "CUR2", PERIOD, table=table)
    fails(tenant, "unknown_export_version", "Manifest.json", "no known export")
    # FOCUS delivered where CUR 2.0 is configured.
    write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, "FOCUS_1_2_AWS", PERIOD, rows=10
    )
    fails(tenant, "unknown_export_version", "FOCUS_1_2_AWS")
    assert focus_totals(tenant) == before


def test_a_manifest_naming_a_file_outside_its_export_is_refused(
    landed: tuple[AwsTenant, tuple[int, Decimal]],
) -> None:
    tenant, before = landed
    write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, "CUR2", PERIOD, rows=10,
        manifest_extra={"dataFiles": [f"s3://other-bucket/{PREFIX}/{tenant.export_name}/data/BILLING_PERIOD={PERIOD}/x.parquet"]},
    )  # fmt: skip
    fails(tenant, "bad_manifest", "outside the export")
    assert focus_totals(tenant) == before


_ = (gzip, io)


def test_a_cur2_raw_table_made_before_the_net_columns_gets_them_and_lands(
    platform: Platform, clouds: CloudStandIns
) -> None:
    from google.cloud import bigquery

    tenant = make_aws_tenant(platform, clouds, "CUR2")
    wh = platform.deps.warehouse
    net = [
        "reservation_net_effective_cost",
        "reservation_net_unused_amortized_upfront_fee_for_billing_period",
        "reservation_net_unused_recurring_fee",
        "savings_plan_net_savings_plan_effective_cost",
    ]
    spec = platform.deps.catalog.tenant["aws_cur2_raw"]
    old = bigquery.Table(
        f"{wh.project}.{tenant.tenant_id}.aws_cur2_raw",
        schema=[f for f in table_from_spec(wh.project, tenant.tenant_id, spec).schema
                if f.name not in net],
    )  # fmt: skip
    wh.client.create_table(old)
    write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, "CUR2", PERIOD, rows=200, seed=5
    )
    run(tenant)
    have = [f.name for f in wh.client.get_table(old.reference).schema]
    assert have[-len(net) :] == net
    catalog = platform.deps.catalog
    assert add_appended_columns(wh, catalog, tenant.tenant_id, "aws_cur2_raw") == []
    run(tenant)
    landed = tenant.query(
        "SELECT COUNT(reservation_net_effective_cost) AS ri, "
        "COUNT(savings_plan_net_savings_plan_effective_cost) AS sp FROM {raw}"
    )[0]
    assert landed["ri"] > 0 and landed["sp"] > 0

"""Bad Azure exports fail `azure.land` naming the blob and the column, and change nothing.

Each case first lands a good export run of November, then writes a newer, broken
run of the same range: the step must refuse it before replacing anything, so the
period's earlier rows (raw and FOCUS) stay exactly as they were.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from local.azure_export import FocusCostGenerator
from local.cloud_access import CloudStandIns
from shared.pipelines.context import StepError
from shared.sources.azure import mapping, reader
from tests.integration.azure_support import AzureTenant, make_azure_tenant
from tests.integration.conftest import Platform

NOV = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
RUN_DATE = dt.date(2026, 11, 3)


@pytest.fixture
def settings_overrides(clouds: CloudStandIns) -> dict[str, object]:
    return dict(clouds.environment())


def snapshot(tenant: AzureTenant) -> list[Any]:
    raw = tenant.query(
        "SELECT COUNT(*) AS n, SUM(BilledCost) AS b, STRING_AGG(DISTINCT x_run_id) AS r FROM {raw}"
    )[0]
    focus = tenant.query("SELECT COUNT(*) AS n, SUM(BilledCost) AS b FROM {focus}")[0]
    totals = tenant.query("SELECT STRING_AGG(DISTINCT x_run_id) AS r FROM {totals}")[0]
    return [raw["n"], raw["b"], raw["r"], focus["n"], focus["b"], totals["r"]]


def good_then_bad(
    platform: Platform,
    clouds: CloudStandIns,
    write_bad: Callable[[AzureTenant, FocusCostGenerator], str],
) -> tuple[StepError, str, list[Any], list[Any]]:
    tenant = make_azure_tenant(platform, clouds)
    gen = FocusCostGenerator(seed=9)
    tenant.export(gen, list(gen.rows(NOV[0], 2, 20)), *NOV, rows_per_part=20, run_id="run-1-good")
    reader.land(tenant.ctx("land", RUN_DATE, "run_good"))
    mapping.convert(tenant.ctx("convert", RUN_DATE, "run_good"))
    before = snapshot(tenant)
    assert before[0] > 0 and before[2] == "run_good"
    culprit = write_bad(tenant, FocusCostGenerator(seed=10))
    with pytest.raises(StepError) as refused:
        reader.land(tenant.ctx("land", RUN_DATE, "run_bad"))
    return refused.value, culprit, before, snapshot(tenant)


def bad_run(
    tenant: AzureTenant, gen: FocusCostGenerator, *, file_format: str = "csv", **changes: Any
) -> Any:
    rows = list(gen.rows(NOV[0], 2, 20))
    for key, value in changes.items():
        rows[-1][key] = value
    return tenant.export(
        gen, rows, *NOV, rows_per_part=20, run_id="run-2-bad", file_format=file_format
    )


def test_a_manifest_naming_a_missing_blob(platform: Platform, clouds: CloudStandIns) -> None:
    def write(tenant: AzureTenant, gen: FocusCostGenerator) -> str:
        run = bad_run(tenant, gen)
        tenant.container.delete_blob(run.blobs[1])
        return str(run.blobs[1])

    error, blob, before, after = good_then_bad(platform, clouds, write)

    assert error.code == "source_blob_missing"
    assert blob in str(error) and "manifest" in str(error)
    assert after == before


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_a_truncated_blob(platform: Platform, clouds: CloudStandIns, file_format: str) -> None:
    def write(tenant: AzureTenant, gen: FocusCostGenerator) -> str:
        run = bad_run(tenant, gen, file_format=file_format)
        data = tenant.container.download_blob(run.blobs[0]).readall()
        tenant.container.upload_blob(run.blobs[0], data[: len(data) // 2], overwrite=True)
        return str(run.blobs[0])

    error, blob, before, after = good_then_bad(platform, clouds, write)

    assert error.code == "unreadable_blob"
    assert blob in str(error)
    assert after == before


def test_a_blob_with_fewer_rows_than_its_manifest_says(
    platform: Platform, clouds: CloudStandIns
) -> None:
    def write(tenant: AzureTenant, gen: FocusCostGenerator) -> str:
        run = bad_run(tenant, gen)
        manifest = json.loads(tenant.container.download_blob(run.manifest).readall())
        manifest["blobs"][0]["dataRowCount"] += 7
        tenant.container.upload_blob(run.manifest, json.dumps(manifest), overwrite=True)
        return str(run.blobs[0])

    error, blob, before, after = good_then_bad(platform, clouds, write)

    assert error.code == "truncated_blob"
    assert blob in str(error)
    assert after == before


def test_a_money_value_of_the_wrong_type(platform: Platform, clouds: CloudStandIns) -> None:
    def write(tenant: AzureTenant, gen: FocusCostGenerator) -> str:
        return str(bad_run(tenant, gen, BilledCost="12,5O").blobs[-1])

    error, blob, before, after = good_then_bad(platform, clouds, write)

    assert error.code == "bad_value"
    assert blob in str(error) and "column BilledCost" in str(error)
    assert after == before


def test_a_date_of_the_wrong_type(platform: Platform, clouds: CloudStandIns) -> None:
    def write(tenant: AzureTenant, gen: FocusCostGenerator) -> str:
        return str(bad_run(tenant, gen, ChargePeriodEnd="yesterday").blobs[-1])

    error, blob, before, after = good_then_bad(platform, clouds, write)

    assert error.code == "bad_value"
    assert blob in str(error) and "column ChargePeriodEnd" in str(error)
    assert after == before


def test_a_missing_required_column(platform: Platform, clouds: CloudStandIns) -> None:
    def write(tenant: AzureTenant, gen: FocusCostGenerator) -> str:
        gen.columns.remove("BillingCurrency")
        return str(bad_run(tenant, gen).blobs[0])

    error, blob, before, after = good_then_bad(platform, clouds, write)

    assert error.code == "missing_column"
    assert blob in str(error) and "BillingCurrency" in str(error)
    assert after == before


def test_two_currencies_in_one_billing_period(platform: Platform, clouds: CloudStandIns) -> None:
    def write(tenant: AzureTenant, gen: FocusCostGenerator) -> str:
        return str(bad_run(tenant, gen, BillingCurrency="USD").blobs[-1])

    error, blob, before, after = good_then_bad(platform, clouds, write)

    assert error.code == "mixed_currency"
    assert "BillingCurrency" in str(error) and blob in str(error)
    assert "EUR" in str(error) and "USD" in str(error)
    assert after == before


def test_an_unknown_dataset_version(platform: Platform, clouds: CloudStandIns) -> None:
    def write(tenant: AzureTenant, gen: FocusCostGenerator) -> str:
        gen.version = "1.3-preview"
        return str(bad_run(tenant, gen).manifest)

    error, manifest, before, after = good_then_bad(platform, clouds, write)

    assert error.code == "unknown_dataset_version"
    assert manifest in str(error) and "exportConfig.dataVersion" in str(error)
    assert "1.3-preview" in str(error)
    assert after == before

"""`azure.land` against Azurite and the emulator: the latest export run of each range, replaced."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from local.azure_export import FocusCostGenerator
from local.cloud_access import CloudStandIns
from shared.sources.azure import reader
from tests.integration.azure_support import make_azure_tenant
from tests.integration.conftest import Platform

NOV = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
RUN_DATE = dt.date(2026, 11, 3)


@pytest.fixture
def settings_overrides(clouds: CloudStandIns) -> dict[str, object]:
    return dict(clouds.environment())


@pytest.mark.parametrize(("version", "file_format"), [("1.0", "csv"), ("1.2-preview", "parquet")])
def test_the_latest_run_of_a_range_replaces_the_configs_rows(
    platform: Platform, clouds: CloudStandIns, version: str, file_format: str
) -> None:
    tenant = make_azure_tenant(platform, clouds, version)
    gen = FocusCostGenerator(seed=5, version=version)
    first = list(gen.rows(NOV[0], 2, 30))
    tenant.export(gen, first, *NOV, file_format=file_format, rows_per_part=20, run_id="run-a")
    reader.land(tenant.ctx("land", RUN_DATE))
    # A later run of the same range restates it: only its rows remain.
    second = list(gen.rows(NOV[0], 3, 25))
    latest = tenant.export(
        gen, second, *NOV, file_format=file_format, rows_per_part=20, run_id="run-b"
    )

    result = reader.land(tenant.ctx("land", RUN_DATE))

    rows = tenant.query(
        "SELECT COUNT(*) AS n, SUM(BilledCost) AS billed, COUNT(DISTINCT x_source_file) AS files, "
        "ANY_VALUE(x_export_manifest) AS manifest, ANY_VALUE(x_dataset_version) AS v, "
        "MIN(ChargePeriodStart) AS first FROM {raw}"
    )[0]
    assert result.rows_processed == len(second) == rows["n"]
    assert rows["billed"] == latest.billed_cost
    assert (rows["files"], rows["manifest"], rows["v"]) == (
        len(latest.blobs),
        latest.manifest,
        version,
    )
    assert rows["first"] == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    totals = tenant.query(
        "SELECT SUM(source_rows) AS n, SUM(source_billed_cost) AS billed FROM {totals}"
    )[0]
    assert (totals["n"], totals["billed"]) == (len(second), latest.billed_cost)
    assert isinstance(totals["billed"], Decimal)

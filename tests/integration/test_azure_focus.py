"""Azure FocusCost -> focus_cost: land, convert, check on Azurite and the emulator, per version."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from local.azure_export import FocusCostGenerator
from local.cloud_access import CloudStandIns
from shared.sources.azure import mapping, reader
from shared.sources.focus_checks import DqFailed
from shared.sources.gcp import mapping as focus
from tests.integration.azure_support import AzureTenant, make_azure_tenant
from tests.integration.conftest import Platform
from tests.integration.test_focus_conformance import GATE, focus_python

OCT = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
NOV = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
RUN_DATE = dt.date(2026, 11, 3)


@pytest.fixture
def settings_overrides(clouds: CloudStandIns) -> dict[str, object]:
    return dict(clouds.environment())


def run_all(tenant: AzureTenant, run_id: str) -> list[str]:
    reader.land(tenant.ctx("land", RUN_DATE, run_id))
    mapping.convert(tenant.ctx("convert", RUN_DATE, run_id))
    result = mapping.check(tenant.ctx("check", RUN_DATE, run_id))
    return [r.check_name for r in result.dq_results if r.status == "PASS"]


@pytest.mark.parametrize("version", ["1.0", "1.0r2", "1.2-preview"])
def test_each_dataset_version_lands_in_focus_cost_reconciled_per_billing_period(
    platform: Platform, clouds: CloudStandIns, version: str
) -> None:
    tenant = make_azure_tenant(platform, clouds, version)
    gen = FocusCostGenerator(seed=11, version=version)
    october = tenant.export(gen, list(gen.rows(dt.date(2026, 10, 28), 4, 20)), *OCT)
    november = tenant.export(
        gen, list(gen.rows(NOV[0], 3, 20)), *NOV, file_format="parquet", rows_per_part=30
    )

    passed = run_all(tenant, "run_" + version.replace(".", "_").replace("-", "_"))

    assert any(p.startswith("reconciliation_billed_cost:20261001") for p in passed)
    assert any(p.startswith("reconciliation_billed_cost:20261101") for p in passed)
    by_period = tenant.query(
        "SELECT FORMAT_TIMESTAMP('%Y-%m', BillingPeriodStart) AS p, SUM(BilledCost) AS b, "
        "COUNT(*) AS n, COUNT(DISTINCT x_source_file) AS files FROM {focus} GROUP BY p ORDER BY p"
    )
    assert [(r["p"], r["b"], r["n"]) for r in by_period] == [
        ("2026-10", october.billed_cost, october.rows),
        ("2026-11", november.billed_cost, november.rows),
    ]
    assert by_period[1]["files"] == len(november.blobs)
    kinds = tenant.query(
        "SELECT DISTINCT ChargeCategory AS c, ChargeClass AS k, CommitmentDiscountStatus AS s, "
        "PublisherName AS pub FROM {focus}"
    )
    seen = {(r["c"], r["k"], r["s"]) for r in kinds}
    assert {("Usage", None, None), ("Usage", None, "Used"), ("Usage", None, "Unused")} <= seen
    assert {("Purchase", None, None), ("Purchase", "Correction", None), ("Tax", None, None)} <= seen
    assert {r["pub"] for r in kinds} == {"Microsoft", "Contoso Data Ltd"}
    # Microsoft's x_* columns reach focus_cost: three as columns, all in x_provider_columns.
    kept = tenant.query(
        "SELECT COUNT(*) AS n, ANY_VALUE(x_provider_columns) AS sample, COUNTIF("
        "IFNULL(JSON_VALUE(x_provider_columns, '$.x_ResourceGroupName'), '-') = "
        "IFNULL(x_ResourceGroupName, '-') AND "
        "IFNULL(JSON_VALUE(x_provider_columns, '$.x_ResourceType'), '-') = "
        "IFNULL(x_ResourceType, '-')) AS same, COUNT(x_ResourceGroupName) AS grouped, "
        "COUNT(JSON_VALUE(x_provider_columns, '$.x_SkuMeterCategory')) AS meters FROM {focus}"
    )[0]
    raw = tenant.query("SELECT COUNT(x_SkuMeterCategory) AS meters FROM {raw}")[0]
    assert kept["same"] == kept["n"] == october.rows + november.rows, kept["sample"]
    assert kept["grouped"] > 0 and kept["meters"] == raw["meters"] > 0, kept["sample"]


def test_a_cent_lost_between_export_and_focus_fails_the_check(
    platform: Platform, clouds: CloudStandIns
) -> None:
    tenant = make_azure_tenant(platform, clouds)
    gen = FocusCostGenerator(seed=3)
    tenant.export(gen, list(gen.rows(NOV[0], 2, 15)), *NOV)
    run_id = "run_tampered"
    reader.land(tenant.ctx("land", RUN_DATE, run_id))
    mapping.convert(tenant.ctx("convert", RUN_DATE, run_id))
    wh = platform.deps.warehouse
    wh.query(
        f"UPDATE {wh.table(tenant.tenant_id, 'focus_cost')} SET BilledCost = BilledCost + "
        "PARSE_NUMERIC('0.000000001') WHERE ChargeCategory = 'Tax'",
        {},
    )

    with pytest.raises(DqFailed) as failed:
        mapping.check(tenant.ctx("check", RUN_DATE, run_id))

    bad = {r.check_name.split(":")[0] for r in failed.value.dq_results if r.status == "FAIL"}
    assert bad == {"reconciliation_billed_cost"}


def test_azure_output_passes_the_focus_gate(
    platform: Platform, clouds: CloudStandIns, tmp_path: Path
) -> None:
    assert GATE.exists(), f"the FOCUS gate is missing: {GATE}"
    tenant = make_azure_tenant(platform, clouds, "1.2-preview")
    gen = FocusCostGenerator(seed=21, version="1.2-preview")
    tenant.export(gen, list(gen.rows(NOV[0], 2, 100)), *NOV)
    assert run_all(tenant, "run_gate")
    wh = platform.deps.warehouse
    columns = ", ".join(f"`{c}`" for c in focus.focus_columns("1.2"))
    job = wh.client.query(f"SELECT {columns} FROM {wh.table(tenant.tenant_id, 'focus_cost')}")
    table = job.result().to_arrow(create_bqstorage_client=False)
    sample = tmp_path / "azure_focus.parquet"
    pq.write_table(table, sample)
    python = focus_python()
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    gate = subprocess.run(
        [str(python), str(GATE), str(sample)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert gate.returncode == 0, gate.stdout[-4000:] + gate.stderr[-2000:]
    assert Decimal(0) != sum((r for r in table.column("BilledCost").to_pylist()), Decimal(0))

"""FOCUS conformance of AWS output: CUR 2.0, FOCUS 1.2 and 1.0 exports, converted, through the gate.

The gate is the official focus-validator wrapped by ../shared/tools/focus_gate.py
(run as in test_focus_conformance.py): any failed rule outside its allowlist fails.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from local.aws_export import write_export
from local.cloud_access import CloudStandIns
from shared.sources.aws import steps
from shared.sources.gcp import mapping as focus
from tests.integration.aws_support import PREFIX, make_aws_tenant
from tests.integration.conftest import Platform
from tests.integration.test_focus_conformance import GATE, focus_python

PERIOD = "2026-01"
RUN_DAY = dt.date(2026, 1, 20)


@pytest.fixture
def settings_overrides(clouds: CloudStandIns) -> dict[str, object]:
    return dict(clouds.environment())


@pytest.mark.timeout(900)  # the validator's own venv may need building first
@pytest.mark.parametrize("export_type", ["CUR2", "FOCUS_1_2_AWS", "FOCUS_1_0_AWS"])
def test_aws_output_passes_the_focus_gate(
    platform: Platform, clouds: CloudStandIns, tmp_path: Path, export_type: str
) -> None:
    assert GATE.exists(), f"the FOCUS gate is missing: {GATE}"
    tenant = make_aws_tenant(platform, clouds, export_type)
    sent = write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, export_type, PERIOD,
        rows=600, seed=21,
    )  # fmt: skip
    steps.land(tenant.ctx("land", RUN_DAY))
    steps.convert(tenant.ctx("convert", RUN_DAY))
    steps.check(tenant.ctx("check", RUN_DAY))
    # The sample must hold the kinds of row AWS bills: usage, purchases, tax, credits.
    kinds = {r["c"] for r in tenant.query("SELECT DISTINCT ChargeCategory AS c FROM {focus}")}
    assert kinds >= {"Usage", "Purchase", "Tax", "Credit"}

    wh = platform.deps.warehouse
    columns = ", ".join(f"`{c}`" for c in focus.focus_columns("1.2"))
    job = wh.client.query(f"SELECT {columns} FROM {wh.table(tenant.tenant_id, 'focus_cost')}")
    table = job.result().to_arrow(create_bqstorage_client=False)
    assert table.num_rows == sent.rows
    sample = tmp_path / f"aws_{export_type}.parquet"
    pq.write_table(table, sample)

    python = focus_python()
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    gate = subprocess.run(
        [str(python), str(GATE), str(sample)],
        env=env,
        check=False,  # the exit code is asserted below, with the gate's output
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(gate.stdout[-4000:], gate.stderr[-2000:])
    assert gate.returncode == 0, gate.stdout[-4000:] + gate.stderr[-2000:]

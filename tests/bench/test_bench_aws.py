"""Figures: AWS Data Exports (FOCUS 1.2 and CUR 2.0) -> focus_cost, 1,000,000 rows end to end.

Run with `make bench` (BENCH_AWS_ROWS overrides the size). The export is written
to moto as Parquet (a 50k-row generated block, repeated: generating is not what
is measured), then aws.land (S3 -> staging -> raw), aws.convert and aws.check
run; prints input rows per second of each step and end to end, the peak memory
of this process, and proves the reconciliation is exact. No duration is asserted.
"""

from __future__ import annotations

import datetime as dt
import os
import time

import pyarrow as pa
import pytest

from local.aws_export import billed_total, export_table, write_export
from local.cloud_access import CloudStandIns
from shared.sources.aws import steps
from shared.sources.aws.reader import PeriodReader, newest_manifest
from tests.bench.test_bench_focus import vm_hwm_mib
from tests.integration.aws_support import PREFIX, make_aws_tenant
from tests.integration.conftest import Platform

ROWS = int(os.environ.get("BENCH_AWS_ROWS", "1000000"))
BLOCK = min(ROWS, 50_000)
PERIOD = "2026-01"
DAY = dt.date(2026, 1, 20)


@pytest.fixture
def settings_overrides(clouds: CloudStandIns) -> dict[str, object]:
    return dict(clouds.environment())


@pytest.mark.timeout(3600)  # 1M rows through the emulator outlast the suite's 300 s
@pytest.mark.parametrize("export_type", ["FOCUS_1_2_AWS", "CUR2"])
def test_bench_aws_export_end_to_end(
    platform: Platform, clouds: CloudStandIns, export_type: str
) -> None:
    tenant = make_aws_tenant(platform, clouds, export_type)
    block = export_table(export_type, PERIOD, BLOCK, 2026)
    table = pa.concat_tables([block] * max(1, ROWS // BLOCK))
    sent = write_export(
        tenant.s3, tenant.bucket, PREFIX, tenant.export_name, export_type, PERIOD,
        table=table, files=max(1, table.num_rows // 250_000),
    )  # fmt: skip
    assert sent.billed_total == billed_total(block, export_type) * max(1, ROWS // BLOCK)
    # The runner's own work alone: S3 read, Arrow conversion, checks and total
    # (what the emulator does with the rows is measured by the steps below).
    access = steps._access(tenant.ctx("read", DAY), *steps._config(tenant.ctx("read", DAY)))
    manifest = newest_manifest(access, dt.date(2026, 1, 1))
    assert manifest is not None
    began = time.perf_counter()
    reader = PeriodReader(access, manifest, export_type)
    for _ in reader.batches():
        pass
    read_s = time.perf_counter() - began
    assert (reader.landed.rows, reader.landed.billed_total) == (sent.rows, sent.billed_total)
    times = {}
    start = time.perf_counter()
    for name, step in (("land", steps.land), ("convert", steps.convert), ("check", steps.check)):
        began = time.perf_counter()
        step(tenant.ctx(name, DAY))
        times[name] = time.perf_counter() - began
    total = time.perf_counter() - start
    row = tenant.query("SELECT COUNT(*) AS n, SUM(BilledCost) AS b FROM {focus}")[0]
    assert (int(row["n"]), row["b"]) == (sent.rows, sent.billed_total)
    n = sent.rows
    print(
        f"\nAWS {export_type} {n} rows: read+convert in the runner {n / read_s:,.0f} rows/s "
        f"({read_s:.1f} s); "
        + ", ".join(f"{k} {n / v:,.0f} rows/s ({v:.1f} s)" for k, v in times.items())
        + f"; end to end {n / total:,.0f} rows/s ({total:.1f} s); "
        f"runner peak RSS {vm_hwm_mib():.0f} MiB"
    )

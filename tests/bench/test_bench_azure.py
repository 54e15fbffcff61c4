"""Figures: an Azure FocusCost export (1.0r2, gzip CSV) -> focus_cost, end to end.

Run with `make bench` (BENCH_AZURE_ROWS sets the size, default 100,000). The export
is written to Azurite in parts of 50,000 rows (generating it is not measured), then
azure.land (blobs -> staging -> raw), azure.convert and azure.check run; prints input
rows per second of each step and end to end and the peak memory of this process, and
proves the reconciliation is exact. No duration is asserted.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import time

import pytest

from local.azure_export import FocusCostGenerator
from local.cloud_access import CloudStandIns
from shared.sources.azure import mapping, reader
from tests.bench.test_bench_focus import reset_vm_hwm, vm_hwm_mib
from tests.integration.azure_support import make_azure_tenant
from tests.integration.conftest import Platform

ROWS = int(os.environ.get("BENCH_AZURE_ROWS", "100000"))
START, END = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
RUN_DATE = dt.date(2026, 11, 30)


@pytest.fixture
def settings_overrides(clouds: CloudStandIns) -> dict[str, object]:
    return dict(clouds.environment())


def test_bench_azure_focuscost_end_to_end(platform: Platform, clouds: CloudStandIns) -> None:
    tenant = make_azure_tenant(platform, clouds, "1.0r2")
    gen = FocusCostGenerator(seed=3, version="1.0r2")
    days = 30
    rows = list(gen.rows(START, days, max(1, ROWS // days)))
    sent = tenant.export(gen, rows, START, END, rows_per_part=50_000)
    # The generated rows are Python dicts (GiBs at 1M): drop them and restart the
    # peak, so the figure is the steps' own memory plus what Python kept of them.
    del rows
    gc.collect()
    reset_vm_hwm()
    # What Python keeps of the freed rows (its arenas are not given back) stays
    # resident: the steps' own memory is the peak above this baseline.
    baseline = vm_hwm_mib(field="VmRSS")
    times = {}
    start = time.perf_counter()
    for name, step in (
        ("land", reader.land),
        ("convert", mapping.convert),
        ("check", mapping.check),
    ):
        began = time.perf_counter()
        step(tenant.ctx(name, RUN_DATE, run_id="run_bench"))
        times[name] = time.perf_counter() - began
    total = time.perf_counter() - start
    row = tenant.query("SELECT COUNT(*) AS n, SUM(BilledCost) AS b FROM {focus}")[0]
    assert (int(row["n"]), row["b"]) == (sent.rows, sent.billed_cost)
    n = sent.rows
    print(
        f"\nAzure FocusCost 1.0r2 {n} rows: "
        + ", ".join(f"{k} {n / v:,.0f} rows/s ({v:.1f} s)" for k, v in times.items())
        + f"; end to end {n / total:,.0f} rows/s ({total:.1f} s); "
        f"runner peak RSS {vm_hwm_mib():.0f} MiB ({baseline:.0f} MiB before the steps)"
    )

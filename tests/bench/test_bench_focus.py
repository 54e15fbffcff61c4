"""Figures for the README: GCP export -> FOCUS conversion of 1,000,000 rows on the emulator.

Run with `make bench` (BENCH_FOCUS_ROWS overrides the size). Prints input rows per
second of the extract and of the conversion, the peak memory (VmHWM) of this
Python process and of the emulator process, and proves the DQ reconciliation is
still exact. Nothing here asserts a duration: timings vary by machine.
"""

from __future__ import annotations

import datetime as dt
import os
import time

from local.billing_export import ExportGenerator
from local.emulator import Emulator
from shared.sources.gcp import mapping as focus
from shared.sources.gcp import reader as gcp_billing
from tests.integration.conftest import Platform
from tests.integration.focus_support import make_tenant

ROWS = int(os.environ.get("BENCH_FOCUS_ROWS", "1000000"))
SEED_ROWS = 10_000  # generated in Python; the rest are copies made inside the warehouse
DAY = dt.date(2026, 11, 10)


def reset_vm_hwm() -> None:
    """Restarts the peak (VmHWM) at the current RSS, so a figure leaves out what the
    benchmark itself built before (Linux `clear_refs` 5; a no-op where refused)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def vm_hwm_mib(pid: int | str = "self", field: str = "VmHWM") -> float:
    """Peak (or with field="VmRSS", current) resident memory of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def test_bench_focus_conversion_of_a_million_rows(platform: Platform, emulator: Emulator) -> None:
    tenant = make_tenant(platform)
    tenant.seed(list(ExportGenerator(seed=2026).day(DAY, SEED_ROWS)))
    copies = max(1, ROWS // SEED_ROWS)
    if copies > 1:
        # Replicate inside the emulator: paging 1M nested rows through a load is not the
        # thing measured here. Copies keep their dates, so the run window is the same.
        wh = platform.deps.warehouse
        project, dataset, table = tenant.source_table.split(".")
        source = f"`{project}.{dataset}.{table}`"
        wh.execute(
            f"INSERT INTO {source} SELECT s.* FROM {source} AS s "
            "CROSS JOIN UNNEST(GENERATE_ARRAY(2, @copies)) AS copy",
            {"copies": copies},
        )
    rows = SEED_ROWS * copies
    params = {"lookback_days": 0}

    started = time.perf_counter()
    extracted = gcp_billing.extract(tenant.ctx("extract", DAY, **params))
    extract_s = time.perf_counter() - started
    assert extracted.rows_processed == rows

    started = time.perf_counter()
    converted = focus.convert_gcp(tenant.ctx("convert", DAY, **params))
    convert_s = time.perf_counter() - started
    assert converted.rows_processed == rows

    # The same SELECT reduced to its totals, without the write. DuckDB prunes the
    # unused output columns, so this bounds reading and joining, not the whole job.
    wh = platform.deps.warehouse
    select = focus.convert_sql(
        wh.table(tenant.tenant_id, "gcp_billing_raw"), wh.table(tenant.tenant_id, "focus_cost")
    ).split("\n", 1)[1]
    started = time.perf_counter()
    wh.query(
        f"SELECT COUNT(*) AS n, SUM(BilledCost) AS b FROM ({select})",
        {
            "pipeline_id": tenant.config_id,
            "date_from": DAY,
            "date_to": DAY,
            "run_date": DAY,
            "lookback_days": 0,
            "run_id": "x",
        },
    )
    select_s = time.perf_counter() - started

    started = time.perf_counter()
    checked = focus.check_gcp(tenant.ctx("dq", DAY, **params))
    check_s = time.perf_counter() - started
    recon = {r.check_name: r for r in checked.dq_results}["reconciliation_billed_cost"]
    assert recon.status == "PASS" and recon.expected == recon.actual

    assert emulator.process is not None
    print()
    print(
        f"BENCH focus extract   rows={rows:>9,}  {extract_s:6.1f} s  "
        f"{rows / extract_s:>9,.0f} rows/s"
    )
    print(
        f"BENCH focus convert   rows={rows:>9,}  {convert_s:6.1f} s  "
        f"{rows / convert_s:>9,.0f} rows/s"
    )
    print(
        f"BENCH focus convert SELECT only (no write)  {select_s:6.1f} s  "
        f"{rows / select_s:>9,.0f} rows/s"
    )
    print(
        f"BENCH focus DQ check  rows={rows:>9,}  {check_s:6.1f} s  reconciliation exact: "
        f"SUM(BilledCost) = {recon.actual} = SUM(cost)+SUM(credits) = {recon.expected}"
    )
    print(
        f"BENCH focus peak memory  python={vm_hwm_mib():,.0f} MiB  "
        f"emulator={vm_hwm_mib(emulator.process.pid):,.0f} MiB"
    )

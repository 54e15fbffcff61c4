"""README figures: the rows a daily GCP extract reads stay flat as the export history grows.

A daily run reads only the export partitions of its slice (gcp_billing.PARTITIONS).
The local export is partitioned on export_time (the stand-in for Google's
ingestion-time _PARTITIONTIME, see docs/decisions.md), so the rows in the
partitions a run reads are counted directly; BigQuery bills those partitions'
bytes. The earlier predicate (`... OR DATE(export_time) BETWEEN ...`) had no
partition bound, so it read the whole table. Nothing here asserts a duration.
"""

from __future__ import annotations

import datetime as dt
import os

from local.billing_export import ExportGenerator
from shared.pipelines.context import RunContext, StepContext
from shared.sources.gcp import reader as gcp_billing
from tests.integration.conftest import Platform
from tests.integration.focus_support import make_tenant

ROWS_PER_DAY = int(os.environ.get("BENCH_PRUNING_ROWS_PER_DAY", "200"))
LAST_DAY = dt.date(2026, 11, 10)


def _figures(platform: Platform, history_days: int) -> tuple[int, int, int]:
    tenant = make_tenant(platform)
    first = LAST_DAY - dt.timedelta(days=history_days - 1)
    tenant.seed(ExportGenerator(seed=7).rows(first, history_days, ROWS_PER_DAY))
    run = RunContext("run_b", tenant.tenant_id, tenant.config_id, "gcp_cost_billing", LAST_DAY, "x")
    params = gcp_billing.window_params(StepContext(platform.deps, run, "extract", {}, None))  # type: ignore[arg-type]
    wh = platform.deps.warehouse
    project, dataset, table = tenant.source_table.split(".")
    source = f"`{project}.{dataset}.{table}`"
    [total] = wh.query(f"SELECT COUNT(*) AS n FROM {source}", {})
    partitions = gcp_billing.PARTITIONS.format(partition="s.export_time")
    [read] = wh.query(
        f"SELECT COUNT(*) AS n FROM {source} AS s WHERE {partitions}",
        {k: params[k] for k in ("partitions_from", "partitions_until")},
    )
    extracted = gcp_billing.extract(tenant.ctx("extract", LAST_DAY))
    return int(total["n"]), int(read["n"]), int(extracted.rows_processed or 0)


def test_bench_rows_read_by_a_daily_extract_with_one_and_twelve_months_of_history(
    platform: Platform,
) -> None:
    lines = []
    for days in (30, 365):
        total, read, extracted = _figures(platform, days)
        lines.append(
            f"{days:>3} days of history: {total:>7} export rows; a daily run reads "
            f"{read} rows in its partitions ({read / total:.1%}), replaces {extracted}"
        )
    print("\nGCP extract partition pruning (rows in the partitions one daily run reads):")
    print("\n".join(lines))

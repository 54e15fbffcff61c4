"""The GCP extract's source statement prunes: its WHERE bounds the export's partitions both ways."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, cast

import pytest
import sqlglot
from google.cloud import bigquery
from sqlglot import expressions as exp

from shared.pipelines.context import RunContext, StepContext
from shared.sources.gcp.reader import (
    EXPORT_MARGIN_DAYS,
    delete_window_sql,
    partition_column,
    source_select_sql,
    window_params,
)

SOURCE = "`billing-project.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9`"
UTC = dt.UTC


def conjuncts(where: exp.Expression) -> list[exp.Expression]:
    """The top-level AND terms of a WHERE: a bound inside an OR would not prune."""
    if isinstance(where, exp.And):
        return conjuncts(where.left) + conjuncts(where.right)
    if isinstance(where, exp.Paren):
        return conjuncts(where.this)
    return [where]


def bounds_on(sql: str, column: str) -> dict[type, str]:
    where = sqlglot.parse_one(sql, read="bigquery").find(exp.Where)
    assert where is not None
    found = {}
    for term in conjuncts(where.this):
        if isinstance(term, (exp.GTE, exp.GT, exp.LT, exp.LTE)):
            left = term.left
            if isinstance(left, exp.Column) and left.name.lower() == column.lower():
                found[type(term)] = term.right.sql(dialect="bigquery")
    return found


def ctx(run_date: dt.date, date_from: dt.date | None = None, lookback: int = 3) -> StepContext:
    run = RunContext(
        run_id="run_x",
        tenant_id="acme",
        config_id="cfg",
        pipeline="gcp_cost_billing",
        run_date=run_date,
        dataset_id="acme",
        date_from=date_from,
    )
    return StepContext(
        cast(Any, None), run, "extract", {"lookback_days": lookback}, threading.Event()
    )


def test_the_source_where_bounds_partitiontime_from_below_and_above_at_top_level() -> None:
    sql = source_select_sql(SOURCE)

    assert bounds_on(sql, "_PARTITIONTIME") == {
        exp.GTE: "@partitions_from",
        exp.LT: "@partitions_until",
    }
    # The old full-history predicate is gone: no clause on export_time alone reaches
    # back without an upper bound outside the partition range.
    assert "_PARTITIONTIME" in sql


def test_a_source_partitioned_on_export_time_is_bounded_on_that_column() -> None:
    sql = source_select_sql(SOURCE, "export_time")

    assert bounds_on(sql, "export_time") == {
        exp.GTE: "@partitions_from",
        exp.LT: "@partitions_until",
    }
    assert "_PARTITIONTIME" not in sql


def test_the_partitions_read_follow_the_run_not_the_history() -> None:
    daily = window_params(ctx(dt.date(2026, 6, 10)))
    ranged = window_params(ctx(dt.date(2026, 6, 30), date_from=dt.date(2026, 6, 1)))

    # lookback 3 + a day of slack before; margin + a day of slack after (exclusive bound).
    assert daily["partitions_from"] == dt.datetime(2026, 6, 6, tzinfo=UTC)
    assert daily["partitions_until"] == dt.datetime(
        2026, 6, 10 + EXPORT_MARGIN_DAYS + 2, tzinfo=UTC
    )
    assert daily["exported_until"] == dt.date(2026, 6, 10 + EXPORT_MARGIN_DAYS)
    assert ranged["partitions_from"] == dt.datetime(2026, 5, 28, tzinfo=UTC)
    assert ranged["partitions_until"] == dt.datetime(2026, 7, 5, tzinfo=UTC)
    partitions = (daily["partitions_until"] - daily["partitions_from"]).days
    assert partitions == 3 + 1 + 1 + EXPORT_MARGIN_DAYS + 1  # lookback, slack, day, margin, slack


def test_the_raw_delete_replaces_exactly_the_slice_the_source_read_takes() -> None:
    select = source_select_sql(SOURCE)
    delete = delete_window_sql("`p.acme.gcp_billing_raw`")

    assert "@exported_until" in select and "@exported_until" in delete
    assert select.count("DATE_SUB(@date_from, INTERVAL @lookback_days DAY)") == 3
    assert delete.count("DATE_SUB(@date_from, INTERVAL @lookback_days DAY)") == 3


@pytest.mark.parametrize(
    ("partitioning", "expected"),
    [
        (bigquery.TimePartitioning(), "_PARTITIONTIME"),  # Google's export: ingestion time
        (bigquery.TimePartitioning(field="export_time"), "export_time"),
        (bigquery.TimePartitioning(field="usage_start_time"), None),  # would drop corrections
        (None, None),
        (bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.MONTH), None),
    ],
)
def test_only_a_partition_by_export_time_is_pruned_on(
    partitioning: bigquery.TimePartitioning | None, expected: str | None
) -> None:
    table = bigquery.Table("p.d.t")
    table.time_partitioning = partitioning

    assert partition_column(table) == expected

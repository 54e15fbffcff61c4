"""Drift checks on INFORMATION_SCHEMA shapes: SQL type spellings reduce to the API's names."""

from __future__ import annotations

import pytest

from shared.platform.bootstrap import table_drift
from shared.platform.schemas import load_table_spec
from shared.platform.settings import REPO_ROOT
from shared.platform.warehouse import TableShape, _api_type

SPEC = load_table_spec(REPO_ROOT / "schemas" / "central" / "tenant_usage_quotas.json")


@pytest.mark.parametrize(
    ("data_type", "api_type"),
    [
        ("INT64", "INT64"),
        ("ARRAY<STRING>", "STRING"),
        ("STRUCT<a STRING, b ARRAY<INT64>>", "RECORD"),
        ("ARRAY<STRUCT<a STRING>>", "RECORD"),
        ("NUMERIC(10, 2)", "NUMERIC"),
        ("STRING(64)", "STRING"),
        ("INTEGER", "INT64"),
        ("timestamp", "TIMESTAMP"),
    ],
)
def test_sql_type_spellings_reduce_to_api_type_names(data_type: str, api_type: str) -> None:
    assert _api_type(data_type) == api_type


def _live_shape() -> TableShape:
    return TableShape(
        name=SPEC.table,
        columns={f.name: f.type for f in SPEC.schema_},
        partition_field=SPEC.timePartitioning.field,
        clustering_fields=list(SPEC.clustering.fields),
    )


def test_a_table_that_matches_its_schema_file_has_no_drift() -> None:
    assert table_drift(_live_shape(), SPEC) == []


def test_missing_columns_types_partitioning_and_clustering_are_each_reported() -> None:
    shape = _live_shape()
    del shape.columns["daily_runs"]
    shape.columns["monthly_runs"] = "STRING"
    shape.partition_field = None
    shape.clustering_fields = [*reversed(shape.clustering_fields), "extra"]

    problems = table_drift(shape, SPEC)

    assert problems == [
        "missing column daily_runs",
        "column monthly_runs is STRING, schema says INT64",
        "partitioning differs",
        "clustering differs",
    ]

"""The native FOCUS statements, assembled over Google's export and a 1.0 export, analyze."""

from __future__ import annotations

import pytest
from google.cloud import bigquery

from local.gcp_focus_export import FOCUS_1_0_EXPORT_SCHEMA, FOCUS_EXPORT_SCHEMA
from shared.platform.sql_analyzer import BIGQUERY_FUNCTIONS, Table, ZetaSqlAnalyzer, columns_of
from shared.sources.focus_native import native
from tests.sqlcheck.catalog import PARTITION_PSEUDO_COLUMNS, tenant_columns
from tests.sqlcheck.server import analyzer_address

PARAMS = {
    "pipeline_id": "STRING",
    "date_from": "DATE",
    "date_to": "DATE",
    "lookback_days": "INT64",
    "partitions_from": "TIMESTAMP",
    "tenant_id": "STRING",
    "credential_id": "STRING",
    "run_date": "DATE",
    "run_id": "STRING",
}
FOCUS = ("p", "tenant", "focus_cost")


@pytest.fixture(scope="module")
def analyzer() -> ZetaSqlAnalyzer:
    return ZetaSqlAnalyzer(analyzer_address())


@pytest.mark.parametrize(
    ("schema", "partition"),
    [(FOCUS_EXPORT_SCHEMA, "_PARTITIONTIME"), (FOCUS_1_0_EXPORT_SCHEMA, "x_ExportTime")],
    ids=["google-focus-export", "focus-1.0-export"],
)
def test_the_native_statements_analyze_as_googlesql(
    analyzer: ZetaSqlAnalyzer, schema: list[bigquery.SchemaField], partition: str
) -> None:
    source_path = ("p", "billing", "export")
    focus_columns = tenant_columns("focus_cost")
    assert focus_columns is not None
    tables = [
        Table(source_path, columns_of(schema), PARTITION_PSEUDO_COLUMNS),
        Table(FOCUS, focus_columns),
    ]
    source = native.normalized_source_sql("`p.billing.export`", schema, partition)
    focus = "`p.tenant.focus_cost`"

    for sql in (
        native.insert_sql(focus, source),
        native.delete_sql(focus),
        native.reconciliation_sql(source, focus),
    ):
        used = {k: v for k, v in PARAMS.items() if f"@{k}" in sql}
        assert analyzer.analyze(sql, tables, used, BIGQUERY_FUNCTIONS) is None, sql

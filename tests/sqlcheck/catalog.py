"""The catalog statements are analyzed against: `schemas/`, the views and sources we read.

A statement names tables by path (`project.dataset.table`, `dataset.table`, or
`table` under a default dataset). Datasets in tests are per-test random names,
so a table is found by what its dataset IS, not by its name: the recording
says which dataset is the central one; every other platform dataset is a
tenant's. What each kind of dataset holds:

- central: `schemas/central/*.json`;
- tenant: `schemas/tenant/*.json`, the log views (`pipeline_runs`, ... : the
  central tables' columns), the built-in dryrun's scratch table, the extract's
  staging tables, and the tables tests create for tenant SQL (TEST_TABLES);
- any dataset: the GCP billing export (`gcp_billing_export_v1_*` and
  `gcp_billing_export_resource_v1_*`), ingestion-time partitioned, so it has
  `_PARTITIONTIME` and `_PARTITIONDATE`;
- `<dataset>.INFORMATION_SCHEMA.<view>`: the views we read, with their
  documented columns.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from local.billing_export import export_schema
from local.gcp_focus_export import FOCUS_1_0_EXPORT_SCHEMA, FOCUS_EXPORT_SCHEMA
from shared.platform.schemas import SchemaCatalog, load_catalog
from shared.platform.settings import REPO_ROOT
from shared.platform.sql_analyzer import Table, columns_of
from shared.sources.gcp.reader import LINEAGE, RAW_TABLE
from shared.tenancy.tenant_dataset import LOG_VIEWS

Columns = tuple[tuple[str, str], ...]

# Ingestion-time partitioned tables (the billing export) have these; they are
# not part of SELECT *.
# https://cloud.google.com/bigquery/docs/partitioned-tables#ingestion_time
PARTITION_PSEUDO_COLUMNS: Columns = (("_PARTITIONTIME", "TIMESTAMP"), ("_PARTITIONDATE", "DATE"))

# INFORMATION_SCHEMA views the platform reads, with the columns BigQuery documents.
# https://cloud.google.com/bigquery/docs/information-schema-columns
# https://cloud.google.com/bigquery/docs/information-schema-tables
# https://cloud.google.com/bigquery/docs/information-schema-partitions
INFORMATION_SCHEMA: dict[str, Columns] = {
    "COLUMNS": (
        ("table_catalog", "STRING"),
        ("table_schema", "STRING"),
        ("table_name", "STRING"),
        ("column_name", "STRING"),
        ("ordinal_position", "INT64"),
        ("is_nullable", "STRING"),
        ("data_type", "STRING"),
        ("is_generated", "STRING"),
        ("generation_expression", "STRING"),
        ("is_stored", "STRING"),
        ("is_hidden", "STRING"),
        ("is_updatable", "STRING"),
        ("is_system_defined", "STRING"),
        ("is_partitioning_column", "STRING"),
        ("clustering_ordinal_position", "INT64"),
        ("collation_name", "STRING"),
        ("column_default", "STRING"),
        ("rounding_mode", "STRING"),
    ),
    "TABLES": (
        ("table_catalog", "STRING"),
        ("table_schema", "STRING"),
        ("table_name", "STRING"),
        ("table_type", "STRING"),
        ("is_insertable_into", "STRING"),
        ("is_typed", "STRING"),
        ("is_change_history_enabled", "STRING"),
        ("creation_time", "TIMESTAMP"),
        ("base_table_catalog", "STRING"),
        ("base_table_schema", "STRING"),
        ("base_table_name", "STRING"),
        ("snapshot_time_ms", "TIMESTAMP"),
        ("ddl", "STRING"),
        ("default_collation_name", "STRING"),
        ("upsert_stream_apply_watermark", "TIMESTAMP"),
        ("replica_source_catalog", "STRING"),
        ("replica_source_schema", "STRING"),
        ("replica_source_name", "STRING"),
        ("replication_status", "STRING"),
        ("replication_error", "STRING"),
        ("is_managed_table", "STRING"),
        ("managed_table_type", "STRING"),
    ),
    "PARTITIONS": (
        ("table_catalog", "STRING"),
        ("table_schema", "STRING"),
        ("table_name", "STRING"),
        ("partition_id", "STRING"),
        ("total_rows", "INT64"),
        ("total_logical_bytes", "INT64"),
        ("total_billable_bytes", "INT64"),
        ("last_modified_time", "TIMESTAMP"),
        ("storage_tier", "STRING"),
    ),
}

# Tables the tests create in a tenant dataset for tenant SQL (bq_etl targets and
# sources), each with the test that creates it. The platform never creates
# these names; a tenant's own tables are looked up live at upload instead.
_USAGE: Columns = (("day", "DATE"), ("service", "STRING"), ("cost", "NUMERIC"))
TEST_TABLES: dict[str, Columns] = {
    # tests/integration/test_warehouse.py `counters`
    "counters": (
        ("tenant_id", "STRING"),
        ("used", "INT64"),
        ("amount", "NUMERIC"),
        ("happened_at", "TIMESTAMP"),
    ),
    # tests/integration/test_bq_etl.py `datasets`: sources, and the targets its
    # queries create (bq_etl creates a target from its query's columns).
    "usage": _USAGE,
    "secrets": _USAGE,
    "copy": _USAGE,
    "daily": _USAGE,
    "by_service": (
        ("service", "STRING"),
        ("cost", "NUMERIC"),
        ("tenant", "STRING"),
        ("as_of", "DATE"),
    ),
    "checked": (("service", "STRING"), ("cost", "NUMERIC")),
    "answers": (("tenant", "STRING"), ("day", "DATE"), ("answer", "INT64")),
    # tests/integration/test_dq.py test_float_reconciliation_with_a_tolerance
    "a": (("v", "FLOAT64"),),
    "b": (("v", "FLOAT64"),),
}

# Per-run scratch tables (random suffixes): the built-in dryrun's probe table
# (shared/tenancy/tenant_dataset.py write_check) and the extract's staging copy
# (shared.sources.gcp.reader.py).
_DRYRUN = re.compile(r"^_dryrun_[0-9a-f]+$")
_STAGING = re.compile(rf"^_stg_{RAW_TABLE}_[0-9a-f]+$")
_GENAI_STAGING = re.compile(r"^_stg_((?:openai|anthropic)_[a-z_]+_raw)_[0-9a-f]+$")
# The Azure reader's per-run staging table (shared/sources/azure/reader.py).
_AZURE_STAGING = re.compile(r"^_stg_azure_focus_[0-9a-f]+$")
_EXPORT = re.compile(r"^gcp_billing_export_(resource_)?v1_[A-Za-z0-9_]+$")
# The AWS reader's staging copy (shared/sources/aws/steps.py): the raw table's
# source columns (money NUMERIC, staged as Parquet DECIMAL(38, 9)), plus the file key.
_AWS_STAGING = re.compile(r"^_stg_(aws_[a-z0-9]+_raw)_[0-9a-f]+$")
# Google's FOCUS export (local/gcp_focus_export.py) and a FOCUS 1.0 export's stand-in.
_FOCUS_EXPORT = re.compile(r"^gcp_billing_export_focus_[A-Za-z0-9_]+$")
_FOCUS_1_0_EXPORT = re.compile(r"^focus_1_0_export_[A-Za-z0-9_]+$")


@functools.cache
def schemas() -> SchemaCatalog:
    return load_catalog(REPO_ROOT / "schemas")


@functools.cache
def export_columns() -> Columns:
    """The GCP billing export as local/billing_export.py builds it (FLOAT64 money)."""
    return columns_of(export_schema())


def central_columns(name: str) -> Columns | None:
    spec = schemas().central.get(name)
    return columns_of(spec.schema_) if spec else None


def tenant_columns(name: str) -> Columns | None:
    """A table or view the platform (or a test) puts in a tenant dataset."""
    catalog = schemas()
    if name in catalog.tenant:
        return columns_of(catalog.tenant[name].schema_)
    if name in LOG_VIEWS:
        return central_columns(LOG_VIEWS[name])
    if _DRYRUN.match(name):
        return (("probe", "STRING"),)
    if _STAGING.match(name):
        return tuple(
            c for c in columns_of(catalog.tenant[RAW_TABLE].schema_) if c[0] not in LINEAGE
        )
    genai = _GENAI_STAGING.match(name)
    if genai and genai[1] in catalog.tenant:
        # The GenAI extract's staging copies (shared/pipelines/steps/genai.py).
        return tuple(c for c in columns_of(catalog.tenant[genai[1]].schema_) if c[0] not in LINEAGE)
    aws = _AWS_STAGING.match(name)
    if aws and aws.group(1) in catalog.tenant:
        source = [c for c in columns_of(catalog.tenant[aws.group(1)].schema_) if c[0][:2] != "x_"]
        return (*source, ("x_source_file", "STRING"))
    if _AZURE_STAGING.match(name):
        from shared.sources.azure.reader import staging_columns

        return staging_columns()
    return TEST_TABLES.get(name)


def table_for(
    path: tuple[str, ...], *, project: str, central_dataset: str | None, default_dataset: str | None
) -> Table | None:
    """The catalog entry for a path as the statement wrote it, or None (unknown table)."""
    if len(path) >= 3 and path[-2].upper() == "INFORMATION_SCHEMA":
        columns = INFORMATION_SCHEMA.get(path[-1].upper())
        return Table(path, columns) if columns else None
    name = path[-1]
    if _EXPORT.match(name):
        return Table(path, export_columns(), PARTITION_PSEUDO_COLUMNS)
    if _FOCUS_EXPORT.match(name):
        return Table(path, columns_of(FOCUS_EXPORT_SCHEMA), PARTITION_PSEUDO_COLUMNS)
    if _FOCUS_1_0_EXPORT.match(name):
        return Table(path, columns_of(FOCUS_1_0_EXPORT_SCHEMA), PARTITION_PSEUDO_COLUMNS)
    if len(path) == 3:
        if path[0] != project:
            return None
        dataset = path[1]
    elif len(path) == 2:
        dataset = path[0]
    elif len(path) == 1 and default_dataset:
        dataset = default_dataset.split(".")[-1]
    else:
        return None
    columns = central_columns(name) if dataset == central_dataset else tenant_columns(name)
    return Table(path, columns) if columns else None


def tables_for(
    paths: Iterable[tuple[str, ...]],
    *,
    project: str,
    central_dataset: str | None,
    default_dataset: str | None,
) -> list[Table]:
    found = (
        table_for(
            path, project=project, central_dataset=central_dataset, default_dataset=default_dataset
        )
        for path in paths
    )
    return [table for table in found if table is not None]

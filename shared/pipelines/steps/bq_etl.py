"""`bq_etl.query`: a tenant's own SELECT, sandboxed, written into a table of its dataset by DML.

The SQL is re-checked by the sandbox at run time from the stored text (the
upload-time check is not trusted: the config row could have been altered).
What runs is the sandbox's regenerated SQL, with `@tenant_id`/`@run_date` bound
as query parameters.

Writing is DML, never a query job's destination table or a streaming insert:
bqemulator silently ignores `QueryJobConfig.destination` (the job "succeeds" and
writes nothing), and rows a later run replaces must be created by DML on
production BigQuery anyway. So:

- the result's columns come from a `LIMIT 0` probe of the query; a missing target
  table is created from them through the API (`create_table` keeps NUMERIC exact
  on the emulator, where DDL would round it), partitioned by `partition_column`;
- WRITE_APPEND is `INSERT INTO target (cols) SELECT cols FROM (query)`;
- WRITE_TRUNCATE is one atomic `MERGE ... ON FALSE` that deletes the old rows and
  inserts the new ones, so readers never see an empty table;
- with `partition_column`, the step owns the run date's rows only: the query's
  rows are filtered to that date and WRITE_TRUNCATE deletes only that date, so
  re-running a date replaces it and never duplicates.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from google.api_core import exceptions as gexc
from google.cloud import bigquery
from pydantic import BaseModel, ConfigDict, Field

from shared.pipelines.context import StepContext, StepError, StepResult
from shared.pipelines.sql_sandbox import TenantSqlError, tenant_catalog, validate_tenant_sql
from shared.pipelines.steps import step_query
from shared.tenancy.tenant_dataset import LOG_VIEWS

_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,299}$")
_PARTITION_TYPES = {"DATE", "TIMESTAMP", "DATETIME"}


class QueryParams(BaseModel):
    """The step's parameters (from the template or the config)."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1)
    target_table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
    write_disposition: Literal["WRITE_TRUNCATE", "WRITE_APPEND"] = "WRITE_APPEND"
    partition_column: str | None = Field(default=None, pattern=_COLUMN.pattern)


def _col(name: str) -> str:
    if not _COLUMN.match(name):
        raise StepError("invalid_column", f"column name {name!r} can't be written")
    return f"`{name}`"


def run_query(ctx: StepContext) -> StepResult:
    """Runs the step; raises StepError (non-transient) for anything the tenant must fix."""
    params = QueryParams.model_validate(ctx.params)
    run = ctx.run
    warehouse = ctx.deps.warehouse
    protected = set(ctx.deps.catalog.tenant) | set(LOG_VIEWS)
    if params.target_table in protected:
        raise StepError(
            "target_protected", f"{params.target_table} is managed by the platform; pick another"
        )
    try:
        checked = validate_tenant_sql(
            params.sql,
            run.dataset_id,
            project=warehouse.project,
            catalog=tenant_catalog(ctx.deps, run.dataset_id),
        )
    except TenantSqlError as exc:
        raise StepError("sql_rejected", str(exc)) from None
    values: dict[str, Any] = {"tenant_id": run.tenant_id, "run_date": run.run_date}
    used = set(checked.parameters)
    pc = params.partition_column
    if pc:
        used.add("run_date")
    bound = {k: v for k, v in values.items() if k in used}

    probe = step_query(ctx, f"SELECT * FROM ({checked.sql}) LIMIT 0", bound)
    columns = [f.name for f in probe.schema]
    if not columns or len({c.lower() for c in columns}) != len(columns):
        raise StepError("invalid_columns", "the query must return uniquely named columns")
    target = warehouse.table(run.dataset_id, params.target_table)
    schema = _target_schema(ctx, params, probe.schema)
    missing = [c for c in columns if c.lower() not in {f.name.lower() for f in schema}]
    if missing:
        raise StepError(
            "column_mismatch", f"{params.target_table} has no column(s) {', '.join(missing)}"
        )
    date_filter = ""
    kind: str | None = None
    if pc:
        kind = next((f.field_type for f in schema if f.name.lower() == pc.lower()), None)
        if kind not in _PARTITION_TYPES or pc.lower() not in {c.lower() for c in columns}:
            raise StepError(
                "invalid_partition_column",
                f"partition_column {pc} must be a DATE/TIMESTAMP/DATETIME column of the result",
            )
        date_filter = _date_is_run_date(_col(pc), kind)

    cols = ", ".join(_col(c) for c in columns)
    source = f"SELECT {cols} FROM ({checked.sql})" + (f" WHERE {date_filter}" if pc else "")
    if params.write_disposition == "WRITE_APPEND":
        sql = f"INSERT INTO {target} ({cols}) {source}"
    else:
        scope = f" AND {_date_is_run_date('T.' + _col(pc), kind)}" if pc else ""
        sql = (
            f"MERGE {target} AS T USING ({source}) AS S ON FALSE "
            f"WHEN NOT MATCHED BY SOURCE{scope} THEN DELETE "
            f"WHEN NOT MATCHED THEN INSERT ({cols}) "
            f"VALUES ({', '.join('S.' + _col(c) for c in columns)})"
        )
    done = step_query(ctx, sql, bound)
    written = done.inserted_rows
    if written is None and params.write_disposition == "WRITE_APPEND":
        written = done.dml_affected_rows
    elif written is None:
        # A MERGE's affected rows count its deletes too, and the emulator has no
        # DML stats: after a truncate the (date's) rows are exactly those inserted.
        scope = f" WHERE {_date_is_run_date(_col(pc), kind)}" if pc else ""
        only_date = {"run_date": run.run_date} if pc else {}
        counted = step_query(ctx, f"SELECT COUNT(*) AS n FROM {target}{scope}", only_date)
        written = int(counted.rows[0]["n"])
    return StepResult(
        rows_processed=written,
        bytes_billed=probe.bytes_billed + done.bytes_billed,
        message=f"{params.write_disposition} into {params.target_table}",
    )


def _date_is_run_date(column: str, kind: str | None) -> str:
    return f"{column} = @run_date" if kind == "DATE" else f"DATE({column}) = @run_date"


def _target_schema(
    ctx: StepContext, params: QueryParams, result_schema: list[bigquery.SchemaField]
) -> list[bigquery.SchemaField]:
    """The target's schema; a missing target is created (via the API) from the result's."""
    warehouse = ctx.deps.warehouse
    table_id = f"{warehouse.project}.{ctx.run.dataset_id}.{params.target_table}"
    try:
        return list(warehouse.client.get_table(table_id, timeout=30).schema)
    except gexc.NotFound:
        pass
    table = bigquery.Table(table_id, schema=result_schema)
    if params.partition_column:
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field=params.partition_column
        )
    try:
        created = warehouse.client.create_table(table, timeout=30)
    except gexc.Conflict:
        created = warehouse.client.get_table(table_id, timeout=30)  # a concurrent run made it
    return list(created.schema)

"""Steps `focus_native.convert` and `focus_native.check`: a native FOCUS export into focus_cost.

The export (Google's `gcp_billing_export_focus_<ACCOUNT>`, preview; schema:
https://docs.cloud.google.com/billing/docs/how-to/export-data-bigquery-tables/focus-export)
is read where it lies, through the run's GCP provider config. The entry point
gives it every FOCUS 1.2 column (`normalized_source_sql`: a column the export
lacks is NULL, a provider x_* column goes into x_provider_columns) and the
mapping `focus_1_2.sql` fills what FOCUS 1.2 requires from what 1.0 has.

A run replaces the config's focus_cost rows whose ChargePeriodStart date is in
date_from - lookback_days .. date_to with the export's current rows of those
dates (DELETE + INSERT ... SELECT, DML-created rows). Reads prune: the export
is ingestion-time partitioned (`_PARTITIONTIME`) and a row is appended on or
after its charge date, so only partitions from the window's first day on are
read. check proves per billing period SUM(BilledCost) and the row count equal
the export's own, exactly (NUMERIC), plus FOCUS's mandatory columns and values.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.pipelines.context import DqResult, DqStatus, StepContext, StepError, StepResult
from shared.platform.identifiers import quote_table
from shared.platform.settings import REPO_ROOT
from shared.sources.focus_checks import (
    FOCUS_1_3_ONLY,
    DqFailed,
    allowed_values_sql,
    null_check_sql,
)
from shared.sources.gcp.reader import provider_config
from shared.sources.run_inputs import run_query

MAPPING_FILE = Path(__file__).resolve().parent / "focus_1_2.sql"
FOCUS_TABLE = "focus_cost"
DEFAULT_LOOKBACK_DAYS = 3
# Without these an export is not FOCUS (of any version): the run fails naming the column.
REQUIRED = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "EffectiveCost",
    "ListCost",
    "ProviderName",
    "ServiceName",
)
_COMPLEX = ("RECORD", "STRUCT")


@functools.cache
def focus_types() -> dict[str, str]:
    """FOCUS 1.2 column -> its focus_cost type (schemas/tenant/focus_cost.json)."""
    spec = json.loads((REPO_ROOT / "schemas" / "tenant" / "focus_cost.json").read_text())
    return {
        f["name"]: f["type"]
        for f in spec["schema"]
        if not f["name"].startswith("x_") and f["name"] not in FOCUS_1_3_ONLY
    }


def _column(name: str, target: str, field: bigquery.SchemaField | None) -> str:
    if field is None:
        return f"CAST(NULL AS {target}) AS `{name}`"
    complex_ = field.mode == "REPEATED" or field.field_type in _COMPLEX
    if complex_:
        return f"TO_JSON_STRING(e.`{name}`) AS `{name}`"
    source = "FLOAT64" if field.field_type == "FLOAT" else field.field_type
    if source == target:
        return f"e.`{name}`"
    if target == "NUMERIC" and source == "FLOAT64":
        # Exact: the shortest decimal that round-trips (see shared/sources/gcp/reader.py).
        return f"PARSE_NUMERIC(CAST(e.`{name}` AS STRING)) AS `{name}`"
    return f"CAST(e.`{name}` AS {target}) AS `{name}`"


def _tags(fields: dict[str, bigquery.SchemaField]) -> str:
    """Tags from Google's x_Labels / x_Tags (the export has no FOCUS Tags column)."""
    parts = []
    if "x_Labels" in fields:
        parts.append("SELECT l.Key AS k, l.Value AS v FROM UNNEST(e.x_Labels) AS l")
    if "x_Tags" in fields:
        parts.append(
            "SELECT CONCAT(t.x_Namespace, '/', t.Key) AS k, t.Value AS v FROM UNNEST(e.x_Tags) AS t"
        )
    if not parts:
        return "CAST(NULL AS STRING) AS `Tags`"
    pairs = " UNION ALL ".join(parts)
    return (
        "(SELECT CONCAT('{', STRING_AGG(TO_JSON_STRING(kv.k) || ':' || TO_JSON_STRING(kv.v), "
        f"',' ORDER BY kv.k), '}}') FROM ({pairs}) AS kv) AS `Tags`"
    )


def normalized_source_sql(
    source_table: str, schema: list[bigquery.SchemaField], partition: str | None
) -> str:
    """The export's window with every FOCUS 1.2 column, its x_* columns as one JSON string."""
    fields = {f.name: f for f in schema}
    missing = [c for c in REQUIRED if c not in fields]
    if missing:
        raise StepError(
            "source_schema", f"the export {source_table} has no column {', '.join(missing)}"
        )
    columns = []
    for name, target in focus_types().items():
        if name == "Tags" and name not in fields:
            columns.append(_tags(fields))
        else:
            columns.append(_column(name, target, fields.get(name)))
    export_time = fields.get("x_ExportTime")
    columns.append(
        "e.x_ExportTime" if export_time is not None else "CAST(NULL AS TIMESTAMP) AS x_ExportTime"
    )
    extras = [n for n in fields if n.startswith("x_")]
    # The emulator lower-cases a struct's aliases in TO_JSON_STRING (BigQuery keeps them),
    # and refuses the key-by-key CONCAT alternative, so the one portable form is this.
    provider = (
        "TO_JSON_STRING(STRUCT(" + ", ".join(f"e.`{n}` AS `{n}`" for n in extras) + "))"
        if extras
        else "CAST(NULL AS STRING)"
    )
    columns.append(f"{provider} AS x_provider_columns")
    where = [
        "DATE(e.ChargePeriodStart) "
        "BETWEEN DATE_SUB(@date_from, INTERVAL @lookback_days DAY) AND @date_to"
    ]
    if partition is not None:
        where.insert(0, f"e.{partition} >= @partitions_from")
    return (
        "(SELECT\n  "
        + ",\n  ".join(columns)
        + f"\nFROM {source_table} AS e\nWHERE "
        + " AND ".join(where)
        + ")"
    )


def partition_column(table: bigquery.Table) -> str | None:
    """`_PARTITIONTIME` (Google's export), or x_ExportTime where a copy is column-partitioned."""
    partitioning = table.time_partitioning
    if partitioning is None:
        return None
    if partitioning.field is None:
        return "_PARTITIONTIME"
    return "x_ExportTime" if partitioning.field == "x_ExportTime" else None


@functools.cache
def mapping_text() -> str:
    lines = MAPPING_FILE.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--"))


def mapping_columns() -> list[str]:
    """The mapping's output names, read by sqlglot from the .sql (the one source)."""
    import sqlglot
    from sqlglot import expressions as exp

    parsed = sqlglot.parse_one(mapping_text().replace("{source}", "src"), read="bigquery")
    if not isinstance(parsed, exp.Select):
        raise StepError("mapping_invalid", "the native FOCUS mapping is not one SELECT")
    return [s.alias_or_name for s in parsed.expressions]


def _params(ctx: StepContext) -> dict[str, Any]:
    lookback = int(ctx.params.get("lookback_days", DEFAULT_LOOKBACK_DAYS))
    if lookback < 0 or lookback > 60:
        raise StepError("invalid_parameter", "lookback_days must be between 0 and 60")
    first = ctx.run.first_date - dt.timedelta(days=lookback)
    return {
        "pipeline_id": ctx.run.config_id,
        "date_from": ctx.run.first_date,
        "date_to": ctx.run.run_date,
        "lookback_days": lookback,
        # A day of slack: a row is appended on its charge date or after.
        "partitions_from": dt.datetime.combine(
            first - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC
        ),
    }


def _source(ctx: StepContext) -> tuple[str, str, dict[str, Any]]:
    config = provider_config(ctx)
    names = [
        config["source_project_id"],
        config["billing_export_dataset"],
        config["billing_export_table"],
    ]
    try:
        table = ctx.deps.warehouse.client.get_table(".".join(str(n) for n in names))
    except gexc.NotFound as exc:
        raise StepError("source_not_found", f"FOCUS export not found: {'.'.join(names)}") from exc
    quoted = quote_table(*names)
    return quoted, normalized_source_sql(quoted, table.schema, partition_column(table)), config


_FOCUS_WHERE = (
    "f.x_pipeline_id = @pipeline_id AND DATE(f.ChargePeriodStart) "
    "BETWEEN DATE_SUB(@date_from, INTERVAL @lookback_days DAY) AND @date_to"
)


# The run's lineage, added to the mapping's columns.
LINEAGE = {
    "x_focus_version": "'1.2'",
    "x_tenant_id": "@tenant_id",
    "x_pipeline_id": "@pipeline_id",
    "x_credential_id": "@credential_id",
    "x_run_date": "@run_date",
    "x_run_id": "@run_id",
    "x_ingested_at": "CURRENT_TIMESTAMP()",
}


def insert_sql(focus_table: str, source: str) -> str:
    """INSERT of the mapping over `source` (normalized_source_sql) with the run's lineage."""
    names = [*mapping_columns(), *LINEAGE]
    select = mapping_text().replace("{source}", source)
    return (
        f"INSERT INTO {focus_table} ({', '.join(f'`{n}`' for n in names)})\n"
        f"SELECT m.*, {', '.join(LINEAGE.values())}\nFROM (\n{select}\n) AS m"
    )


def delete_sql(focus_table: str) -> str:
    """Removes the config's focus_cost rows of the window (the first half of the replace)."""
    return f"DELETE FROM {focus_table} AS f WHERE {_FOCUS_WHERE}"


def convert(ctx: StepContext) -> StepResult:
    """Replaces the config's focus_cost rows of the window with the export's current rows."""
    from shared.platform.warehouse import Typed

    _, source, config = _source(ctx)
    focus = ctx.deps.warehouse.table(ctx.run.dataset_id, FOCUS_TABLE)
    params = _params(ctx)
    credential_id = config.get("credential_id") or ctx.run.credential_id
    deleted = run_query(ctx, delete_sql(focus), params)
    inserted = run_query(
        ctx,
        insert_sql(focus, source),
        {
            **params,
            "tenant_id": ctx.run.tenant_id,
            "credential_id": Typed("STRING", credential_id),
            "run_date": ctx.run.run_date,
            "run_id": ctx.run.run_id,
        },
    )
    n = inserted.dml_affected_rows or 0
    return StepResult(
        rows_processed=n,
        bytes_billed=deleted.bytes_billed + inserted.bytes_billed,
        message=f"{n} FOCUS rows from the native export "
        f"({deleted.dml_affected_rows or 0} replaced)",
    )


def reconciliation_sql(source_window: str, focus_table: str) -> str:
    """Per billing period: the export's SUM(BilledCost) and rows vs focus_cost's, side by side."""
    return (
        "SELECT IFNULL(s.period, f.period) AS period, s.billed AS source_billed, "
        "f.billed AS focus_billed, s.n AS source_rows, f.n AS focus_rows FROM "
        "(SELECT DATE(e.BillingPeriodStart) AS period, SUM(e.BilledCost) AS billed, "
        f"COUNT(*) AS n FROM {source_window} AS e GROUP BY period) AS s "
        "FULL OUTER JOIN (SELECT DATE(f.BillingPeriodStart) AS period, "
        f"SUM(f.BilledCost) AS billed, COUNT(*) AS n FROM {focus_table} AS f "
        f"WHERE {_FOCUS_WHERE} GROUP BY period) AS f ON s.period = f.period ORDER BY period"
    )


def check(ctx: StepContext) -> StepResult:
    """Per billing period SUM(BilledCost) and rows equal the export's exactly; FOCUS rules."""
    _, source, _ = _source(ctx)
    wh = ctx.deps.warehouse
    focus = wh.table(ctx.run.dataset_id, FOCUS_TABLE)
    params = _params(ctx)
    periods = run_query(ctx, reconciliation_sql(source, focus), params).rows
    nulls = {
        k: v
        for k, v in run_query(ctx, null_check_sql(focus, _FOCUS_WHERE), params).rows[0].items()
        if v
    }
    outside = {
        k: v
        for k, v in run_query(ctx, allowed_values_sql(focus, _FOCUS_WHERE), params).rows[0].items()
        if v
    }
    now = ctx.deps.clock()

    def result(name: str, ok: bool, expected: str, actual: str, detail: str) -> DqResult:
        status: DqStatus = "PASS" if ok else "FAIL"
        return DqResult(ctx.step_name, name, status, now, expected, actual, detail)

    results = [
        result(
            "reconciliation_billed_cost",
            all(p["source_billed"] == p["focus_billed"] for p in periods),
            "; ".join(f"{p['period']}={p['source_billed']}" for p in periods),
            "; ".join(f"{p['period']}={p['focus_billed']}" for p in periods),
            "per billing period SUM(BilledCost) = the export's, exact NUMERIC",
        ),
        result(
            "row_count",
            all(p["source_rows"] == p["focus_rows"] for p in periods),
            "; ".join(f"{p['period']}={p['source_rows']}" for p in periods),
            "; ".join(f"{p['period']}={p['focus_rows']}" for p in periods),
            "one focus_cost row per export row",
        ),
        result("not_null_mandatory", not nulls, "0", str(sum(nulls.values())), f"NULLs: {nulls}"),
        result(
            "allowed_values", not outside, "0", str(sum(outside.values())), f"outside: {outside}"
        ),
    ]
    failed = [r.check_name for r in results if r.status == "FAIL"]
    if failed:
        raise DqFailed(f"native FOCUS checks failed: {', '.join(failed)}", results)
    return StepResult(
        rows_processed=sum(int(p["focus_rows"] or 0) for p in periods),
        message=f"{len(results)} checks passed over {len(periods)} billing periods",
        dq_results=results,
    )

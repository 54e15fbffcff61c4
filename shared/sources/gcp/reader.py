"""Step `gcp_billing.extract`: the GCP billing export reader, rows into `{tenant}.gcp_billing_raw`.

Contract (StepFn, registered by the executor as step type `gcp_billing.extract`):
    extract(ctx: StepContext) -> StepResult
    - reads the ACTIVE GCP provider config `ctx.run.provider_config_id` of
      `ctx.run.tenant_id` (source_project_id.billing_export_dataset.billing_export_table)
      and its credential (the config's credential_id, else `ctx.run.credential_id`);
    - params (all optional): `lookback_days` (int, default 3).
    - StepResult.rows_processed = rows now in the raw table for the run's window.
    - StepError codes: `provider_config_missing`, `credential_missing`,
      `source_not_found` (permanent), `bigquery_unavailable` (transient).

Which rows a run covers (its *window*, the same predicate everywhere), for a run
over the data dates F..D (F = D for a scheduled run, a backfill's range otherwise):
    DATE(usage_start_time) BETWEEN F - lookback_days AND D
    OR DATE(export_time) BETWEEN F - lookback_days AND D          (UTC dates)
The first clause re-reads the last few usage days, whose rows keep arriving for
a day or two; the second picks up late corrections Google exports later for
older usage dates.

What a run replaces (its *slice*) is the window's rows exported between
F - lookback_days and D + EXPORT_MARGIN_DAYS. Reads prune: Google's standard
export table is partitioned by ingestion time (`_PARTITIONTIME`, one partition
per day a row was appended, i.e. its export_time's day; see "Structure of
Standard data export", https://cloud.google.com/billing/docs/how-to/export-data-bigquery-tables/standard-usage
and https://cloud.google.com/billing/docs/how-to/export-data-bigquery-tables).
A late correction of an old usage date is appended to a *recent* partition, so
the source is read only in the partitions [F - lookback_days - 1,
D + EXPORT_MARGIN_DAYS + 1] (a day of slack either side of the slice's export
dates, for rows appended around midnight), and bytes scanned grow with the
run's range, never with the export's history. A correction exported more than
EXPORT_MARGIN_DAYS after D is taken by the run of its export date (its window's
second clause), so every row has a run that owns it. Where the source table is
column-partitioned on export_time instead (the local stand-in: bqemulator has
no ingestion-time partitions), that column is the partition; a table partitioned
any other way (or not at all) is read without the partition predicate.

A run REPLACES the raw rows of its config in the slice with the source rows
of the slice (DELETE then INSERT, see
`replace_window`), so re-running a date never duplicates, overlapping windows of
consecutive dates converge to the source's current rows, and all rows are
DML-created (production BigQuery refuses DML on streamed rows).

Money: the export stores cost, credits.amount, cost_at_list, usage and price
amounts as FLOAT64. They become NUMERIC here, once, as
PARSE_NUMERIC(CAST(x AS STRING)): BigQuery renders a FLOAT64 as the shortest
string that round-trips, i.e. the decimal the exporter wrote (0.1, not
0.1000000000000000055...), and PARSE_NUMERIC keeps it exactly, rounding half
away from zero at NUMERIC's 9 decimal places. (A plain CAST(x AS NUMERIC) is
exact on BigQuery too, but silently rounds to 3 decimals on the emulator.)
The statement computes that value in two exact parts where the text is a
plain decimal (`_numeric`), because the emulator's DuckDB parses long decimal
texts slowly; the value is the same.

Credentials:
- WORKLOAD_IDENTITY: the platform's own identity reads the source, so the copy
  is a DELETE and one INSERT ... SELECT whose source is the export table itself.
- SERVICE_ACCOUNT: a client is built from the decrypted key *in memory*
  (`Credentials.from_service_account_info`); it runs the converting SELECT on
  the source, the rows are loaded (NDJSON, resumable upload from memory) into a
  per-run staging table in the tenant dataset, and the same DELETE + INSERT copy them.
  The key is never written to disk or logged, and the staging table is dropped.
  Locally (emulator) the key is still parsed, but requests go anonymous: the
  emulator can't mint Google OAuth tokens.

Local mode: bqemulator serves any project id, so the demo seeds the source at
its real path `source_project_id.dataset.table` and the same SQL reads it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import uuid
from decimal import Decimal
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.deps import Deps
from shared.pipelines.context import StepContext, StepError, StepResult
from shared.pipelines.steps import step_job_config
from shared.platform.identifiers import quote_table
from shared.platform.sql_record import record_statement
from shared.platform.warehouse import table_from_spec
from shared.sources.run_inputs import active_config, active_credential_type, run_query
from shared.vault.credentials import CredentialUnavailable, decrypt_credential

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 3
RAW_TABLE = "gcp_billing_raw"
BIGQUERY_SCOPE = "https://www.googleapis.com/auth/bigquery"

# One window predicate, applied to the source, the raw table and focus_cost alike
# (with their own column names), so every step agrees on what a run date owns.
# A run covers @date_from..@date_to (one day for a scheduled run, the range for a
# backfill); the window widens it by the lookback.
WINDOW = (
    "(DATE({start}) BETWEEN DATE_SUB(@date_from, INTERVAL @lookback_days DAY) AND @date_to "
    "OR DATE({export}) BETWEEN DATE_SUB(@date_from, INTERVAL @lookback_days DAY) AND @date_to)"
)


# Rows exported up to this many days after a run's last date belong to its slice.
EXPORT_MARGIN_DAYS = 3
# The slice's export dates, on the source and on the raw copy alike (the replace is exact).
SLICE = (
    "DATE({export}) BETWEEN DATE_SUB(@date_from, INTERVAL @lookback_days DAY) AND @exported_until"
)
# The partition predicate: both bounds constant, so BigQuery prunes to those partitions.
PARTITIONS = "{partition} >= @partitions_from AND {partition} < @partitions_until"
# How Google partitions the export (ingestion time), and the local stand-in.
INGESTION_TIME = "_PARTITIONTIME"
EXPORT_TIME_COLUMN = "export_time"


def window_params(ctx: StepContext) -> dict[str, Any]:
    """The window's parameters from the run (its dates) and the step (`lookback_days`)."""
    lookback = int(ctx.params.get("lookback_days", DEFAULT_LOOKBACK_DAYS))
    if lookback < 0 or lookback > 60:
        raise StepError("invalid_parameter", "lookback_days must be between 0 and 60")
    first, last = ctx.run.first_date, ctx.run.run_date
    exported_until = last + dt.timedelta(days=EXPORT_MARGIN_DAYS)
    return {
        "date_from": first,
        "date_to": last,
        "lookback_days": lookback,
        "exported_until": exported_until,
        # A day of slack either side: a row is appended on its export date or just after.
        "partitions_from": _midnight(first - dt.timedelta(days=lookback + 1)),
        "partitions_until": _midnight(exported_until + dt.timedelta(days=2)),
    }


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def partition_column(table: bigquery.Table) -> str | None:
    """The source's partition expression if it partitions by export (ingestion) time, else None."""
    partitioning = table.time_partitioning
    if partitioning is None or partitioning.type_ != bigquery.TimePartitioningType.DAY:
        return None
    if partitioning.field is None:
        return INGESTION_TIME
    return EXPORT_TIME_COLUMN if partitioning.field == EXPORT_TIME_COLUMN else None


# The FLOAT64 money fields of the export, by path, and the name of their decimal
# text in the inner SELECT of `source_select_sql` (each cast to STRING once there;
# credits.amount, an array's field, is cast where its ARRAY is built).
MONEY_TEXT: tuple[tuple[str, str], ...] = (
    ("s.cost", "cost_text"),
    ("s.cost_at_list", "cost_at_list_text"),
    ("s.usage.amount", "usage_amount_text"),
    ("s.usage.amount_in_pricing_units", "usage_amount_in_pricing_units_text"),
    ("s.price.effective_price", "price_effective_price_text"),
    ("s.price.tier_start_amount", "price_tier_start_amount_text"),
    ("s.price.pricing_unit_quantity", "price_pricing_unit_quantity_text"),
)
# The shape of a decimal text the fast branch of `_numeric` takes: no exponent,
# a point, at most 18 integer digits (so the integer part fits INT64).
PLAIN_DECIMAL = r"^-?[0-9]{1,18}[.][0-9]+$"


def _numeric(text: str) -> str:
    """FLOAT64 money, given as its decimal text CAST(x AS STRING), to exact NUMERIC.

    The value is PARSE_NUMERIC(text) (see the module docstring), computed in two
    parts when the text is a plain decimal: its integer digits as INT64 plus its
    sign and first ten fraction digits as PARSE_NUMERIC('0.ddddddddd d'). That sum
    is exactly PARSE_NUMERIC(text): the integer part is exact, and rounding half
    away from zero to 9 places depends on the 10th fraction digit only (>= 5 rounds
    up, whatever follows). Other texts (exponent forms such as 1e+16 or 2e-06)
    take PARSE_NUMERIC(text) itself. The split is for the emulator: DuckDB parses a
    DECIMAL(38, 9) from text about 1 us per integer digit and per digit past the
    9th decimal, which made these casts most of the extract's time
    (docs/sources/gcp.md, "Money").
    """
    point = f"STRPOS({text}, '.')"
    return (
        f"IF(REGEXP_CONTAINS({text}, r'{PLAIN_DECIMAL}'), "
        f"CAST(SUBSTR({text}, 1, {point} - 1) AS INT64) + PARSE_NUMERIC(CONCAT("
        f"IF(STARTS_WITH({text}, '-'), '-0.', '0.'), SUBSTR({text}, {point} + 1, 10))), "
        f"PARSE_NUMERIC({text}))"
    )


def _num(path: str) -> str:
    """The exact NUMERIC of a FLOAT64 money field, from its text column of the inner SELECT."""
    return _numeric(f"s.{dict(MONEY_TEXT)[path]}")


# The export columns the raw table keeps, as converting SELECT expressions over
# the source (alias s). Order = raw schema order, lineage excluded.
EXPORT_SELECT: tuple[tuple[str, str], ...] = (
    ("billing_account_id", "s.billing_account_id"),
    ("service", "s.service"),
    ("sku", "s.sku"),
    ("usage_start_time", "s.usage_start_time"),
    ("usage_end_time", "s.usage_end_time"),
    ("project", "s.project"),
    ("labels", "s.labels"),
    ("system_labels", "s.system_labels"),
    ("location", "s.location"),
    ("resource", "s.resource"),
    ("tags", "s.tags"),
    ("export_time", "s.export_time"),
    ("cost", _num("s.cost")),
    ("currency", "s.currency"),
    ("currency_conversion_rate", "s.currency_conversion_rate"),
    (
        "usage",
        f"IF(s.usage IS NULL, NULL, STRUCT({_num('s.usage.amount')} AS amount, "
        "s.usage.unit AS unit, "
        f"{_num('s.usage.amount_in_pricing_units')} AS amount_in_pricing_units, "
        "s.usage.pricing_unit AS pricing_unit))",
    ),
    (
        # GoogleSQL's one way to map an array; the local emulator runs it as DuckDB's
        # list_transform (local/bqemulator_rules.py), BigQuery as written.
        "credits",
        f"ARRAY(SELECT AS STRUCT c.name AS name, {_numeric('CAST(c.amount AS STRING)')} AS amount, "
        "c.full_name AS full_name, c.id AS id, c.type AS type FROM UNNEST(s.credits) AS c)",
    ),
    ("invoice", "s.invoice"),
    ("cost_type", "s.cost_type"),
    ("adjustment_info", "s.adjustment_info"),
    ("cost_at_list", _num("s.cost_at_list")),
    (
        "price",
        f"IF(s.price IS NULL, NULL, STRUCT({_num('s.price.effective_price')} AS effective_price, "
        f"{_num('s.price.tier_start_amount')} AS tier_start_amount, s.price.unit AS unit, "
        f"{_num('s.price.pricing_unit_quantity')} AS pricing_unit_quantity))",
    ),
    ("transaction_type", "s.transaction_type"),
    ("seller_name", "s.seller_name"),
    ("subscription", "s.subscription"),
)
LINEAGE = (
    "x_tenant_id",
    "x_pipeline_id",
    "x_credential_id",
    "x_run_date",
    "x_run_id",
    "x_ingested_at",
)
RAW_COLUMNS = tuple(name for name, _ in EXPORT_SELECT) + LINEAGE


def source_select_sql(source_table: str, partition: str | None = INGESTION_TIME) -> str:
    """The converting SELECT over the export, limited to the run's slice (no lineage), reading
    only the slice's partitions when the table is partitioned by export time (`partition`)."""
    columns = ",\n  ".join(f"{expr} AS `{name}`" for name, expr in EXPORT_SELECT)
    texts = ",\n    ".join(f"CAST({path} AS STRING) AS `{name}`" for path, name in MONEY_TEXT)
    where = [
        WINDOW.format(start="s.usage_start_time", export="s.export_time"),
        SLICE.format(export="s.export_time"),
    ]
    if partition is not None:
        where.insert(0, PARTITIONS.format(partition=f"s.{partition}"))
    # The inner SELECT reads the slice and casts each money field to text once; the
    # outer converts (`_num` refers to a text several times).
    return (
        f"SELECT\n  {columns}\nFROM (\n  SELECT s.*,\n    {texts}\n"
        f"  FROM {source_table} AS s\n  WHERE " + "\n    AND ".join(where) + "\n) AS s"
    )


def delete_window_sql(raw_table: str) -> str:
    """Removes the config's raw rows of the slice (the first half of a replace)."""
    window = WINDOW.format(start="T.usage_start_time", export="T.export_time")
    exported = SLICE.format(export="T.export_time")
    return (
        f"DELETE FROM {raw_table} AS T WHERE T.x_pipeline_id = @pipeline_id AND {window} "
        f"AND {exported}"
    )


def insert_window_sql(raw_table: str, source_sql: str) -> str:
    """Inserts the window's current rows (the second half of a replace)."""
    columns = ", ".join(f"`{c}`" for c in RAW_COLUMNS)
    return f"INSERT INTO {raw_table} ({columns})\nSELECT {columns} FROM (\n{source_sql}\n)"


def replace_window(
    ctx: StepContext, delete_sql: str, insert_sql: str, params: dict[str, Any]
) -> tuple[int, int, int]:
    """DELETE then INSERT, two DML statements; returns (deleted, inserted, bytes billed).

    Not one MERGE (insert new + delete old): bqemulator's MERGE with a
    NOT MATCHED BY SOURCE ... DELETE clause takes minutes on 100k rows, and a
    multi-statement transaction can't take query parameters there. If the
    INSERT fails after the DELETE, the step fails and its retry (or the next
    run) replaces the window again; focus.check's row_count catches a gap.
    """
    deleted = run_query(ctx, delete_sql, params)
    inserted = run_query(ctx, insert_sql, params)
    return (
        deleted.dml_affected_rows or 0,
        inserted.dml_affected_rows or 0,
        deleted.bytes_billed + inserted.bytes_billed,
    )


def _with_lineage(select_sql: str) -> str:
    return (
        "SELECT x.*, @tenant_id AS x_tenant_id, @pipeline_id AS x_pipeline_id, "
        "@credential_id AS x_credential_id, @run_date AS x_run_date, @run_id AS x_run_id, "
        f"CURRENT_TIMESTAMP() AS x_ingested_at\nFROM (\n{select_sql}\n) AS x"
    )


def provider_config(ctx: StepContext) -> dict[str, Any]:
    """The run's ACTIVE GCP provider config of its tenant (raises StepError if there is none)."""
    return active_config(
        ctx,
        "GCP",
        "config_id, source_project_id, billing_export_dataset, billing_export_table, "
        "currency, credential_id",
    )


def _params(ctx: StepContext, credential_id: str | None) -> dict[str, Any]:
    from shared.platform.warehouse import Typed

    return {
        **window_params(ctx),
        "run_date": ctx.run.run_date,
        "tenant_id": ctx.run.tenant_id,
        "pipeline_id": ctx.run.config_id,
        "credential_id": Typed("STRING", credential_id),
        "run_id": ctx.run.run_id,
    }


def extract(ctx: StepContext) -> StepResult:
    """Replaces the run window's rows of `gcp_billing_raw` with the export's current rows."""
    run = ctx.run
    deps = ctx.deps
    config = provider_config(ctx)
    credential_id = config.get("credential_id") or run.credential_id
    source = quote_table(
        config["source_project_id"],
        config["billing_export_dataset"],
        config["billing_export_table"],
    )
    raw_table = deps.warehouse.table(run.dataset_id, RAW_TABLE)
    params = _params(ctx, credential_id)
    kind = "WORKLOAD_IDENTITY"
    if credential_id:
        kind = active_credential_type(ctx, "GCP", credential_id)
    try:
        if kind == "SERVICE_ACCOUNT" and credential_id is not None:
            changed = _extract_with_key(ctx, config, raw_table, params, credential_id)
        else:
            partition = partition_column(deps.warehouse.client.get_table(_table_id(config)))
            select = source_select_sql(source, partition)
            insert = insert_window_sql(raw_table, _with_lineage(select))
            changed = replace_window(ctx, delete_window_sql(raw_table), insert, params)
    except gexc.NotFound as exc:
        raise StepError("source_not_found", f"billing export table not found: {source}") from exc
    except (gexc.ServerError, gexc.TooManyRequests) as exc:
        raise StepError("bigquery_unavailable", type(exc).__name__, transient=True) from exc
    # After the replace, the window holds exactly the rows just inserted.
    deleted, inserted, billed = changed
    return StepResult(
        rows_processed=inserted,
        bytes_billed=billed,
        message=f"{inserted} raw rows in the window ({deleted} replaced); credential {kind}",
    )


def _table_id(config: dict[str, Any]) -> str:
    return ".".join(
        str(config[k])
        for k in ("source_project_id", "billing_export_dataset", "billing_export_table")
    )


def source_client(deps: Deps, key: dict[str, Any], project: str) -> bigquery.Client:
    """A BigQuery client acting as the tenant's service account; the key stays in memory."""
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        key, scopes=[BIGQUERY_SCOPE]
    )
    settings = deps.settings
    if settings.bigquery_emulator_host:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        # The key was parsed above (a broken key fails here as in production), but
        # the emulator can't mint OAuth tokens: talk to it anonymously.
        del credentials
        return bigquery.Client(
            project=project,
            location=settings.bq_location,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=settings.bigquery_emulator_host),
        )
    return bigquery.Client(project=project, credentials=credentials, location=settings.bq_location)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact: the load parses it back into NUMERIC
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _extract_with_key(
    ctx: StepContext,
    source_config: dict[str, Any],
    raw_table: str,
    params: dict[str, Any],
    credential_id: str,
) -> tuple[int, int, int]:
    run = ctx.run
    deps = ctx.deps
    warehouse = deps.warehouse
    try:
        key = decrypt_credential(deps, run.tenant_id, credential_id)
    except CredentialUnavailable as exc:
        raise StepError("credential_missing", f"no active credential {credential_id}") from exc
    client = source_client(deps, key, str(key.get("project_id") or deps.settings.gcp_project))
    del key
    # The same labels and byte cap as every other job of the step.
    select = source_select_sql(
        quote_table(
            source_config["source_project_id"],
            source_config["billing_export_dataset"],
            source_config["billing_export_table"],
        ),
        partition_column(client.get_table(_table_id(source_config))),
    )
    config = step_job_config(ctx, {k: v for k, v in params.items() if f"@{k}" in select})
    record_statement(select, config, project=client.project, central_dataset=None)
    rows = client.query(select, job_config=config).result()
    payload = "".join(
        json.dumps(dict(row.items()), default=_json_default, separators=(",", ":")) + "\n"
        for row in rows
    ).encode()
    staging_name = f"_stg_{RAW_TABLE}_{uuid.uuid4().hex[:16]}"
    raw_schema = table_from_spec(
        warehouse.project, run.dataset_id, deps.catalog.tenant[RAW_TABLE]
    ).schema
    staging = bigquery.Table(
        f"{warehouse.project}.{run.dataset_id}.{staging_name}",
        schema=[f for f in raw_schema if f.name not in LINEAGE],
    )
    # A crashed run leaves no lasting copy: staging tables expire on their own.
    staging.expires = deps.clock() + dt.timedelta(hours=6)
    warehouse.client.create_table(staging)
    try:
        if payload:
            load = warehouse.client.load_table_from_file(
                io.BytesIO(payload),
                staging.reference,
                job_config=bigquery.LoadJobConfig(
                    source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                    write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                    schema=staging.schema,
                    labels=config.labels,
                ),
            )
            load.result(timeout=deps.settings.bq_job_timeout_seconds)
        staged = warehouse.table(run.dataset_id, staging_name)
        insert = insert_window_sql(raw_table, _with_lineage(f"SELECT * FROM {staged}"))
        return replace_window(ctx, delete_window_sql(raw_table), insert, params)
    finally:
        warehouse.client.delete_table(staging.reference, not_found_ok=True)

"""Steps `aws.land`, `aws.convert`, `aws.check`: AWS Data Export billing periods into focus_cost.

A run date owns its billing month and, for RESTATEMENT_DAYS after a month
ends, the previous one too (AWS rewrites a closed month for about two weeks).
Each step handles those periods:
- `aws.land` reads each period's newest manifest and REPLACES the config's
  rows of that period in `aws_cur2_raw` / `aws_focus_raw` (staging load, then
  one DELETE and one INSERT ... SELECT; see reader.py). Bad input fails the
  step before the DELETE, so the period's earlier rows stay as they were.
- `aws.convert` replaces the period's rows of `focus_cost` with the mapping
  (`cur2_to_focus.sql` or `focus_to_focus.sql`).
- `aws.check` proves, per period: SUM(BilledCost) = the source's billed total
  (CUR: net unblended cost where present, else unblended; FOCUS: BilledCost)
  exactly in NUMERIC, one FOCUS row per source row, no NULL in a mandatory
  column, enumerations within FOCUS 1.2.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.pipelines.context import DqResult, DqStatus, StepContext, StepError, StepResult
from shared.platform.warehouse import Typed
from shared.sources.aws.access import AwsExportAccess, aws_access
from shared.sources.aws.columns import BILLED, RAW_TABLES
from shared.sources.aws.reader import (
    NUMERIC,
    PeriodReader,
    StagingSpool,
    newest_manifest,
    periods_for,
)
from shared.sources.focus_checks import NOT_NULL, DqFailed
from shared.sources.identity import AccessProblem
from shared.sources.run_inputs import active_config, active_credential_type, run_query
from shared.tenancy.tenant_dataset import add_appended_columns, ensure_tenant_tables
from shared.vault.credentials import CredentialUnavailable, decrypt_credential
from shared.vault.provider_configs import AwsExportSettings

FOCUS_TABLE = "focus_cost"
HERE = Path(__file__).parent
MAPPINGS = {
    "CUR2": "cur2_to_focus.sql",
    "FOCUS_1_2_AWS": "focus_to_focus.sql",
    "FOCUS_1_0_AWS": "focus_to_focus.sql",
}
LINEAGE = ("x_tenant_id", "x_pipeline_id", "x_credential_id", "x_run_date", "x_run_id")
ALLOWED: dict[str, tuple[str, ...]] = {
    "ChargeCategory": ("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    "ChargeClass": ("Correction",),
    "ChargeFrequency": ("One-Time", "Recurring", "Usage-Based"),
    "PricingCategory": ("Standard", "Dynamic", "Committed", "Other"),
    "CommitmentDiscountCategory": ("Spend", "Usage"),
    "CommitmentDiscountStatus": ("Used", "Unused"),
}


@cache
def mapping_sql(export_type: str) -> str:
    """The mapping file without its comment lines (the emulator misreads @names in comments)."""
    text = (HERE / MAPPINGS[export_type]).read_text()
    return "\n".join(
        line.split(" -- ")[0].rstrip()
        for line in text.splitlines()
        if not line.lstrip().startswith("--")
    )


def _config(ctx: StepContext) -> tuple[AwsExportSettings, str | None]:
    row = active_config(ctx, "AWS", "settings_json, credential_id")
    settings = AwsExportSettings(**json.loads(row["settings_json"]))
    return settings, row["credential_id"] or ctx.run.credential_id


def _access(ctx: StepContext, settings: AwsExportSettings, credential_id: str | None) -> Any:
    if not credential_id:
        raise StepError("credential_missing", "the AWS config names no credential")
    kind = active_credential_type(ctx, "AWS", credential_id)
    try:
        secret = decrypt_credential(ctx.deps, ctx.run.tenant_id, credential_id)
    except CredentialUnavailable as exc:
        raise StepError("credential_missing", f"no active credential {credential_id}") from exc
    return aws_access(ctx.deps, ctx.run.tenant_id, kind, secret, settings)


def _params(ctx: StepContext, period: dt.date, credential_id: str | None) -> dict[str, Any]:
    return {
        "pipeline_id": ctx.run.config_id,
        "billing_period": period,
        "run_id": ctx.run.run_id,
        "run_date": ctx.run.run_date,
        "tenant_id": ctx.run.tenant_id,
        "credential_id": Typed("STRING", credential_id),
    }


def _staging_fields(raw: list[bigquery.SchemaField]) -> list[bigquery.SchemaField]:
    """The raw table's source columns (money already NUMERIC), plus the file key."""
    fields = []
    for f in raw:
        if f.name.startswith("x_"):
            continue
        fields.append(bigquery.SchemaField(f.name, f.field_type, mode="NULLABLE"))
    fields.append(bigquery.SchemaField("x_source_file", "STRING", mode="NULLABLE"))
    return fields


def _arrow_schema(fields: list[bigquery.SchemaField]) -> pa.Schema:
    # NUMERIC as Parquet DECIMAL(38, 9): a load writes it into NUMERIC unchanged.
    kinds = {
        "STRING": pa.string(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "NUMERIC": NUMERIC,
    }
    return pa.schema([pa.field(f.name, kinds[f.field_type]) for f in fields])


def _insert_sql(raw_table: str, staging: str, fields: list[bigquery.SchemaField]) -> str:
    names = [f.name for f in fields if f.name != "x_source_file"]
    exprs = [f"s.`{n}`" for n in names]
    columns = [
        *names, "x_billing_period", "x_manifest", "x_source_file", "x_export_type",
        *LINEAGE, "x_ingested_at",
    ]  # fmt: skip
    values = [
        *exprs, "@billing_period", "@manifest", "s.x_source_file", "@export_type", "@tenant_id",
        "@pipeline_id", "@credential_id", "@run_date", "@run_id", "CURRENT_TIMESTAMP()",
    ]  # fmt: skip
    return (
        f"INSERT INTO {raw_table} ({', '.join(f'`{c}`' for c in columns)})\n"
        f"SELECT {', '.join(values)}\nFROM {staging} AS s"
    )


def _billed_expr(export_type: str, alias: str) -> str:
    return "COALESCE(" + ", ".join(f"{alias}.{c}" for c in BILLED[export_type]) + ")"


def land(ctx: StepContext) -> StepResult:
    """Replaces the run's billing periods in the raw table with their newest manifests' files."""
    deps = ctx.deps
    ensure_tenant_tables(
        deps.warehouse, deps.catalog, ctx.run.dataset_id, ("aws_cur2_raw", "aws_focus_raw")
    )
    add_appended_columns(deps.warehouse, deps.catalog, ctx.run.dataset_id, "aws_cur2_raw")
    settings, credential_id = _config(ctx)
    access = _access(ctx, settings, credential_id)
    rows = 0
    notes = []
    for period in periods_for(ctx.run.run_date):
        try:
            manifest = newest_manifest(access, period)
        except AccessProblem as exc:
            raise StepError(exc.reason, exc.detail, transient=exc.retryable) from None
        if manifest is None:
            notes.append(f"{period:%Y-%m}: no manifest yet")
            continue
        landed = _land_period(ctx, access, settings, manifest, credential_id)
        rows += landed
        notes.append(f"{period:%Y-%m}: {landed} rows from {manifest.key}")
    return StepResult(rows_processed=rows, message="; ".join(notes))


def _land_period(
    ctx: StepContext,
    access: AwsExportAccess,
    settings: AwsExportSettings,
    manifest: Any,
    credential_id: str | None,
) -> int:
    deps = ctx.deps
    warehouse = deps.warehouse
    export_type = settings.export_type
    raw_name = RAW_TABLES[export_type]
    raw_table = warehouse.table(ctx.run.dataset_id, raw_name)
    reader = PeriodReader(access, manifest, export_type)
    raw_fields = list(
        warehouse.client.get_table(f"{warehouse.project}.{ctx.run.dataset_id}.{raw_name}").schema
    )
    fields = _staging_fields(raw_fields)
    staging_name = f"_stg_{raw_name}_{uuid.uuid4().hex[:16]}"
    staging = bigquery.Table(
        f"{warehouse.project}.{ctx.run.dataset_id}.{staging_name}", schema=fields
    )
    staging.expires = deps.clock() + dt.timedelta(hours=6)
    warehouse.client.create_table(staging)

    def load(path: str) -> None:
        with open(path, "rb") as handle:
            job = warehouse.client.load_table_from_file(
                handle,
                staging.reference,
                job_config=bigquery.LoadJobConfig(
                    source_format=bigquery.SourceFormat.PARQUET,
                    write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                    # DECIMAL(38, 9) is NUMERIC's own precision and scale.
                    decimal_target_types=["NUMERIC"],
                ),
            )
            job.result(timeout=deps.settings.bq_job_timeout_seconds)

    spool = StagingSpool(load, _arrow_schema(fields))
    try:
        for batch in reader.batches():
            if ctx.stop.is_set():
                raise StepError("cancelled", "the step was stopped while reading the export")
            spool.add(batch)
        spool.flush()
        landed = reader.landed
        params = {
            **_params(ctx, manifest.period, credential_id),
            "manifest": manifest.key,
            "export_type": export_type,
        }
        staged = warehouse.table(ctx.run.dataset_id, staging_name)
        try:
            run_query(
                ctx,
                f"DELETE FROM {raw_table} WHERE x_pipeline_id = @pipeline_id "
                "AND x_billing_period = @billing_period",
                params,
            )
            inserted = run_query(ctx, _insert_sql(raw_table, staged, fields), params)
        except (gexc.ServerError, gexc.TooManyRequests) as exc:
            raise StepError("bigquery_unavailable", type(exc).__name__, transient=True) from exc
    finally:
        spool.close()
        warehouse.client.delete_table(staging.reference, not_found_ok=True)
    totals = run_query(
        ctx,
        f"SELECT COUNT(*) AS n, IFNULL(SUM({_billed_expr(export_type, 'r')}), 0) AS billed "
        f"FROM {raw_table} AS r WHERE r.x_pipeline_id = @pipeline_id "
        "AND r.x_billing_period = @billing_period",
        params,
    ).rows[0]
    if int(totals["n"]) != landed.rows or Decimal(totals["billed"]) != landed.billed_total:
        raise StepError(
            "reconciliation_failed",
            f"{manifest.key}: landed {totals['n']} rows totalling {totals['billed']}, "
            f"the files hold {landed.rows} rows totalling {landed.billed_total}",
        )
    return int(inserted.dml_affected_rows or landed.rows)


def _periods_with_rows(ctx: StepContext, raw_table: str) -> list[dt.date]:
    periods = periods_for(ctx.run.run_date)
    rows = run_query(
        ctx,
        f"SELECT DISTINCT x_billing_period AS p FROM {raw_table} "
        "WHERE x_pipeline_id = @pipeline_id AND x_billing_period BETWEEN @first AND @last",
        {"pipeline_id": ctx.run.config_id, "first": periods[0], "last": periods[-1]},
    ).rows
    return sorted(r["p"] for r in rows)


def convert(ctx: StepContext) -> StepResult:
    """Replaces the periods' focus_cost rows with the mapping of their raw rows."""
    settings, credential_id = _config(ctx)
    warehouse = ctx.deps.warehouse
    raw_table = warehouse.table(ctx.run.dataset_id, RAW_TABLES[settings.export_type])
    focus_table = warehouse.table(ctx.run.dataset_id, FOCUS_TABLE)
    sql = (
        mapping_sql(settings.export_type)
        .replace("{raw}", raw_table)
        .replace("{focus}", focus_table)
    )
    written = 0
    for period in _periods_with_rows(ctx, raw_table):
        params = _params(ctx, period, credential_id)
        run_query(
            ctx,
            f"DELETE FROM {focus_table} WHERE x_pipeline_id = @pipeline_id "
            "AND x_billing_period = @billing_period",
            params,
        )
        written += run_query(ctx, sql, params).dml_affected_rows or 0
    return StepResult(rows_processed=written, message=f"{written} FOCUS 1.2 rows")


def check(ctx: StepContext) -> StepResult:
    """The exact proofs per billing period (see the module docstring)."""
    settings, _ = _config(ctx)
    export_type = settings.export_type
    warehouse = ctx.deps.warehouse
    raw_table = warehouse.table(ctx.run.dataset_id, RAW_TABLES[export_type])
    focus_table = warehouse.table(ctx.run.dataset_id, FOCUS_TABLE)
    now = ctx.deps.clock()
    warn = bool(ctx.params.get("warn", False))
    results: list[DqResult] = []

    def result(name: str, ok: bool, expected: Any, actual: Any, detail: str) -> None:
        status: DqStatus = "PASS" if ok else ("WARN" if warn else "FAIL")
        results.append(
            DqResult(ctx.step_name, name, status, now, str(expected), str(actual), detail)
        )

    where = "x_pipeline_id = @pipeline_id AND x_billing_period = @billing_period"
    nulls = ", ".join(f"COUNTIF(f.`{c}` IS NULL) AS `{c}`" for c in NOT_NULL)
    outside = ", ".join(
        f"COUNTIF(f.`{c}` IS NOT NULL AND f.`{c}` NOT IN ({', '.join(map(repr, vs))})) AS `{c}`"
        for c, vs in ALLOWED.items()
    )
    for period in _periods_with_rows(ctx, raw_table):
        params = {"pipeline_id": ctx.run.config_id, "billing_period": period}
        label = f"{period:%Y-%m}"
        sums = run_query(
            ctx,
            f"SELECT (SELECT IFNULL(SUM(f.BilledCost), 0) FROM {focus_table} AS f "
            f"WHERE f.{where}) AS billed,\n"
            f"  (SELECT COUNT(*) FROM {focus_table} AS f WHERE f.{where}) AS focus_rows,\n"
            f"  (SELECT IFNULL(SUM({_billed_expr(export_type, 'r')}), 0) FROM {raw_table} AS r "
            f"WHERE r.{where}) AS source_billed,\n"
            f"  (SELECT COUNT(*) FROM {raw_table} AS r WHERE r.{where}) AS source_rows",
            params,
        ).rows[0]
        result(
            f"reconciliation_billed_cost[{label}]",
            sums["billed"] == sums["source_billed"],
            sums["source_billed"],
            sums["billed"],
            f"SUM(BilledCost) = SUM({' else '.join(BILLED[export_type])}) of the source, exact",
        )
        result(
            f"row_count[{label}]",
            sums["focus_rows"] == sums["source_rows"],
            sums["source_rows"],
            sums["focus_rows"],
            "one FOCUS row per source row",
        )
        found = {
            k: v
            for k, v in run_query(
                ctx, f"SELECT {nulls} FROM {focus_table} AS f WHERE f.{where}", params
            )
            .rows[0]
            .items()
            if v
        }
        result(f"not_null_mandatory[{label}]", not found, 0, sum(found.values()), f"NULLs: {found}")
        bad = {
            k: v
            for k, v in run_query(
                ctx, f"SELECT {outside} FROM {focus_table} AS f WHERE f.{where}", params
            )
            .rows[0]
            .items()
            if v
        }
        result(
            f"allowed_values[{label}]", not bad, 0, sum(bad.values()), f"outside FOCUS 1.2: {bad}"
        )
    failed = [r.check_name for r in results if r.status == "FAIL"]
    if failed:
        raise DqFailed(f"AWS FOCUS checks failed: {', '.join(failed)}", results)
    return StepResult(message=f"{len(results)} AWS FOCUS checks passed", dq_results=results)

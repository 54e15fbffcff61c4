"""Steps `genai.extract`, `genai.convert`, `genai.check`: OpenAI / Anthropic spend into focus_cost.

params: `provider` ("openai" or "anthropic", required), `lookback_days` (int,
default 2: costs settle for a day or two), `page_limit` (buckets per page).
A run date D covers the days D - lookback_days .. D (UTC), the provider's daily
buckets. extract reads every page of both APIs for those days first; only when
all of them are read (a repeated cursor, a malformed amount, a 401 mid-run fail
the step with that code and nothing is written) are the rows LOADed into a
staging table, then per raw table one DELETE of the config's days and one
INSERT ... SELECT replace them (DML-created rows, never streamed). convert
replaces the same days of `focus_cost` with the provider's mapping .sql;
check proves per day SUM(BilledCost) = the cost API's total of that day.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlglot
from google.cloud import bigquery

from shared.pipelines.context import DqResult, DqStatus, StepContext, StepError, StepResult
from shared.pipelines.steps import step_job_config, step_query
from shared.platform.warehouse import Typed, table_from_spec
from shared.sources.admin_api import AdminApiError
from shared.sources.focus_checks import DqFailed, allowed_values_sql, null_check_sql
from shared.tenancy.tenant_dataset import ensure_tenant_tables
from shared.vault.credentials import CredentialUnavailable, decrypt_credential

SOURCES = Path(__file__).resolve().parents[2] / "sources"
PROVIDERS = {
    "openai": ("OPENAI", ("openai_costs_raw", "openai_usage_raw", "openai_usage_other_raw")),
    "anthropic": ("ANTHROPIC", ("anthropic_costs_raw", "anthropic_usage_raw")),
}
DEFAULT_LOOKBACK_DAYS = 2
LINEAGE = (
    "x_tenant_id",
    "x_pipeline_id",
    "x_credential_id",
    "x_run_date",
    "x_run_id",
    "x_ingested_at",
)
FOCUS_TABLE = "focus_cost"


def _provider(ctx: StepContext) -> tuple[str, str, tuple[str, ...]]:
    name = str(ctx.params.get("provider", ""))
    if name not in PROVIDERS:
        raise StepError("invalid_parameter", "provider must be 'openai' or 'anthropic'")
    provider, tables = PROVIDERS[name]
    return name, provider, tables


def window(ctx: StepContext) -> tuple[dt.date, dt.date]:
    lookback = int(ctx.params.get("lookback_days", DEFAULT_LOOKBACK_DAYS))
    if lookback < 0 or lookback > 60:
        raise StepError("invalid_parameter", "lookback_days must be between 0 and 60")
    return ctx.run.run_date - dt.timedelta(days=lookback), ctx.run.run_date


def _config(ctx: StepContext, provider: str) -> dict[str, Any]:
    wh = ctx.deps.warehouse
    rows = step_query(
        ctx,
        f"SELECT config_id, credential_id FROM {wh.central('tenant_provider_configs')} "
        "WHERE tenant_id = @t AND config_id = @c AND status = 'ACTIVE' AND provider = @p",
        {"t": ctx.run.tenant_id, "c": ctx.run.provider_config_id or "", "p": provider},
    ).rows
    if not rows:
        raise StepError("provider_config_missing", f"no active {provider} provider config")
    return rows[0]


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact: the load parses it back into NUMERIC
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _replace_raw(
    ctx: StepContext, table: str, rows: list[dict[str, Any]], params: dict[str, Any]
) -> int:
    """LOAD into a staging table, then DELETE the config's days and INSERT the staged rows."""
    deps = ctx.deps
    wh = deps.warehouse
    dataset = ctx.run.dataset_id
    schema = table_from_spec(wh.project, dataset, deps.catalog.tenant[table]).schema
    columns = [f.name for f in schema if f.name not in LINEAGE]
    staging = bigquery.Table(
        f"{wh.project}.{dataset}._stg_{table}_{uuid.uuid4().hex[:16]}",
        schema=[f for f in schema if f.name not in LINEAGE],
    )
    staging.expires = deps.clock() + dt.timedelta(hours=6)
    wh.client.create_table(staging)
    try:
        if rows:
            payload = "".join(
                json.dumps({c: r.get(c) for c in columns}, default=_json_default) + "\n"
                for r in rows
            ).encode()
            load = wh.client.load_table_from_file(
                io.BytesIO(payload),
                staging.reference,
                job_config=bigquery.LoadJobConfig(
                    source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                    write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                    schema=staging.schema,
                    labels=step_job_config(ctx).labels,
                ),
            )
            load.result(timeout=deps.settings.bq_job_timeout_seconds)
        target = wh.table(dataset, table)
        step_query(
            ctx,
            f"DELETE FROM {target} AS T WHERE T.x_pipeline_id = @pipeline_id "
            "AND DATE(T.bucket_start) BETWEEN @date_from AND @date_to",
            {k: params[k] for k in ("pipeline_id", "date_from", "date_to")},
        )
        names = ", ".join(f"`{c}`" for c in [*columns, *LINEAGE])
        select = ", ".join(f"s.`{c}`" for c in columns)
        inserted = step_query(
            ctx,
            f"INSERT INTO {target} ({names}) SELECT {select}, @tenant_id, @pipeline_id, "
            "@credential_id, @run_date, @run_id, CURRENT_TIMESTAMP() "
            f"FROM {wh.table(dataset, staging.table_id)} AS s",
            {k: v for k, v in params.items() if k not in ("date_from", "date_to")},
        )
        return inserted.dml_affected_rows or 0
    finally:
        wh.client.delete_table(staging.reference, not_found_ok=True)


def extract(ctx: StepContext) -> StepResult:
    """Reads the provider's cost and usage APIs for the run's days and replaces the raw rows."""
    name, provider, tables = _provider(ctx)
    date_from, date_to = window(ctx)
    ensure_tenant_tables(ctx.deps.warehouse, ctx.deps.catalog, ctx.run.dataset_id, tables)
    config = _config(ctx, provider)
    credential_id = config.get("credential_id") or ctx.run.credential_id
    if not credential_id:
        raise StepError("credential_missing", "the provider config names no credential")
    try:
        secret = decrypt_credential(ctx.deps, ctx.run.tenant_id, str(credential_id))
    except CredentialUnavailable as exc:
        raise StepError("credential_missing", f"no active credential {credential_id}") from exc
    admin_key = secret.get("admin_key")
    if not admin_key:
        raise StepError("credential_missing", "the credential is not an ADMIN_KEY")
    settings = ctx.deps.settings
    if name == "openai":
        from shared.sources.openai.reader import read

        base = settings.openai_admin_api_base
    else:
        from shared.sources.anthropic.reader import read  # type: ignore[assignment]

        base = settings.anthropic_admin_api_base
    try:
        rows = read(
            base,
            str(admin_key),
            date_from,
            date_to,
            page_limit=int(ctx.params.get("page_limit", 31)),
            timeout=settings.genai_api_timeout_seconds,
        )
    except AdminApiError as exc:
        transient = exc.code in ("provider_unavailable", "rate_limited")
        raise StepError(exc.code, f"{provider}: {exc}", transient=transient) from None
    finally:
        del secret, admin_key
    params = {
        "pipeline_id": ctx.run.config_id,
        "date_from": date_from,
        "date_to": date_to,
        "tenant_id": ctx.run.tenant_id,
        "credential_id": Typed("STRING", str(credential_id)),
        "run_date": ctx.run.run_date,
        "run_id": ctx.run.run_id,
    }
    counts = {table: _replace_raw(ctx, table, rows[table], params) for table in tables}
    return StepResult(
        rows_processed=sum(counts.values()),
        message=f"{provider} {date_from}..{date_to}: "
        + ", ".join(f"{n} rows in {t}" for t, n in counts.items()),
    )


def mapping_sql(ctx: StepContext, name: str) -> str:
    """The provider's mapping .sql with its tables filled in, comment lines dropped
    (the emulator misreads an @name inside a comment)."""
    wh = ctx.deps.warehouse
    text = (SOURCES / name / "focus_1_2.sql").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    sql = "\n".join(lines)
    return (
        sql.replace("{costs}", wh.table(ctx.run.dataset_id, f"{name}_costs_raw"))
        .replace("{usage}", wh.table(ctx.run.dataset_id, f"{name}_usage_raw"))
        .replace("{other_usage}", wh.table(ctx.run.dataset_id, f"{name}_usage_other_raw"))
    )


def convert(ctx: StepContext) -> StepResult:
    """Replaces the config's FOCUS rows of the run's days with the mapping of its raw rows."""
    name, _, _ = _provider(ctx)
    date_from, date_to = window(ctx)
    wh = ctx.deps.warehouse
    focus = wh.table(ctx.run.dataset_id, FOCUS_TABLE)
    days = {"pipeline_id": ctx.run.config_id, "date_from": date_from, "date_to": date_to}
    deleted = step_query(
        ctx,
        f"DELETE FROM {focus} AS T WHERE T.x_pipeline_id = @pipeline_id "
        "AND DATE(T.ChargePeriodStart) BETWEEN @date_from AND @date_to",
        days,
    )
    select = mapping_sql(ctx, name)
    # The mapping's output names, read by sqlglot: the .sql stays the one source.
    parsed = sqlglot.parse_one(select, read="bigquery")
    if not isinstance(parsed, sqlglot.exp.Query):
        raise StepError("mapping_invalid", f"the {name} mapping is not a query")
    columns = parsed.named_selects
    extra = ["x_focus_version", "x_run_date", "x_run_id", "x_ingested_at"]
    names = ", ".join(f"`{c}`" for c in [*columns, *extra])
    sql = (
        f"INSERT INTO {focus} ({names})\nSELECT m.*, '1.2', @run_date, @run_id, "
        f"CURRENT_TIMESTAMP()\nFROM (\n{select}\n) AS m"
    )
    inserted = step_query(
        ctx, sql, {**days, "run_date": ctx.run.run_date, "run_id": ctx.run.run_id}
    )
    n = inserted.dml_affected_rows or 0
    return StepResult(
        rows_processed=n,
        message=f"{n} FOCUS rows for {date_from}..{date_to} "
        f"({deleted.dml_affected_rows or 0} replaced)",
    )


def check(ctx: StepContext) -> StepResult:
    """Per day, SUM(BilledCost) = the cost API's total exactly; no NULL mandatory column; enums."""
    name, _, _ = _provider(ctx)
    date_from, date_to = window(ctx)
    wh = ctx.deps.warehouse
    focus = wh.table(ctx.run.dataset_id, FOCUS_TABLE)
    costs = wh.table(ctx.run.dataset_id, f"{name}_costs_raw")
    days = {"pipeline_id": ctx.run.config_id, "date_from": date_from, "date_to": date_to}
    per_day = step_query(
        ctx,
        "SELECT IFNULL(r.day, f.day) AS day, r.total AS source_total, f.total AS billed_total, "
        "r.n AS source_rows, f.n AS focus_rows FROM (SELECT DATE(c.bucket_start) AS day, "
        f"SUM(c.amount) AS total, COUNT(*) AS n FROM {costs} AS c "
        "WHERE c.x_pipeline_id = @pipeline_id "
        "AND DATE(c.bucket_start) BETWEEN @date_from AND @date_to GROUP BY day) AS r "
        "FULL OUTER JOIN (SELECT DATE(x.ChargePeriodStart) AS day, SUM(x.BilledCost) AS total, "
        f"COUNT(*) AS n FROM {focus} AS x WHERE x.x_pipeline_id = @pipeline_id "
        "AND DATE(x.ChargePeriodStart) BETWEEN @date_from AND @date_to GROUP BY day) AS f "
        "ON r.day = f.day ORDER BY day",
        days,
    ).rows
    where = (
        "f.x_pipeline_id = @pipeline_id "
        "AND DATE(f.ChargePeriodStart) BETWEEN @date_from AND @date_to"
    )
    nulls = {
        k: v for k, v in step_query(ctx, null_check_sql(focus, where), days).rows[0].items() if v
    }
    outside = {
        k: v
        for k, v in step_query(ctx, allowed_values_sql(focus, where), days).rows[0].items()
        if v
    }
    now = ctx.deps.clock()

    def result(check_name: str, ok: bool, expected: str, actual: str, detail: str) -> DqResult:
        status: DqStatus = "PASS" if ok else "FAIL"
        return DqResult(ctx.step_name, check_name, status, now, expected, actual, detail)

    mismatched = [
        r
        for r in per_day
        if r["source_total"] != r["billed_total"] or r["source_rows"] != r["focus_rows"]
    ]
    results = [
        result(
            "reconciliation_billed_cost_per_day",
            not mismatched,
            "; ".join(f"{r['day']}={r['source_total']}" for r in per_day),
            "; ".join(f"{r['day']}={r['billed_total']}" for r in per_day),
            "per day SUM(BilledCost) = the cost API's total, exact NUMERIC; "
            "one FOCUS row per cost row",
        ),
        result("not_null_mandatory", not nulls, "0", str(sum(nulls.values())), f"NULLs: {nulls}"),
        result(
            "allowed_values", not outside, "0", str(sum(outside.values())), f"outside: {outside}"
        ),
    ]
    failed = [r.check_name for r in results if r.status == "FAIL"]
    if failed:
        raise DqFailed(f"GenAI FOCUS checks failed: {', '.join(failed)}", results)
    return StepResult(
        rows_processed=sum(int(r["focus_rows"] or 0) for r in per_day),
        message=f"{len(results)} checks passed over {len(per_day)} days",
        dq_results=results,
    )

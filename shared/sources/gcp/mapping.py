"""Steps `focus.convert_gcp` and `focus.check`: GCP billing export rows -> FOCUS 1.2, and proofs.

Contract (StepFn signatures, for the executor's step registry):
    convert_gcp(ctx: StepContext) -> StepResult      step type `focus.convert_gcp`
        params (optional): `lookback_days` (int, default 3; MUST equal the extract's),
        `focus_version` ("1.2" default, or "1.3").
        Pure SQL pushed down to BigQuery (no row ever reaches Python): one
        INSERT ... SELECT of the mapping `focus_1_2.sql` (beside this module, the
        file a FinOps analyst reads; column by column in docs/sources/gcp.md) turns
        the run window's rows of `{tenant}.gcp_billing_raw` (see reader.WINDOW) into
        FOCUS rows in `{tenant}.focus_cost`, after a DELETE of that window's earlier
        rows of the same config, so re-running a date is idempotent.
    check_gcp(ctx: StepContext) -> StepResult        step type `focus.check`
        params (optional): `lookback_days`, `warn` (bool: report failures as WARN
        and don't fail the step). Returns DqResults (in StepResult.dq_results):
          - `reconciliation_billed_cost`: SUM(BilledCost) of the window's FOCUS rows
            = SUM(cost) + SUM(credits.amount) of its raw rows, exactly (NUMERIC);
          - `reconciliation_list_cost`: SUM(ListCost) = SUM(cost_at_list), exactly;
          - `not_null_mandatory`: no NULL in any mandatory FOCUS column;
          - `allowed_values`: enumerated columns within the FOCUS 1.2 values;
          - `row_count`: as many FOCUS rows as raw rows.
        Raises StepError("dq_failed") after collecting them if any FAILed; the
        executor writes the DqResults either way (they ride on the error as
        `error.dq_results`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import expressions as exp

from shared.pipelines.context import DqResult, DqStatus, StepContext, StepError, StepResult
from shared.sources.focus_checks import (
    ALLOWED_VALUES,
    NOT_NULL,
    DqFailed,
    quote,
)
from shared.sources.focus_checks import allowed_values_sql as _allowed_values_sql
from shared.sources.focus_checks import null_check_sql as _null_check_sql
from shared.sources.gcp.reader import (
    RAW_TABLE,
    WINDOW,
    replace_window,
    window_params,
)
from shared.sources.run_inputs import run_query

__all__ = ["ALLOWED_VALUES", "NOT_NULL", "DqFailed", "check_gcp", "convert_gcp"]

MAPPING_FILE = Path(__file__).resolve().parent / "focus_1_2.sql"
FOCUS_TABLE = "focus_cost"
SUPPORTED_VERSIONS = ("1.2", "1.3")
PROVIDER = "Google Cloud"
# Lineage the step adds to the mapping's columns (the run's, not the row's).
RUN_LINEAGE = ("x_focus_version", "x_run_date", "x_run_id", "x_ingested_at")


@functools.cache
def mapping_text() -> str:
    """The mapping .sql without its comment lines (the emulator misreads an @name in one)."""
    lines = MAPPING_FILE.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--"))


@functools.cache
def _mapping_columns() -> tuple[tuple[str, bool], ...]:
    """(name, always NULL) per output column of the mapping, read by sqlglot from the .sql."""
    parsed = sqlglot.parse_one(mapping_text().replace("{raw}", "raw_table"), read="bigquery")
    if not isinstance(parsed, exp.Select):
        raise StepError("mapping_invalid", "the GCP mapping is not one SELECT")
    columns = []
    for select in parsed.expressions:
        value = select.this if isinstance(select, exp.Alias) else select
        always_null = isinstance(value, exp.Cast) and isinstance(value.this, exp.Null)
        columns.append((select.alias_or_name, always_null))
    return tuple(columns)


def focus_columns(version: str = "1.2") -> list[str]:
    """The FOCUS columns (no x_*) a table of `version` has."""
    names = [n for n, _ in _mapping_columns() if not n.startswith("x_")]
    if version == "1.3":
        names += ["ServiceProviderName", "HostProviderName"]
    return names


def convert_sql(raw_table: str, focus_table: str, version: str = "1.2") -> str:
    """The INSERT ... SELECT of the window's FOCUS rows. Params: @pipeline_id, @date_from,
    @date_to, @lookback_days, @run_date (lineage), @run_id."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"unsupported FOCUS version {version!r}")
    # Always-NULL columns are left out of the INSERT (they default to NULL): less to
    # write, which is most of the statement's time on the emulator.
    names = [n for n, always_null in _mapping_columns() if not always_null]
    values = [f"m.`{n}`" for n in names]
    if version == "1.3":
        # 1.3 splits ProviderName into the service's and the host's provider.
        names += ["ServiceProviderName", "HostProviderName"]
        values += [quote(PROVIDER), quote(PROVIDER)]
    names += list(RUN_LINEAGE)
    values += [quote(version), "@run_date", "@run_id", "CURRENT_TIMESTAMP()"]
    select = mapping_text().replace("{raw}", raw_table)
    return (
        f"INSERT INTO {focus_table} ({', '.join(f'`{n}`' for n in names)})\n"
        f"SELECT {', '.join(values)}\nFROM (\n{select}\n) AS m"
    )


def delete_sql(focus_table: str) -> str:
    """Removes the config's FOCUS rows of the window, before `convert_sql` re-inserts them."""
    window = WINDOW.format(start="T.ChargePeriodStart", export="T.x_export_time")
    return f"DELETE FROM {focus_table} AS T WHERE T.x_pipeline_id = @pipeline_id AND {window}"


def _window_params(ctx: StepContext) -> dict[str, Any]:
    return {"pipeline_id": ctx.run.config_id, **window_params(ctx)}


def convert_gcp(ctx: StepContext) -> StepResult:
    """Maps the run window's raw rows to FOCUS in `focus_cost`, replacing the window's old rows."""
    version = str(ctx.params.get("focus_version", "1.2"))
    if version not in SUPPORTED_VERSIONS:
        raise StepError("invalid_parameter", f"focus_version must be one of {SUPPORTED_VERSIONS}")
    warehouse = ctx.deps.warehouse
    dataset = ctx.run.dataset_id
    focus_table = warehouse.table(dataset, FOCUS_TABLE)
    sql = convert_sql(warehouse.table(dataset, RAW_TABLE), focus_table, version)
    params = {**_window_params(ctx), "run_id": ctx.run.run_id, "run_date": ctx.run.run_date}
    deleted, inserted, billed = replace_window(ctx, delete_sql(focus_table), sql, params)
    # After the replace, the window holds exactly the rows just inserted.
    return StepResult(
        rows_processed=inserted,
        bytes_billed=billed,
        message=f"{inserted} FOCUS {version} rows in the window ({deleted} replaced)",
    )


# ---- data-quality SQL, one row each; params @pipeline_id, @date_from, @date_to, @lookback_days

_FOCUS_WHERE = "f.x_pipeline_id = @pipeline_id AND " + WINDOW.format(
    start="f.ChargePeriodStart", export="f.x_export_time"
)


def reconciliation_sql(raw_table: str, focus_table: str) -> str:
    """Exact totals of the window on both sides: billed = cost + credits, list = cost_at_list."""
    raw_window = WINDOW.format(start="r.usage_start_time", export="r.export_time")
    return (
        "SELECT\n"
        "  (SELECT IFNULL(SUM(f.BilledCost), 0) FROM " + focus_table + " AS f "
        f"WHERE {_FOCUS_WHERE}) AS billed_cost,\n"
        "  (SELECT IFNULL(SUM(f.ListCost), 0) FROM " + focus_table + " AS f "
        f"WHERE {_FOCUS_WHERE}) AS list_cost,\n"
        "  (SELECT COUNT(*) FROM " + focus_table + " AS f "
        f"WHERE {_FOCUS_WHERE}) AS focus_rows,\n"
        "  (SELECT IFNULL(SUM(r.cost), 0) FROM " + raw_table + " AS r "
        f"WHERE r.x_pipeline_id = @pipeline_id AND {raw_window}) AS raw_cost,\n"
        "  (SELECT IFNULL(SUM(c.amount), 0) FROM " + raw_table + " AS r, UNNEST(r.credits) AS c "
        f"WHERE r.x_pipeline_id = @pipeline_id AND {raw_window}) AS raw_credits,\n"
        "  (SELECT IFNULL(SUM(r.cost_at_list), 0) FROM " + raw_table + " AS r "
        f"WHERE r.x_pipeline_id = @pipeline_id AND {raw_window}) AS raw_cost_at_list,\n"
        "  (SELECT COUNT(*) FROM " + raw_table + " AS r "
        f"WHERE r.x_pipeline_id = @pipeline_id AND {raw_window}) AS raw_rows"
    )


def null_check_sql(focus_table: str) -> str:
    """Per mandatory column, how many of the window's FOCUS rows hold NULL."""
    return _null_check_sql(focus_table, _FOCUS_WHERE)


def allowed_values_sql(focus_table: str) -> str:
    """Per enumerated column, how many of the window's rows hold a value outside FOCUS's list."""
    return _allowed_values_sql(focus_table, _FOCUS_WHERE)


def check_gcp(ctx: StepContext) -> StepResult:
    """The FOCUS proofs of the run window (see the module docstring)."""
    warehouse = ctx.deps.warehouse
    dataset = ctx.run.dataset_id
    raw_table = warehouse.table(dataset, RAW_TABLE)
    focus_table = warehouse.table(dataset, FOCUS_TABLE)
    params = _window_params(ctx)
    warn = bool(ctx.params.get("warn", False))
    now = ctx.deps.clock()

    def run(sql: str) -> dict[str, Any]:
        return run_query(ctx, sql, params).rows[0]

    def result(name: str, ok: bool, expected: str, actual: str, detail: str) -> DqResult:
        status: DqStatus = "PASS" if ok else ("WARN" if warn else "FAIL")
        return DqResult(ctx.step_name, name, status, now, expected, actual, detail)

    totals = run(reconciliation_sql(raw_table, focus_table))
    expected_billed = totals["raw_cost"] + totals["raw_credits"]
    nulls = {k: v for k, v in run(null_check_sql(focus_table)).items() if v}
    outside = {k: v for k, v in run(allowed_values_sql(focus_table)).items() if v}
    results = [
        result(
            "reconciliation_billed_cost",
            totals["billed_cost"] == expected_billed,
            str(expected_billed),
            str(totals["billed_cost"]),
            "SUM(BilledCost) = SUM(cost) + SUM(credits.amount), exact NUMERIC",
        ),
        result(
            "reconciliation_list_cost",
            totals["list_cost"] == totals["raw_cost_at_list"],
            str(totals["raw_cost_at_list"]),
            str(totals["list_cost"]),
            "SUM(ListCost) = SUM(cost_at_list), exact NUMERIC",
        ),
        result(
            "row_count",
            totals["focus_rows"] == totals["raw_rows"],
            str(totals["raw_rows"]),
            str(totals["focus_rows"]),
            "one FOCUS row per export row",
        ),
        result("not_null_mandatory", not nulls, "0", str(sum(nulls.values())), f"NULLs: {nulls}"),
        result(
            "allowed_values",
            not outside,
            "0",
            str(sum(outside.values())),
            f"values outside FOCUS 1.2: {outside}",
        ),
    ]
    failed = [r.check_name for r in results if r.status == "FAIL"]
    if failed:
        raise DqFailed(f"FOCUS checks failed: {', '.join(failed)}", results)
    return StepResult(
        rows_processed=int(totals["focus_rows"]),
        message=f"{len(results)} FOCUS checks passed",
        dq_results=results,
    )

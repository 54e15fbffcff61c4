"""Steps `azure.convert` and `azure.check`: landed FocusCost rows -> FOCUS 1.2, and their proofs.

Both work on the export ranges the run's `azure.land` landed (read back from
`azure_export_totals` by run id, so an export run with no rows still owns and
clears its range):

- convert: per range, DELETE the config's focus_cost rows of the range, then
  INSERT the mapping of `focuscost_to_focus.sql` (one FOCUS row per raw row).
- check, per range and billing period: SUM(BilledCost) of focus_cost equals the
  total Python summed exactly from the export's blobs while landing them (NUMERIC
  vs Decimal, no float anywhere), and the row counts agree (source, raw, FOCUS);
  no NULL in a mandatory FOCUS column; enumerations within FOCUS 1.2's values.
  Any FAIL fails the step (DqFailed carries every result for the log).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.pipelines.context import DqResult, DqStatus, StepContext, StepResult
from shared.sources.azure.reader import RAW_TABLE, TOTALS_TABLE
from shared.sources.focus_checks import NOT_NULL, DqFailed
from shared.sources.run_inputs import run_query

FOCUS_TABLE = "focus_cost"
MAPPING_FILE = Path(__file__).with_name("focuscost_to_focus.sql")

# FOCUS 1.2 enumerations (FOCUS_Spec v1.2 specification/columns/*.md).
SERVICE_CATEGORIES = (
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
)
ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "ChargeCategory": ("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    "ChargeClass": ("Correction",),
    "ChargeFrequency": ("One-Time", "Recurring", "Usage-Based"),
    "PricingCategory": ("Standard", "Dynamic", "Committed", "Other"),
    "CommitmentDiscountCategory": ("Spend", "Usage"),
    "CommitmentDiscountStatus": ("Used", "Unused"),
    "ServiceCategory": SERVICE_CATEGORIES,
}
_RANGE = (
    "{a}.ChargePeriodStart >= TIMESTAMP(@range_start) "
    "AND {a}.ChargePeriodStart < TIMESTAMP(DATE_ADD(@range_end, INTERVAL 1 DAY))"
)


def mapping_sql(raw_table: str, focus_table: str) -> str:
    """The mapping file as sent: comment lines dropped (an @name in a comment breaks the
    emulator's parameter binding), table tokens replaced."""
    lines = [
        line for line in MAPPING_FILE.read_text().splitlines() if not line.lstrip().startswith("--")
    ]
    return "\n".join(lines).replace("{raw}", raw_table).replace("{focus}", focus_table)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_ranges(ctx: StepContext) -> list[dict[str, Any]]:
    """The export ranges this run landed (empty if land found none)."""
    wh = ctx.deps.warehouse
    return run_query(
        ctx,
        "SELECT DISTINCT x_export_range_start AS range_start, x_export_range_end AS range_end "
        f"FROM {wh.table(ctx.run.dataset_id, TOTALS_TABLE)} "
        "WHERE x_pipeline_id = @pipeline_id AND x_run_id = @run_id ORDER BY range_start",
        {"pipeline_id": ctx.run.config_id, "run_id": ctx.run.run_id},
    ).rows


def convert(ctx: StepContext) -> StepResult:
    """Replaces the config's FOCUS rows of each landed range with the mapping of its raw rows."""
    wh = ctx.deps.warehouse
    dataset = ctx.run.dataset_id
    focus_table = wh.table(dataset, FOCUS_TABLE)
    insert = mapping_sql(wh.table(dataset, RAW_TABLE), focus_table)
    delete = (
        f"DELETE FROM {focus_table} AS T WHERE T.x_pipeline_id = @pipeline_id AND "
        + _RANGE.format(a="T")
    )
    deleted = inserted = billed = 0
    ranges = run_ranges(ctx)
    for r in ranges:
        params = {
            "pipeline_id": ctx.run.config_id,
            "run_id": ctx.run.run_id,
            "run_date": ctx.run.run_date,
            "range_start": r["range_start"],
            "range_end": r["range_end"],
        }
        gone = run_query(ctx, delete, params)
        added = run_query(ctx, insert, params)
        deleted += gone.dml_affected_rows or 0
        inserted += added.dml_affected_rows or 0
        billed += gone.bytes_billed + added.bytes_billed
    return StepResult(
        rows_processed=inserted,
        bytes_billed=billed,
        message=f"{inserted} FOCUS 1.2 rows in {len(ranges)} export range(s) ({deleted} replaced)",
    )


def _focus_sql(focus_table: str, raw_table: str) -> tuple[str, str]:
    """Per billing period of one range: FOCUS rows and SUM(BilledCost), raw rows."""
    return (
        "SELECT f.BillingPeriodStart AS period, f.BillingCurrency AS currency, COUNT(*) AS n, "
        "SUM(f.BilledCost) AS billed, SUM(f.EffectiveCost) AS effective "
        f"FROM {focus_table} AS f WHERE f.x_pipeline_id = @pipeline_id AND "
        + _RANGE.format(a="f")
        + " GROUP BY period, currency"
    ), (
        f"SELECT COUNT(*) AS n FROM {raw_table} AS r WHERE r.x_pipeline_id = @pipeline_id AND "
        + _RANGE.format(a="r")
    )


def _quality_sql(focus_table: str) -> str:
    nulls = [f"COUNTIF(f.`{c}` IS NULL) AS `null_{c}`" for c in NOT_NULL]
    outside = [
        f"COUNTIF(f.`{c}` IS NOT NULL AND f.`{c}` NOT IN ({', '.join(map(_quote, v))})) "
        f"AS `bad_{c}`"
        for c, v in ALLOWED_VALUES.items()
    ]
    return (
        f"SELECT {', '.join(nulls + outside)} FROM {focus_table} AS f "
        "WHERE f.x_pipeline_id = @pipeline_id AND " + _RANGE.format(a="f")
    )


def check(ctx: StepContext) -> StepResult:
    """The exact proofs of every landed range (see the module docstring)."""
    wh = ctx.deps.warehouse
    dataset = ctx.run.dataset_id
    focus_table, raw_table = wh.table(dataset, FOCUS_TABLE), wh.table(dataset, RAW_TABLE)
    totals_table = wh.table(dataset, TOTALS_TABLE)
    warn = bool(ctx.params.get("warn", False))
    now = ctx.deps.clock()
    results: list[DqResult] = []

    def result(name: str, ok: bool, expected: Any, actual: Any, detail: str) -> None:
        status: DqStatus = "PASS" if ok else ("WARN" if warn else "FAIL")
        results.append(
            DqResult(ctx.step_name, name, status, now, str(expected), str(actual), detail)
        )

    focus_sql, raw_sql = _focus_sql(focus_table, raw_table)
    for r in run_ranges(ctx):
        params = {
            "pipeline_id": ctx.run.config_id,
            "run_id": ctx.run.run_id,
            "range_start": r["range_start"],
            "range_end": r["range_end"],
        }
        label = f"{r['range_start']:%Y%m%d}-{r['range_end']:%Y%m%d}"
        source = run_query(
            ctx,
            "SELECT billing_period_start AS period, billing_currency AS currency, "
            "source_rows AS n, source_billed_cost AS billed, source_effective_cost AS effective "
            f"FROM {totals_table} WHERE x_pipeline_id = @pipeline_id AND x_run_id = @run_id "
            "AND x_export_range_start = @range_start AND source_rows > 0",
            params,
        ).rows
        focus = {(f["period"], f["currency"]): f for f in run_query(ctx, focus_sql, params).rows}
        expected_rows = sum(int(s["n"]) for s in source)
        for s in source:
            got = focus.get((s["period"], s["currency"]), {})
            period = f"{label} period {s['period']:%Y-%m} {s['currency']}"
            billed = got.get("billed") or Decimal(0)
            result(
                f"reconciliation_billed_cost:{period}",
                billed == s["billed"],
                s["billed"],
                billed,
                "SUM(BilledCost) of focus_cost = the export's own total, exact NUMERIC",
            )
            effective = got.get("effective") or Decimal(0)
            result(
                f"reconciliation_effective_cost:{period}",
                effective == s["effective"],
                s["effective"],
                effective,
                "SUM(EffectiveCost) of focus_cost = the export's own total, exact NUMERIC",
            )
            result(
                f"row_count:{period}",
                int(got.get("n") or 0) == int(s["n"]),
                s["n"],
                got.get("n") or 0,
                "one FOCUS row per export row",
            )
        strays = set(focus) - {(s["period"], s["currency"]) for s in source}
        result(
            f"no_foreign_periods:{label}",
            not strays,
            0,
            len(strays),
            f"FOCUS billing periods the export does not hold: {sorted(map(str, strays))[:3]}",
        )
        raw_rows = int(run_query(ctx, raw_sql, params).rows[0]["n"])
        result(
            f"raw_row_count:{label}",
            raw_rows == expected_rows,
            expected_rows,
            raw_rows,
            "raw rows = export rows",
        )
        quality = run_query(ctx, _quality_sql(focus_table), params).rows[0]
        nulls = {k[5:]: v for k, v in quality.items() if k.startswith("null_") and v}
        outside = {k[4:]: v for k, v in quality.items() if k.startswith("bad_") and v}
        result(
            f"not_null_mandatory:{label}",
            not nulls,
            0,
            sum(nulls.values()),
            f"NULLs: {nulls}",
        )
        result(
            f"allowed_values:{label}",
            not outside,
            0,
            sum(outside.values()),
            f"values outside FOCUS 1.2: {outside}",
        )
    failed = [r.check_name for r in results if r.status == "FAIL"]
    if failed:
        raise DqFailed(f"Azure FOCUS checks failed: {', '.join(failed[:5])}", results)
    if not results:
        # No export run in the run's dates yet (a new export): nothing to prove.
        return StepResult(message="no export range landed by this run; nothing to check")
    return StepResult(message=f"{len(results)} Azure FOCUS checks passed", dq_results=results)

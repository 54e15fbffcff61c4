"""`dq.check`: declarative data-quality expectations over tables of the tenant's dataset.

Kinds: `row_count` (min/max), `not_null` (columns), `unique` (key columns),
`accepted_values` (column, values) and `reconciliation` (SUM of a column, plus
optionally the SUM of a repeated record's field, in one table equals the same in
another). Every table and column is a validated identifier in the tenant's own
dataset; filters are a fixed vocabulary (`where: {column: value}`, equality
only, values bound as parameters, `${run_date}`/`${tenant_id}` for the run's),
not free SQL. Reconciliation compares in SQL with `=`, so NUMERIC sums are
compared exactly (never through floats); `tolerance` exists for FLOAT64 columns.

Each expectation becomes one DqResult. A failed expectation is FAIL unless it is
marked `severity: warn` (then WARN); the executor fails the step when any result
is FAIL, and the results are recorded either way.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from google.api_core import exceptions as gexc
from pydantic import BaseModel, ConfigDict, Field

from shared.pipelines.context import DqResult, DqStatus, StepContext, StepError, StepResult
from shared.pipelines.steps import step_query
from shared.platform.warehouse import Typed

_IDENT = r"[A-Za-z_][A-Za-z0-9_]{0,299}"
_COLUMN_PATH = rf"^{_IDENT}(\.{_IDENT}){{0,3}}$"
_TABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$"
RUN_VALUES = {"${run_date}": "run_date", "${tenant_id}": "tenant_id"}
Scalar = str | int | bool
ColumnPath = Annotated[str, Field(pattern=_COLUMN_PATH)]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    severity: Literal["fail", "warn"] = "fail"
    table: str = Field(pattern=_TABLE)
    where: dict[ColumnPath, Scalar] = Field(default_factory=dict)


class RowCount(_Base):
    kind: Literal["row_count"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class NotNull(_Base):
    kind: Literal["not_null"]
    columns: list[ColumnPath] = Field(min_length=1)


class Unique(_Base):
    kind: Literal["unique"]
    columns: list[ColumnPath] = Field(min_length=1)


class AcceptedValues(_Base):
    kind: Literal["accepted_values"]
    column: str = Field(pattern=_COLUMN_PATH)
    values: list[Scalar] = Field(min_length=1)


class SumOf(BaseModel):
    """One side of a reconciliation: SUM(column) [+ SUM(record.field) over a repeated record]."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(pattern=_TABLE)
    column: str = Field(pattern=_COLUMN_PATH)
    # e.g. "credits.amount": adds the sum of every row's credits[].amount.
    plus_repeated: str | None = Field(default=None, pattern=rf"^{_IDENT}\.{_IDENT}$")
    where: dict[ColumnPath, Scalar] = Field(default_factory=dict)


class Reconciliation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["reconciliation"]
    name: str | None = Field(default=None, max_length=200)
    severity: Literal["fail", "warn"] = "fail"
    left: SumOf
    right: SumOf
    # Only for FLOAT64 sums; NUMERIC money must reconcile exactly (the default).
    tolerance: float | None = Field(default=None, ge=0)


Expectation = Annotated[
    RowCount | NotNull | Unique | AcceptedValues | Reconciliation, Field(discriminator="kind")
]


class DqParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expectations: list[Expectation] = Field(default_factory=list)


def _path(column: str) -> str:
    # Validated by the models' patterns; each part backquoted on its own.
    if not re.match(_COLUMN_PATH, column):
        raise StepError("invalid_column", f"column {column!r} is not a valid name")
    return ".".join(f"`{part}`" for part in column.split("."))


class _Query:
    """Collects bound parameters while building one check's SQL."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"@{name}"

    def table(self, table: str) -> str:
        return self.ctx.deps.warehouse.table(self.ctx.run.dataset_id, table)

    def where(self, conditions: dict[str, Scalar], alias: str | None = None) -> str:
        """Equality filters, values bound; columns qualified by `alias` when given."""
        prefix = f"{alias}." if alias else ""
        parts = []
        for column, value in conditions.items():
            if isinstance(value, str) and value in RUN_VALUES:
                run_value: Any = {
                    "run_date": self.ctx.run.run_date,
                    "tenant_id": self.ctx.run.tenant_id,
                }[RUN_VALUES[value]]
                parts.append(f"{prefix}{_path(column)} = {self.bind(run_value)}")
            else:
                parts.append(f"{prefix}{_path(column)} = {self.bind(value)}")
        return (" WHERE " + " AND ".join(parts)) if parts else ""

    def run(self, sql: str) -> dict[str, Any]:
        rows = step_query(self.ctx, sql, self.params).rows
        return rows[0] if rows else {}


def _check_name(exp: Any) -> str:
    if exp.name:
        return str(exp.name)
    if isinstance(exp, Reconciliation):
        left, right = exp.left, exp.right
        return f"reconciliation:{left.table}.{left.column}={right.table}.{right.column}"
    detail = ""
    if isinstance(exp, (NotNull, Unique)):
        detail = ":" + ",".join(exp.columns)
    elif isinstance(exp, AcceptedValues):
        detail = ":" + exp.column
    return f"{exp.kind}:{exp.table}{detail}"


def _evaluate(ctx: StepContext, exp: Any) -> tuple[bool, str | None, str | None, str | None]:
    """(passed, expected, actual, detail) for one expectation."""
    q = _Query(ctx)
    if isinstance(exp, RowCount):
        n = int(q.run(f"SELECT COUNT(*) AS n FROM {q.table(exp.table)}{q.where(exp.where)}")["n"])
        ok = (exp.min is None or n >= exp.min) and (exp.max is None or n <= exp.max)
        return ok, f"[{exp.min}, {exp.max}]", str(n), None
    if isinstance(exp, NotNull):
        counts = ", ".join(
            f"COUNTIF({_path(c)} IS NULL) AS c{i}" for i, c in enumerate(exp.columns)
        )
        row = q.run(f"SELECT {counts} FROM {q.table(exp.table)}{q.where(exp.where)}")
        nulls = {c: int(row[f"c{i}"] or 0) for i, c in enumerate(exp.columns)}
        bad = {c: n for c, n in nulls.items() if n}
        detail = ", ".join(f"{c}: {n} null" for c, n in bad.items()) or None
        return not bad, "0 nulls", str(sum(bad.values())), detail
    if isinstance(exp, Unique):
        key = ", ".join(_path(c) for c in exp.columns)
        row = q.run(
            f"SELECT COUNT(*) AS n FROM (SELECT {key} FROM {q.table(exp.table)}"
            f"{q.where(exp.where)} GROUP BY {key} HAVING COUNT(*) > 1)"
        )
        dupes = int(row["n"])
        return dupes == 0, "0 duplicate keys", str(dupes), None
    if isinstance(exp, AcceptedValues):
        accepted = q.bind(Typed("STRING", [str(v) for v in exp.values]))
        col = _path(exp.column)
        where = q.where(exp.where)
        extra = f"{' AND' if where else ' WHERE'} {col} IS NOT NULL"
        rows = step_query(
            ctx,
            f"SELECT CAST({col} AS STRING) AS v, COUNT(*) AS n FROM {q.table(exp.table)}"
            f"{where}{extra} AND CAST({col} AS STRING) NOT IN UNNEST({accepted}) "
            "GROUP BY v ORDER BY n DESC, v LIMIT 5",
            q.params,
        ).rows
        if not rows:
            return True, "only accepted values", "0", None
        sample = ", ".join(f"{r['v']!r} x{r['n']}" for r in rows)
        return False, "only accepted values", str(sum(int(r["n"]) for r in rows)), sample
    if not isinstance(exp, Reconciliation):
        raise TypeError(f"unknown expectation kind {type(exp).__name__}")
    left, right = _sum_sql(q, exp.left), _sum_sql(q, exp.right)
    verdict = "l = r"
    if exp.tolerance is not None:
        verdict = f"ABS(l - r) <= {q.bind(float(exp.tolerance))}"
    row = q.run(
        "SELECT CAST(l AS STRING) AS l, CAST(r AS STRING) AS r, "
        f"{verdict} AS ok FROM (SELECT ({left}) AS l, ({right}) AS r)"
    )
    ok = bool(row.get("ok"))
    return ok, row.get("r"), row.get("l"), None if ok else f"difference {_diff(row)}"


def _sum_sql(q: _Query, side: SumOf) -> str:
    # COALESCE: an empty side sums to 0, so "no rows on both sides" reconciles.
    table = q.table(side.table)
    total = (
        f"(SELECT COALESCE(SUM(base.{_path(side.column)}), 0) FROM {table} AS base"
        f"{q.where(side.where, 'base')})"
    )
    if side.plus_repeated:
        # A join with the unnested record, not a subquery inside SUM(): plain
        # GoogleSQL both engines run the same way. Filters stay on the base row.
        record, field = side.plus_repeated.split(".")
        total += (
            f" + (SELECT COALESCE(SUM(item.`{field}`), 0) FROM {table} AS base, "
            f"UNNEST(base.`{record}`) AS item{q.where(side.where, 'base')})"
        )
    return f"SELECT {total}"


def _diff(row: dict[str, Any]) -> str:
    try:
        return str(Decimal(str(row.get("l"))) - Decimal(str(row.get("r"))))
    except ArithmeticError:
        return "unknown"


def run_checks(ctx: StepContext) -> StepResult:
    """Evaluates every expectation; a missing table or a refused query fails its check only."""
    params = DqParams.model_validate(ctx.params)
    results: list[DqResult] = []
    for exp in params.expectations:
        checked_at = ctx.deps.clock()
        try:
            ok, expected, actual, detail = _evaluate(ctx, exp)
        except gexc.NotFound as exc:
            ok, expected, actual, detail = False, None, None, f"not found: {exc.message[:200]}"
        except gexc.BadRequest as exc:
            # The tenant's expectation, not the platform: an unknown column, or a
            # filter value of another type than its column (BigQuery is strict).
            ok, expected, actual, detail = False, None, None, f"refused: {exc.message[:200]}"
        status: DqStatus = "PASS" if ok else ("WARN" if exp.severity == "warn" else "FAIL")
        results.append(
            DqResult(ctx.step_name, _check_name(exp), status, checked_at, expected, actual, detail)
        )
    counts = {s: sum(r.status == s for r in results) for s in ("PASS", "WARN", "FAIL")}
    return StepResult(
        message=f"{counts['PASS']} passed, {counts['WARN']} warned, {counts['FAIL']} failed",
        dq_results=results,
    )

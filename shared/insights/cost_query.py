"""Cost summaries and top movers: one partition-pruned statement on `{tenant}.focus_cost` each."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.deps import Deps
from shared.insights.dimensions import DIMENSIONS, TAG_PREFIX, check_filters, require_dimension
from shared.platform.errors import unprocessable
from shared.tenancy.plans import PLANS
from shared.tenancy.tenant_dataset import dataset_id_for

MAX_MONTHS = 13
MAX_GROUPS = 10_000
MAX_MOVERS = 100
CURRENCY_NOTE = (
    "amounts in different BillingCurrency values are never added: every total and "
    "series is per currency"
)
_RESERVED_ARGS = {"from", "to", "group_by"}


class SummaryQuery(BaseModel):
    """GET /costs/summary: an inclusive date range, 0-2 group-by dimensions, filters."""

    model_config = ConfigDict(frozen=True)

    start: dt.date
    end: dt.date
    group_by: tuple[str, ...] = ()
    filters: dict[str, list[str]] = Field(default_factory=dict)


class CostAmounts(BaseModel):
    currency: str | None
    billed_cost: decimal.Decimal
    effective_cost: decimal.Decimal


class DailyAmounts(BaseModel):
    date: dt.date
    billed_cost: decimal.Decimal
    effective_cost: decimal.Decimal


class CurrencySeries(BaseModel):
    currency: str | None
    daily: list[DailyAmounts]


class GroupAmounts(CostAmounts):
    key: dict[str, str | None]
    daily: list[DailyAmounts]


class SummaryResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: dt.date = Field(serialization_alias="from")
    to: dt.date
    group_by: list[str]
    filters: dict[str, list[str]]
    currencies: list[str | None]
    currency_note: str
    totals: list[CostAmounts]
    series: list[CurrencySeries]
    groups: list[GroupAmounts]


class Mover(BaseModel):
    dimension: Literal["service", "sub_account"]
    value: str | None
    currency: str | None
    current_effective_cost: decimal.Decimal
    previous_effective_cost: decimal.Decimal
    change: decimal.Decimal
    change_percent: decimal.Decimal | None


class MoversResponse(BaseModel):
    period_days: int
    current: dict[str, dt.date]
    previous: dict[str, dt.date]
    currency_note: str
    movers: list[Mover]


# ----------------------------------------------------------------- plan byte cap


class _PlanCaps:
    """Each tenant's plan byte cap, cached per instance like the auth cache.

    The cap is a job setting, so it can't be read in the cost statement itself;
    caching it keeps a warm request at one statement. A plan change reaches a
    warm instance within the TTL, the same bound as key revocation.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caps: dict[tuple[str, str], tuple[float, int]] = {}

    def cap(self, deps: Deps, tenant_id: str) -> int:
        key = (deps.settings.central_dataset, tenant_id)
        ttl = deps.settings.auth_cache_ttl_seconds
        with self._lock:
            hit = self._caps.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        warehouse = deps.warehouse
        rows = warehouse.query(
            f"SELECT plan FROM {warehouse.central('tenant_subscriptions')} "
            "WHERE tenant_id = @t ORDER BY created_at DESC LIMIT 1",
            {"t": tenant_id},
            component="costs",
            tenant_id=tenant_id,
        )
        plan = PLANS.get(str(rows[0]["plan"])) if rows else None
        # No subscription row: the smallest plan's cap, never an unbounded query.
        cap = plan.max_bytes_billed if plan else min(p.max_bytes_billed for p in PLANS.values())
        with self._lock:
            self._caps[key] = (time.monotonic(), cap)
        return cap


PLAN_CAPS = _PlanCaps()


def focus_table(deps: Deps, tenant_id: str) -> str:
    dataset = dataset_id_for(tenant_id, deps.settings.tenant_dataset_suffix)
    return deps.warehouse.table(dataset, "focus_cost")


# ----------------------------------------------------------------- parsing


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError("unreachable")  # pragma: no cover


def _date_arg(value: str | None, field: str, default: dt.date) -> dt.date:
    if value is None or value == "":
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise unprocessable(
            "invalid_date", f"{field}: a date YYYY-MM-DD is required", field=field
        ) from None


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_summary_query(args: Mapping[str, list[str]], today: dt.date) -> SummaryQuery:
    """The query string of GET /costs/summary; every problem is a 422 naming the field.

    `from` and `to` are inclusive dates (default: the month to date). `group_by`
    is repeated or comma separated. Any other argument is a filter on the
    dimension it names; repeated or comma separated values are ORed.
    """
    start = _date_arg(_one(args, "from"), "from", today.replace(day=1))
    end = _date_arg(_one(args, "to"), "to", today)
    if end < start:
        raise unprocessable("invalid_range", "to: must not be before from", field="to")
    if end >= add_months(start, MAX_MONTHS):
        raise unprocessable(
            "range_too_long",
            f"to: the range is over {MAX_MONTHS} months; ask for {MAX_MONTHS} months or less",
            field="to",
        )
    group_by = tuple(_split(list(args.get("group_by", []))))
    if len(group_by) > 2 or len(set(group_by)) != len(group_by):
        raise unprocessable(
            "invalid_group_by", "group_by: one or two distinct dimensions", field="group_by"
        )
    for name in group_by:
        require_dimension(name, "group_by")
    filters = {
        name: _split(list(values)) for name, values in args.items() if name not in _RESERVED_ARGS
    }
    return SummaryQuery(
        start=start, end=end, group_by=group_by, filters=check_filters(filters, "filter")
    )


def _one(args: Mapping[str, list[str]], name: str) -> str | None:
    values = list(args.get(name, []))
    if len(values) > 1:
        raise unprocessable("invalid_argument", f"{name}: give it once", field=name)
    return values[0] if values else None


# ----------------------------------------------------------------- SQL


def _column(name: str, params: dict[str, Any], index: int) -> str:
    """The SQL of a dimension over focus_cost row `c`; tag keys are query parameters."""
    if name.startswith(TAG_PREFIX):
        params[f"tag_path_{index}"] = f'$."{name[len(TAG_PREFIX) :]}"'
        return f"JSON_VALUE(c.Tags, @tag_path_{index})"
    return f"c.{DIMENSIONS[name]}"


def filter_sql(filters: dict[str, list[str]], params: dict[str, Any]) -> str:
    """AND of `dimension IN UNNEST(@values)` for each filter ('TRUE' without filters)."""
    clauses = []
    for index, (name, values) in enumerate(sorted(filters.items())):
        params[f"filter_{index}"] = list(values)
        clauses.append(f"{_column(name, params, 100 + index)} IN UNNEST(@filter_{index})")
    return " AND ".join(clauses) or "TRUE"


def _window(start: dt.date, end: dt.date) -> dict[str, dt.datetime]:
    # Constant timestamp bounds on the partition column: BigQuery prunes to the range.
    return {
        "start_ts": dt.datetime.combine(start, dt.time(), dt.UTC),
        "end_ts": dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC),
    }


def summary_sql(table: str, query: SummaryQuery) -> tuple[str, dict[str, Any]]:
    """One statement: per group and currency, the total and the daily series (ARRAY).

    `group_count` (a window over the groups) tells the caller whether the
    answer was cut at MAX_GROUPS + 1 rows.
    """
    params: dict[str, Any] = dict(_window(query.start, query.end))
    keys = [_column(name, params, i) for i, name in enumerate(query.group_by)]
    key_select = "".join(f", {expr} AS g{i}" for i, expr in enumerate(keys))
    key_names = "".join(f"g{i}, " for i in range(len(keys)))
    where = filter_sql(query.filters, params)
    params["max_rows"] = MAX_GROUPS + 1
    sql = (
        "WITH daily AS (\n"
        f"  SELECT {key_names}c.BillingCurrency AS currency, "
        "DATE(c.ChargePeriodStart) AS day,\n"
        "    SUM(c.BilledCost) AS billed, SUM(c.EffectiveCost) AS effective\n"
        f"  FROM (SELECT c.*{key_select} FROM {table} AS c\n"
        "    WHERE c.ChargePeriodStart >= @start_ts AND c.ChargePeriodStart < @end_ts\n"
        f"      AND {where}) AS c\n"
        f"  GROUP BY {key_names}currency, day\n"
        ")\n"
        f"SELECT {key_names}currency, SUM(billed) AS billed, SUM(effective) AS effective,\n"
        # Named STRUCT fields: the emulator fails on STRUCT(day, billed) (BigQuery infers them).
        "  ARRAY_AGG(STRUCT(day AS day, billed AS billed, effective AS effective)\n"
        "    ORDER BY day) AS series,\n"
        "  COUNT(*) OVER () AS group_count\n"
        f"FROM daily GROUP BY {key_names}currency\n"
        f"ORDER BY currency, {key_names}billed DESC\n"
        "LIMIT @max_rows"
    )
    return sql, params


def _zero() -> decimal.Decimal:
    return decimal.Decimal(0)


def _amount(value: Any) -> decimal.Decimal:
    return decimal.Decimal(value) if value is not None else _zero()


def cost_summary(deps: Deps, tenant_id: str, query: SummaryQuery) -> SummaryResponse:
    """Totals and daily series per currency and group; 422 past MAX_GROUPS groups."""
    sql, params = summary_sql(focus_table(deps, tenant_id), query)
    rows = deps.warehouse.query(
        sql,
        params,
        component="costs",
        tenant_id=tenant_id,
        maximum_bytes_billed=PLAN_CAPS.cap(deps, tenant_id),
    )
    if rows and int(rows[0]["group_count"]) > MAX_GROUPS:
        raise unprocessable(
            "too_many_groups",
            f"group_by: the answer has more than {MAX_GROUPS} groups; "
            "group by fewer or coarser dimensions, add filters or shorten the range",
            field="group_by",
            groups=int(rows[0]["group_count"]),
        )
    totals: dict[str | None, list[decimal.Decimal]] = {}
    series: dict[str | None, dict[dt.date, list[decimal.Decimal]]] = {}
    groups = []
    for row in rows:
        currency = row["currency"]
        daily = [
            DailyAmounts(
                date=point["day"],
                billed_cost=_amount(point["billed"]),
                effective_cost=_amount(point["effective"]),
            )
            for point in row["series"]
        ]
        total = totals.setdefault(currency, [_zero(), _zero()])
        total[0] += _amount(row["billed"])
        total[1] += _amount(row["effective"])
        by_day = series.setdefault(currency, {})
        for point in daily:
            sums = by_day.setdefault(point.date, [_zero(), _zero()])
            sums[0] += point.billed_cost
            sums[1] += point.effective_cost
        groups.append(
            GroupAmounts(
                key={name: row[f"g{i}"] for i, name in enumerate(query.group_by)},
                currency=currency,
                billed_cost=_amount(row["billed"]),
                effective_cost=_amount(row["effective"]),
                daily=daily,
            )
        )
    currencies = sorted(totals, key=lambda c: (c is None, c or ""))
    return SummaryResponse(
        from_=query.start,
        to=query.end,
        group_by=list(query.group_by),
        filters=query.filters,
        currencies=currencies,
        currency_note=CURRENCY_NOTE,
        totals=[
            CostAmounts(currency=c, billed_cost=totals[c][0], effective_cost=totals[c][1])
            for c in currencies
        ],
        series=[
            CurrencySeries(
                currency=c,
                daily=[
                    DailyAmounts(date=day, billed_cost=s[0], effective_cost=s[1])
                    for day, s in sorted(series[c].items())
                ],
            )
            for c in currencies
        ],
        groups=groups if query.group_by else [],
    )


# ----------------------------------------------------------------- top movers


def parse_period(value: str | None) -> int:
    """`7d` .. `186d` (or a bare number of days); default 7 days."""
    text = (value or "7d").strip().lower()
    number = text[:-1] if text.endswith("d") else text
    if not number.isdigit() or not 1 <= int(number) <= 186:
        raise unprocessable(
            "invalid_period", "period: a number of days from 1d to 186d, e.g. 7d", field="period"
        )
    return int(number)


def movers_sql(table: str, days: int, end: dt.date, limit: int) -> tuple[str, dict[str, Any]]:
    """One statement: EffectiveCost of the last `days` days against the `days` before, per
    service and per sub-account and currency, the `limit` largest absolute changes of each."""
    current_start = end - dt.timedelta(days=days - 1)
    previous_start = current_start - dt.timedelta(days=days)
    params: dict[str, Any] = {
        **_window(previous_start, end),
        "current_ts": dt.datetime.combine(current_start, dt.time(), dt.UTC),
        "limit": limit,
    }
    per_dimension = " UNION ALL ".join(
        f"SELECT '{name}' AS dimension, c.{DIMENSIONS[name]} AS value, c.BillingCurrency AS "
        "currency, c.ChargePeriodStart >= @current_ts AS is_current, c.EffectiveCost AS cost "
        f"FROM {table} AS c "
        "WHERE c.ChargePeriodStart >= @start_ts AND c.ChargePeriodStart < @end_ts"
        for name in ("service", "sub_account")
    )
    sql = (
        "SELECT dimension, value, currency, current_cost, previous_cost,\n"
        "  current_cost - previous_cost AS change\n"
        "FROM (\n"
        "  SELECT dimension, value, currency,\n"
        "    IFNULL(SUM(IF(is_current, cost, NULL)), 0) AS current_cost,\n"
        "    IFNULL(SUM(IF(is_current, NULL, cost)), 0) AS previous_cost\n"
        f"  FROM ({per_dimension}) AS d\n"
        "  GROUP BY dimension, value, currency\n"
        ") AS m\n"
        "WHERE current_cost != previous_cost\n"
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY dimension "
        "ORDER BY ABS(current_cost - previous_cost) DESC, value) <= @limit\n"
        "ORDER BY dimension, ABS(current_cost - previous_cost) DESC, value"
    )
    return sql, params


def top_movers(
    deps: Deps, tenant_id: str, days: int, end: dt.date, limit: int = 10
) -> MoversResponse:
    sql, params = movers_sql(focus_table(deps, tenant_id), days, end, limit)
    rows = deps.warehouse.query(
        sql,
        params,
        component="costs",
        tenant_id=tenant_id,
        maximum_bytes_billed=PLAN_CAPS.cap(deps, tenant_id),
    )
    current_start = end - dt.timedelta(days=days - 1)
    movers = []
    for row in rows:
        current, previous = _amount(row["current_cost"]), _amount(row["previous_cost"])
        change = current - previous
        percent = (change * 100 / previous).quantize(decimal.Decimal("0.1")) if previous else None
        movers.append(
            Mover(
                dimension=row["dimension"],
                value=row["value"],
                currency=row["currency"],
                current_effective_cost=current,
                previous_effective_cost=previous,
                change=change,
                change_percent=percent,
            )
        )
    return MoversResponse(
        period_days=days,
        current={"from": current_start, "to": end},
        previous={
            "from": current_start - dt.timedelta(days=days),
            "to": current_start - dt.timedelta(days=1),
        },
        currency_note=CURRENCY_NOTE,
        movers=movers,
    )


def parse_end(value: str | None, today: dt.date) -> dt.date:
    """The last day of the current window (inclusive); default today."""
    return _date_arg(value, "to", today)


def parse_limit(value: str | None) -> int:
    text = (value or "10").strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_MOVERS:
        raise unprocessable(
            "invalid_limit", f"limit: a number from 1 to {MAX_MOVERS}", field="limit"
        )
    return int(text)

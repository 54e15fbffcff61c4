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


# Days since 1970-01-01 UTC (the day of a UTC timestamp) as an integer. Grouping
# by it instead of DATE(ChargePeriodStart) gives the same days on BigQuery and
# is three times cheaper on the emulator (DuckDB converts TIMESTAMPTZ to DATE
# through a time zone per row); bills start after 1970, where DIV floors.
DAY_NUMBER = "DIV(UNIX_MICROS(c.ChargePeriodStart), 86400000000)"
EPOCH = dt.date(1970, 1, 1)


def summary_sql(table: str, query: SummaryQuery) -> tuple[str, dict[str, Any]]:
    """One statement: per group, currency and day, the sums of BilledCost and EffectiveCost.

    Flat rows (one GROUP BY, no nested aggregation): totals and series are
    summed in Python, exactly, from NUMERIC. With a group-by, the QUALIFY keeps
    the rows of the first MAX_GROUPS + 1 groups, so the caller can tell that
    the answer has too many without reading them all.
    """
    params: dict[str, Any] = dict(_window(query.start, query.end))
    keys = "".join(f"{_column(name, params, i)} AS g{i}, " for i, name in enumerate(query.group_by))
    key_names = "".join(f"g{i}, " for i in range(len(query.group_by)))
    sql = (
        f"SELECT {keys}c.BillingCurrency AS currency, {DAY_NUMBER} AS day,\n"
        "  SUM(c.BilledCost) AS billed, SUM(c.EffectiveCost) AS effective\n"
        f"FROM {table} AS c\n"
        "WHERE c.ChargePeriodStart >= @start_ts AND c.ChargePeriodStart < @end_ts\n"
        f"  AND {filter_sql(query.filters, params)}\n"
        f"GROUP BY {key_names}currency, day"
    )
    if query.group_by:
        params["max_groups"] = MAX_GROUPS + 1
        sql += f"\nQUALIFY DENSE_RANK() OVER (ORDER BY {key_names}currency) <= @max_groups"
    return sql, params


def _zero() -> decimal.Decimal:
    return decimal.Decimal(0)


def _amount(value: Any) -> decimal.Decimal:
    return decimal.Decimal(value) if value is not None else _zero()


class _Sums:
    """Exact running sums of one group (or currency): the total and each day's."""

    def __init__(self) -> None:
        self.billed = _zero()
        self.effective = _zero()
        self.days: dict[dt.date, list[decimal.Decimal]] = {}

    def add(self, day: dt.date, billed: decimal.Decimal, effective: decimal.Decimal) -> None:
        self.billed += billed
        self.effective += effective
        sums = self.days.setdefault(day, [_zero(), _zero()])
        sums[0] += billed
        sums[1] += effective

    def daily(self) -> list[DailyAmounts]:
        return [
            DailyAmounts(date=day, billed_cost=s[0], effective_cost=s[1])
            for day, s in sorted(self.days.items())
        ]


def _currency_order(currency: str | None) -> tuple[bool, str]:
    return (currency is None, currency or "")


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
    names = [f"g{i}" for i in range(len(query.group_by))]
    by_currency: dict[str | None, _Sums] = {}
    by_group: dict[tuple[Any, ...], _Sums] = {}
    for row in rows:
        day = EPOCH + dt.timedelta(days=int(row["day"]))
        billed, effective = _amount(row["billed"]), _amount(row["effective"])
        by_currency.setdefault(row["currency"], _Sums()).add(day, billed, effective)
        if names:
            key = (*(row[name] for name in names), row["currency"])
            by_group.setdefault(key, _Sums()).add(day, billed, effective)
    if len(by_group) > MAX_GROUPS:
        raise unprocessable(
            "too_many_groups",
            f"group_by: the answer has more than {MAX_GROUPS} groups; "
            "group by fewer or coarser dimensions, add filters or shorten the range",
            field="group_by",
        )
    currencies = sorted(by_currency, key=_currency_order)
    # Groups by currency, the largest BilledCost first: what a cost table shows on top.
    ordered = sorted(
        by_group.items(), key=lambda item: (_currency_order(item[0][-1]), -item[1].billed)
    )
    return SummaryResponse(
        from_=query.start,
        to=query.end,
        group_by=list(query.group_by),
        filters=query.filters,
        currencies=currencies,
        currency_note=CURRENCY_NOTE,
        totals=[
            CostAmounts(
                currency=c,
                billed_cost=by_currency[c].billed,
                effective_cost=by_currency[c].effective,
            )
            for c in currencies
        ],
        series=[CurrencySeries(currency=c, daily=by_currency[c].daily()) for c in currencies],
        groups=[
            GroupAmounts(
                key=dict(zip(query.group_by, key[:-1], strict=True)),
                currency=key[-1],
                billed_cost=sums.billed,
                effective_cost=sums.effective,
                daily=sums.daily(),
            )
            for key, sums in ordered
        ],
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


def movers_sql(table: str, days: int, end: dt.date) -> tuple[str, dict[str, Any]]:
    """One statement, one scan: EffectiveCost of the last `days` days and of the `days`
    before, per service and per sub-account (GROUPING SETS) and currency."""
    current_start = end - dt.timedelta(days=days - 1)
    previous_start = current_start - dt.timedelta(days=days)
    params: dict[str, Any] = {
        **_window(previous_start, end),
        "current_ts": dt.datetime.combine(current_start, dt.time(), dt.UTC),
    }
    # GROUPING(ServiceName) is 1 in the sub-account set, which tells its rows
    # apart from a service whose name is NULL.
    sql = (
        "SELECT IF(GROUPING(c.ServiceName) = 0, 'service', 'sub_account') AS dimension,\n"
        "  IF(GROUPING(c.ServiceName) = 0, c.ServiceName, c.SubAccountId) AS value,\n"
        "  c.BillingCurrency AS currency,\n"
        "  SUM(IF(c.ChargePeriodStart >= @current_ts, c.EffectiveCost, 0)) AS current_cost,\n"
        "  SUM(IF(c.ChargePeriodStart >= @current_ts, 0, c.EffectiveCost)) AS previous_cost\n"
        f"FROM {table} AS c\n"
        "WHERE c.ChargePeriodStart >= @start_ts AND c.ChargePeriodStart < @end_ts\n"
        "GROUP BY GROUPING SETS ((c.ServiceName, c.BillingCurrency), "
        "(c.SubAccountId, c.BillingCurrency))"
    )
    return sql, params


def top_movers(
    deps: Deps, tenant_id: str, days: int, end: dt.date, limit: int = 10
) -> MoversResponse:
    """The `limit` largest absolute changes of each dimension; unchanged values are left out.

    The ranking is done here: the statement returns one row per service and
    per sub-account, few enough to rank exactly in Python.
    """
    sql, params = movers_sql(focus_table(deps, tenant_id), days, end)
    rows = deps.warehouse.query(
        sql,
        params,
        component="costs",
        tenant_id=tenant_id,
        maximum_bytes_billed=PLAN_CAPS.cap(deps, tenant_id),
    )
    current_start = end - dt.timedelta(days=days - 1)
    ranked: dict[str, list[Mover]] = {"service": [], "sub_account": []}
    for row in rows:
        current, previous = _amount(row["current_cost"]), _amount(row["previous_cost"])
        change = current - previous
        if not change:
            continue
        percent = (change * 100 / previous).quantize(decimal.Decimal("0.1")) if previous else None
        ranked[row["dimension"]].append(
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
    movers = [
        mover
        for dimension in ("service", "sub_account")
        for mover in sorted(
            ranked[dimension],
            key=lambda m: (-abs(m.change), m.value is None, m.value or "", m.currency or ""),
        )[:limit]
    ]
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

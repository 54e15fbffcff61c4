"""Budgets: a tenant's monthly amounts over a cost scope, with actual and forecast thresholds."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.deps import Deps
from shared.insights.cost_query import PLAN_CAPS, add_months, focus_table
from shared.insights.dimensions import check_filters
from shared.platform.errors import conflict, not_found, unprocessable
from shared.platform.identifiers import derived_id
from shared.platform.warehouse import Typed

BUDGET_ID_RE = re.compile(r"^bgt_[0-9a-f]{32}$")
DEFAULT_CURRENCY = "USD"
DEFAULT_ACTUAL = (50, 80, 100)
DEFAULT_FORECAST = (100,)
# NUMERIC holds 29 integer and 9 fractional digits; a budget needs far fewer.
MAX_AMOUNT = decimal.Decimal("1e15")
_COLUMNS = (
    "budget_id, name, scope_json, amount, currency, actual_thresholds, forecast_thresholds, "
    "created_at, updated_at"
)


def _amount(value: Any) -> decimal.Decimal:
    # A JSON number arrives as a float (inexact): money comes as a decimal string.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError('must be a decimal string such as "1500.00"')
    try:
        amount = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise ValueError('must be a decimal string such as "1500.00"') from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError("must be greater than 0")
    if amount >= MAX_AMOUNT or -int(amount.as_tuple().exponent) > 9:
        raise ValueError("must be below 1e15 with at most 9 decimal places")
    return amount


def _thresholds(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > 10:
        raise ValueError("a list of at most 10 percentages")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000 for v in value):
        raise ValueError("each threshold is a whole percentage from 1 to 1000")
    return tuple(sorted(set(value)))


class BudgetFields(BaseModel):
    """A budget as the tenant writes it (POST, PUT); PATCH takes any subset."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scope: dict[str, Any] = Field(default_factory=dict)
    amount: Any
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    actual_thresholds: Any = list(DEFAULT_ACTUAL)
    forecast_thresholds: Any = list(DEFAULT_FORECAST)

    @field_validator("amount")
    @classmethod
    def _check_amount(cls, value: Any) -> decimal.Decimal:
        return _amount(value)

    @field_validator("actual_thresholds", "forecast_thresholds")
    @classmethod
    def _check_thresholds(cls, value: Any) -> tuple[int, ...]:
        return _thresholds(value)


class BudgetPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    scope: dict[str, Any] | None = None
    amount: Any = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    actual_thresholds: Any = None
    forecast_thresholds: Any = None

    @field_validator("amount")
    @classmethod
    def _check_amount(cls, value: Any) -> decimal.Decimal | None:
        return None if value is None else _amount(value)

    @field_validator("actual_thresholds", "forecast_thresholds")
    @classmethod
    def _check_thresholds(cls, value: Any) -> tuple[int, ...] | None:
        return None if value is None else _thresholds(value)


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "budget_id": row["budget_id"],
        "name": row["name"],
        "scope": json.loads(row["scope_json"]),
        "amount": format(decimal.Decimal(row["amount"]).normalize(), "f"),
        "currency": row["currency"],
        "actual_thresholds": list(row["actual_thresholds"] or []),
        "forecast_thresholds": list(row["forecast_thresholds"] or []),
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def scope_json(scope: dict[str, Any]) -> str:
    """Canonical JSON (sorted keys, compact): budget_alerts.py matches tag scopes in its text."""
    return json.dumps(check_filters(scope, "scope"), separators=(",", ":"), sort_keys=True)


def tenant_currencies(deps: Deps, tenant_id: str) -> list[str]:
    """The BillingCurrency values of the tenant's costs over the last 13 months; USD if none."""
    today = deps.clock().date()
    start = add_months(today.replace(day=1), -13)
    rows = deps.warehouse.query(
        f"SELECT DISTINCT c.BillingCurrency AS currency FROM {focus_table(deps, tenant_id)} AS c "
        "WHERE c.ChargePeriodStart >= @start_ts AND c.BillingCurrency IS NOT NULL "
        "ORDER BY currency",
        {"start_ts": dt.datetime.combine(start, dt.time(), dt.UTC)},
        component="costs",
        tenant_id=tenant_id,
        maximum_bytes_billed=PLAN_CAPS.cap(deps, tenant_id),
    )
    return [str(r["currency"]) for r in rows] or [DEFAULT_CURRENCY]


def _currency(deps: Deps, tenant_id: str, asked: str | None) -> str:
    allowed = tenant_currencies(deps, tenant_id)
    if asked is None:
        if len(allowed) == 1:
            return allowed[0]
        raise unprocessable(
            "invalid_currency",
            f"currency: the tenant is billed in {', '.join(allowed)}; name one",
            field="currency",
        )
    if asked not in allowed:
        raise unprocessable(
            "invalid_currency",
            f"currency: must be the tenant's billing currency ({', '.join(allowed)})",
            field="currency",
        )
    return asked


def _params(fields: BudgetFields, currency: str) -> dict[str, Any]:
    return {
        "name": fields.name,
        "scope_json": scope_json(fields.scope),
        "amount": fields.amount,
        "currency": currency,
        "actual": Typed("INT64", list(fields.actual_thresholds)),
        "forecast": Typed("INT64", list(fields.forecast_thresholds)),
    }


def _rows(deps: Deps, tenant_id: str, where: str, **params: Any) -> list[dict[str, Any]]:
    warehouse = deps.warehouse
    return warehouse.query(
        f"SELECT {_COLUMNS} FROM {warehouse.central('tenant_budgets')} "
        f"WHERE tenant_id = @t AND deleted_at IS NULL AND {where} "
        "ORDER BY created_at, budget_id",
        {"t": tenant_id, **params},
        component="costs",
        tenant_id=tenant_id,
    )


def _active(deps: Deps, tenant_id: str, budget_id: str) -> dict[str, Any]:
    # A malformed id, another tenant's id and an unknown id all look the same: 404.
    if BUDGET_ID_RE.match(budget_id):
        rows = _rows(deps, tenant_id, "budget_id = @b", b=budget_id)
        if rows:
            return rows[0]
    raise not_found("no such budget")


def create_budget(
    deps: Deps, tenant_id: str, fields: BudgetFields, idempotency_key: str | None
) -> tuple[dict[str, Any], bool]:
    """Inserts the budget (DML: it is updated later); a replayed Idempotency-Key returns it."""
    budget_id = (
        derived_id("bgt_", tenant_id, idempotency_key)
        if idempotency_key
        else "bgt_" + uuid.uuid4().hex
    )
    params = _params(fields, _currency(deps, tenant_id, fields.currency))
    warehouse = deps.warehouse
    table = warehouse.central("tenant_budgets")
    inserted = warehouse.execute(
        f"INSERT INTO {table} (budget_id, tenant_id, name, scope_json, amount, currency, "
        "actual_thresholds, forecast_thresholds, created_at, updated_at) "
        "SELECT @b, @t, @name, @scope_json, @amount, @currency, @actual, @forecast, @now, @now "
        f"FROM (SELECT 1) WHERE NOT EXISTS (SELECT 1 FROM {table} "
        "WHERE tenant_id = @t AND budget_id = @b)",
        {**params, "b": budget_id, "t": tenant_id, "now": deps.clock()},
        component="costs",
        tenant_id=tenant_id,
    )
    if inserted:
        return public_view(_active(deps, tenant_id, budget_id)), True
    rows = _rows(deps, tenant_id, "budget_id = @b", b=budget_id)
    if not rows:
        raise conflict(
            "Idempotency-Key was used for a budget that has since been deleted; use a new key",
            field="Idempotency-Key",
        )
    stored = rows[0]
    same = (
        stored["name"] == params["name"]
        and stored["scope_json"] == params["scope_json"]
        and decimal.Decimal(stored["amount"]) == params["amount"]
        and stored["currency"] == params["currency"]
        and list(stored["actual_thresholds"] or []) == params["actual"].value
        and list(stored["forecast_thresholds"] or []) == params["forecast"].value
    )
    if not same:
        raise conflict(
            "Idempotency-Key was already used with a different budget", field="Idempotency-Key"
        )
    return public_view(stored), False


def list_budgets(deps: Deps, tenant_id: str) -> list[dict[str, Any]]:
    return [public_view(r) for r in _rows(deps, tenant_id, "TRUE")]


def get_budget(deps: Deps, tenant_id: str, budget_id: str) -> dict[str, Any]:
    return public_view(_active(deps, tenant_id, budget_id))


def replace_budget(
    deps: Deps, tenant_id: str, budget_id: str, fields: BudgetFields
) -> dict[str, Any]:
    _active(deps, tenant_id, budget_id)
    params = _params(fields, _currency(deps, tenant_id, fields.currency))
    _update(deps, tenant_id, budget_id, params)
    return get_budget(deps, tenant_id, budget_id)


def patch_budget(deps: Deps, tenant_id: str, budget_id: str, patch: BudgetPatch) -> dict[str, Any]:
    current = public_view(_active(deps, tenant_id, budget_id))
    changes = patch.model_dump(exclude_none=True)
    merged = BudgetFields.model_validate(
        {
            "name": changes.get("name", current["name"]),
            "scope": changes.get("scope", current["scope"]),
            "amount": str(changes.get("amount", current["amount"])),
            "currency": changes.get("currency", current["currency"]),
            "actual_thresholds": list(
                changes.get("actual_thresholds", current["actual_thresholds"])
            ),
            "forecast_thresholds": list(
                changes.get("forecast_thresholds", current["forecast_thresholds"])
            ),
        }
    )
    currency = merged.currency or current["currency"]
    if "currency" in changes:
        currency = _currency(deps, tenant_id, merged.currency)
    _update(deps, tenant_id, budget_id, _params(merged, currency))
    return get_budget(deps, tenant_id, budget_id)


def _update(deps: Deps, tenant_id: str, budget_id: str, params: dict[str, Any]) -> None:
    warehouse = deps.warehouse
    changed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_budgets')} SET name = @name, "
        "scope_json = @scope_json, amount = @amount, currency = @currency, "
        "actual_thresholds = @actual, forecast_thresholds = @forecast, updated_at = @now "
        "WHERE tenant_id = @t AND budget_id = @b AND deleted_at IS NULL",
        {**params, "t": tenant_id, "b": budget_id, "now": deps.clock()},
        component="costs",
        tenant_id=tenant_id,
    )
    if not changed:
        raise not_found("no such budget")


def delete_budget(deps: Deps, tenant_id: str, budget_id: str) -> dict[str, Any]:
    """Soft delete; deleting again (a retried request) is the same 200 until it is gone."""
    if not BUDGET_ID_RE.match(budget_id):
        raise not_found("no such budget")
    warehouse = deps.warehouse
    changed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_budgets')} SET deleted_at = @now "
        "WHERE tenant_id = @t AND budget_id = @b AND deleted_at IS NULL",
        {"t": tenant_id, "b": budget_id, "now": deps.clock()},
        component="costs",
        tenant_id=tenant_id,
    )
    if not changed:
        raise not_found("no such budget")
    return {"budget_id": budget_id, "deleted": True}

"""Tenant rows everybody reads: profile, subscription and usage, and the status vocabulary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.platform.errors import not_found

if TYPE_CHECKING:  # the BigQuery client loads with the warehouse, on first use
    from shared.platform.warehouse import Warehouse

ACTIVE_STATUSES = ("TRIALING", "ACTIVE", "PAST_DUE")
TENANT_STATUSES = ("TRIALING", "ACTIVE", "PAST_DUE", "SUSPENDED", "CANCELLED", "DELETED")


def _tenant_row(warehouse: Warehouse, table: str, tenant_id: str) -> dict[str, Any] | None:
    # ORDER BY created_at: should a retry race ever insert a twin row, the
    # first one stays the row everybody reads.
    rows = warehouse.query(
        f"SELECT * FROM {warehouse.central(table)} "
        "WHERE tenant_id = @t ORDER BY created_at LIMIT 1",
        {"t": tenant_id},
        component="tenants",
    )
    return rows[0] if rows else None


def tenant_rows(
    warehouse: Warehouse, tenant_id: str, tables: tuple[str, ...]
) -> dict[str, dict[str, Any] | None]:
    """Several per-tenant rows (e.g. subscription and usage) in ONE statement.

    Each table is LEFT JOINed as its first row (the same `ORDER BY created_at
    LIMIT 1` rule as `_tenant_row`) and selected as one STRUCT column: one
    round trip instead of one job per table. A join, not scalar subqueries:
    bqemulator returns no row at all for `SELECT (SELECT AS STRUCT ...)`.
    A missing row is a NULL struct on BigQuery and a struct of NULLs on the
    emulator; `tenant_id` is REQUIRED in every tenant table, so both read as None.
    """
    joins = " ".join(
        f"LEFT JOIN (SELECT * FROM {warehouse.central(table)} WHERE tenant_id = @t "
        f"ORDER BY created_at LIMIT 1) AS {table} ON {table}.tenant_id = k.tenant_id"
        for table in tables
    )
    rows = warehouse.query(
        f"SELECT {', '.join(tables)} FROM (SELECT @t AS tenant_id) AS k {joins}",
        {"t": tenant_id},
        component="tenants",
    )
    row = rows[0] if rows else {}
    found: dict[str, dict[str, Any] | None] = {}
    for table in tables:
        value = row.get(table)
        found[table] = dict(value) if value and value.get("tenant_id") is not None else None
    return found


def get_profile(warehouse: Warehouse, tenant_id: str) -> dict[str, Any] | None:
    return _tenant_row(warehouse, "tenant_profiles", tenant_id)


def get_subscription(warehouse: Warehouse, tenant_id: str) -> dict[str, Any] | None:
    return _tenant_row(warehouse, "tenant_subscriptions", tenant_id)


def get_usage(warehouse: Warehouse, tenant_id: str) -> dict[str, Any] | None:
    return _tenant_row(warehouse, "tenant_usage_quotas", tenant_id)


def require_profile(warehouse: Warehouse, tenant_id: str) -> dict[str, Any]:
    profile = get_profile(warehouse, tenant_id)
    if profile is None or profile["onboarding_state"] != "COMPLETE":
        raise not_found(f"no tenant '{tenant_id}'")
    return profile


def stripe_status_to_tenant_status(subscription_status: str) -> str | None:
    """Stripe subscription status -> tenant status; None means 'no change'."""
    return {
        "trialing": "TRIALING",
        "active": "ACTIVE",
        "past_due": "PAST_DUE",
        "unpaid": "SUSPENDED",
        "canceled": "CANCELLED",
        "incomplete_expired": "CANCELLED",
        "paused": "SUSPENDED",
    }.get(subscription_status)

"""Tenant lifecycle after onboarding: status, plan, key rotation and revocation, offboarding."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.deps import Deps
from shared.platform import audit
from shared.platform.errors import conflict, not_found, unprocessable
from shared.platform.secrets import API_KEY_PEPPER, require
from shared.platform.warehouse import Typed
from shared.tenancy import access_epoch, api_keys, tenant_dataset
from shared.tenancy.plans import PLANS, Plan
from shared.tenancy.profiles import (
    ACTIVE_STATUSES,
    TENANT_STATUSES,
    require_profile,
    tenant_rows,
)


def _limit_params(plan: Plan) -> dict[str, int]:
    return {
        "daily": plan.daily_runs,
        "monthly": plan.monthly_runs,
        "concurrent": plan.concurrent_runs,
        "team": plan.team_members,
        "providers": plan.providers,
    }


def tenant_status(deps: Deps, tenant_id: str) -> dict[str, Any]:
    """Profile, plan, limits, usage and key metadata; never secrets or hashes."""
    warehouse = deps.warehouse
    # Profile, subscription and usage in one statement; the keys are the second.
    rows = tenant_rows(
        warehouse, tenant_id, ("tenant_profiles", "tenant_subscriptions", "tenant_usage_quotas")
    )
    profile = rows["tenant_profiles"]
    if profile is None or profile["onboarding_state"] != "COMPLETE":
        raise not_found(f"no tenant '{tenant_id}'")
    subscription = rows["tenant_subscriptions"] or {}
    usage = rows["tenant_usage_quotas"] or {}
    return {
        "tenant_id": tenant_id,
        "company_name": profile["company_name"],
        "admin_email": profile["admin_email"],
        "status": profile["status"],
        "status_reason": profile.get("status_reason"),
        "source": profile.get("source"),
        "dataset_id": profile["dataset_id"],
        "created_at": profile["created_at"],
        "deleted_at": profile.get("deleted_at"),
        "dataset_delete_after": profile.get("dataset_delete_after"),
        "past_due_since": profile.get("past_due_since"),
        "subscription": {
            "plan": subscription.get("plan"),
            "status": subscription.get("status"),
            "trial_ends_at": subscription.get("trial_ends_at"),
            "current_period_end": subscription.get("current_period_end"),
            "stripe_subscription_id": subscription.get("stripe_subscription_id"),
        },
        "limits": {
            "daily_runs": subscription.get("daily_run_limit"),
            "monthly_runs": subscription.get("monthly_run_limit"),
            "concurrent_runs": subscription.get("concurrent_run_limit"),
            "team_members": subscription.get("team_member_limit"),
            "providers": subscription.get("provider_limit"),
        },
        "usage": {
            "usage_date": usage.get("usage_date"),
            "daily_runs": usage.get("daily_runs"),
            "monthly_runs": usage.get("monthly_runs"),
            "running_runs": usage.get("running_runs"),
        },
        "api_keys": api_keys.list_keys(warehouse, tenant_id),
    }


def set_status(
    deps: Deps,
    tenant_id: str,
    status: str,
    *,
    reason: str,
    actor: str,
    allowed_from: tuple[str, ...] = (*ACTIVE_STATUSES, "SUSPENDED"),
    past_due_since: dt.datetime | None = None,
    stripe_event_created: dt.datetime | None = None,
) -> bool:
    """Moves a tenant to `status` if it is in one of `allowed_from`; True if it changed.

    With `stripe_event_created`, only while the tenant's Stripe event clock
    still holds that time (no newer event was applied meanwhile), in the same
    UPDATE.
    """
    if status not in TENANT_STATUSES:
        raise ValueError(f"unknown tenant status {status!r}")
    warehouse = deps.warehouse
    require_profile(warehouse, tenant_id)
    now = deps.clock()
    guard = ""
    extra: dict[str, Any] = {}
    if stripe_event_created is not None:
        guard = (
            f" AND (SELECT MAX(last_event_created) FROM {warehouse.central('tenant_subscriptions')}"
            " WHERE tenant_id = @t) = @event_created"
        )
        extra["event_created"] = stripe_event_created
    changed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_profiles')} SET status = @status, "
        "status_reason = @reason, updated_at = @now, "
        "past_due_since = IF(@status = 'PAST_DUE', IFNULL(past_due_since, @since), NULL) "
        f"WHERE tenant_id = @t AND status IN UNNEST(@allowed) AND status != @status{guard}",
        {
            **extra,
            "status": status,
            "reason": reason,
            "now": now,
            "since": past_due_since or now,
            "t": tenant_id,
            "allowed": list(allowed_from),
        },
        component="lifecycle",
        tenant_id=tenant_id,
    )
    deps.auth_cache.forget_tenant(tenant_id)
    # Every instance's cached principals carry the old status: move the epoch,
    # also when a retry finds nothing left to change (the first try may have died here).
    access_epoch.bump(deps, tenant_id)
    if changed:
        audit.record(
            warehouse,
            actor=actor,
            action=f"tenant.status.{status.lower()}",
            now=now,
            tenant_id=tenant_id,
            detail={"reason": reason},
        )
    return changed > 0


def _plan_named(plan_name: str) -> Plan:
    if plan_name not in PLANS:
        raise unprocessable("invalid_plan", f"plan must be one of {', '.join(PLANS)}", field="plan")
    return PLANS[plan_name]


def _write_plan(
    deps: Deps,
    tenant_id: str,
    plan: Plan,
    *,
    actor: str,
    subscription_status: str | None = None,
    event_created: dt.datetime | None = None,
    lookup_key: str | None = None,
    current_period_end: dt.datetime | None = None,
) -> bool:
    """Plan limits from the catalogue, in one UPDATE; False if a newer Stripe event got there.

    With `event_created`, the UPDATE applies only if no later event was applied
    already, so a late delivery can't move the plan or the event clock backwards.
    """
    warehouse = deps.warehouse
    require_profile(warehouse, tenant_id)
    now = deps.clock()
    changed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_subscriptions')} SET plan = @plan, "
        "daily_run_limit = @daily, monthly_run_limit = @monthly, "
        "concurrent_run_limit = @concurrent, team_member_limit = @team, "
        "provider_limit = @providers, stripe_price_lookup_key = @lookup, "
        "status = IFNULL(@sub_status, status), "
        "last_event_created = IFNULL(@event_created, last_event_created), "
        "current_period_end = IFNULL(@period_end, current_period_end), updated_at = @now "
        "WHERE tenant_id = @t AND (@event_created IS NULL OR last_event_created IS NULL "
        "OR last_event_created <= @event_created)",
        {
            "plan": plan.name,
            **_limit_params(plan),
            "lookup": lookup_key or plan.stripe_lookup_key,
            "sub_status": Typed("STRING", subscription_status),
            "event_created": Typed("TIMESTAMP", event_created),
            "period_end": Typed("TIMESTAMP", current_period_end),
            "now": now,
            "t": tenant_id,
        },
        component="lifecycle",
        tenant_id=tenant_id,
    )
    if event_created is not None and changed == 0:
        return False
    audit.record(
        warehouse,
        actor=actor,
        action="tenant.plan_changed",
        now=now,
        tenant_id=tenant_id,
        detail={"plan": plan.name},
    )
    return True


def change_plan(deps: Deps, tenant_id: str, plan_name: str, *, actor: str) -> dict[str, Any]:
    """An admin's plan change; returns the limits now in force."""
    plan = _plan_named(plan_name)
    _write_plan(deps, tenant_id, plan, actor=actor)
    return {
        "plan": plan.name,
        **plan.model_dump(
            include={"daily_runs", "monthly_runs", "concurrent_runs", "team_members", "providers"}
        ),
    }


def apply_stripe_plan(
    deps: Deps,
    tenant_id: str,
    plan: Plan,
    *,
    subscription_status: str,
    event_created: dt.datetime,
    current_period_end: dt.datetime | None,
) -> bool:
    """A Stripe subscription's plan and status; False if a newer event was applied already."""
    return _write_plan(
        deps,
        tenant_id,
        plan,
        actor="stripe",
        subscription_status=subscription_status,
        event_created=event_created,
        lookup_key=plan.stripe_lookup_key,
        current_period_end=current_period_end,
    )


def rotate_key(deps: Deps, tenant_id: str, overlap: dt.timedelta, *, actor: str) -> dict[str, Any]:
    """A new key (shown once); the tenant's other keys keep working for `overlap`."""
    warehouse = deps.warehouse
    profile = require_profile(warehouse, tenant_id)
    if profile["status"] == "DELETED":
        raise conflict(f"tenant '{tenant_id}' is offboarded")
    now = deps.clock()
    issued = api_keys.insert_key(
        warehouse, require(deps.secrets, API_KEY_PEPPER), tenant_id, now, created_by=actor
    )
    expires_at = now + overlap
    api_keys.start_overlap(warehouse, tenant_id, issued.key_id, expires_at)
    deps.auth_cache.forget_tenant(tenant_id)
    access_epoch.bump(deps, tenant_id)  # other instances cache the old keys without an end
    audit.record(
        warehouse,
        actor=actor,
        action="api_key.rotated",
        now=now,
        tenant_id=tenant_id,
        detail={"key_id": issued.key_id, "overlap_seconds": int(overlap.total_seconds())},
    )
    return {
        "tenant_id": tenant_id,
        "api_key": issued.key,
        "api_key_id": issued.key_id,
        "key_prefix": issued.key_prefix,
        "previous_keys_expire_at": expires_at,
    }


def revoke_key(deps: Deps, tenant_id: str, key_id: str, *, actor: str) -> dict[str, Any]:
    warehouse = deps.warehouse
    require_profile(warehouse, tenant_id)
    revoked = api_keys.revoke(warehouse, tenant_id, deps.clock(), key_id=key_id)
    # Immediate in this process; in every other one on its next request (the epoch).
    deps.auth_cache.forget_tenant(tenant_id, key_id)
    access_epoch.bump(deps, tenant_id)
    if not revoked:
        known = {k["key_id"] for k in api_keys.list_keys(warehouse, tenant_id)}
        if key_id not in known:
            raise not_found(f"no key '{key_id}' for tenant '{tenant_id}'")
    else:
        audit.record(
            warehouse,
            actor=actor,
            action="api_key.revoked",
            now=deps.clock(),
            tenant_id=tenant_id,
            detail={"key_id": key_id},
        )
    return {"tenant_id": tenant_id, "key_id": key_id, "revoked": bool(revoked)}


def offboard(deps: Deps, tenant_id: str, retain_days: int, *, actor: str) -> dict[str, Any]:
    """Deletes a tenant: status, keys, pipelines, credentials (crypto-shredded), dataset.

    Idempotent: a second call reports what is left to do (usually nothing).
    """
    warehouse = deps.warehouse
    profile = require_profile(warehouse, tenant_id)
    now = deps.clock()
    delete_after = now + dt.timedelta(days=retain_days)
    warehouse.execute(
        f"UPDATE {warehouse.central('tenant_profiles')} SET status = 'DELETED', "
        "status_reason = 'offboarded', deleted_at = IFNULL(deleted_at, @now), "
        "dataset_delete_after = IFNULL(dataset_delete_after, @after), updated_at = @now "
        "WHERE tenant_id = @t",
        {"now": now, "after": delete_after, "t": tenant_id},
        component="offboard",
        tenant_id=tenant_id,
    )
    deps.auth_cache.forget_tenant(tenant_id)
    revoked = api_keys.revoke(warehouse, tenant_id, now)
    access_epoch.bump(deps, tenant_id)  # before the dataset (and the epoch's table) may go
    pipelines_disabled = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_pipeline_configs')} SET is_active = FALSE, "
        "next_run_at = NULL, updated_at = @now WHERE tenant_id = @t AND is_active",
        {"now": now, "t": tenant_id},
        component="offboard",
        tenant_id=tenant_id,
    )
    # Crypto-shred first, then drop the ciphertexts: even copies BigQuery keeps
    # in time travel are undecryptable once the tenant's key is destroyed.
    shred = deps.crypto.shred_tenant(tenant_id)
    credentials_shredded = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_cloud_credentials')} SET status = 'SHREDDED', "
        "ciphertext = NULL, updated_at = @now WHERE tenant_id = @t AND status != 'SHREDDED'",
        {"now": now, "t": tenant_id},
        component="offboard",
        tenant_id=tenant_id,
    )
    reveals_destroyed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_key_reveals')} SET ciphertext = NULL "
        "WHERE tenant_id = @t AND ciphertext IS NOT NULL",
        {"t": tenant_id},
        component="offboard",
        tenant_id=tenant_id,
    )
    # A repeat offboarding keeps the first retention deadline.
    dataset_delete_after = profile.get("dataset_delete_after") or delete_after
    dataset = {
        "dataset_id": profile["dataset_id"],
        "deleted": False,
        "delete_after": dataset_delete_after,
    }
    if retain_days == 0 or dataset_delete_after <= now:
        dataset["deleted"] = _delete_tenant_dataset(deps, tenant_id, str(profile["dataset_id"]))
    report = {
        "tenant_id": tenant_id,
        "status": "DELETED",
        "api_keys_revoked": revoked,
        "pipelines_disabled": pipelines_disabled,
        "credentials_shredded": credentials_shredded,
        "pending_key_reveals_destroyed": reveals_destroyed,
        "key_material": {
            "key_reference": shred.key_reference,
            "versions_destroyed": shred.versions_destroyed,
            "already_shredded": shred.already_shredded,
        },
        "dataset": dataset,
    }
    audit.record(
        warehouse,
        actor=actor,
        action="tenant.offboarded",
        now=now,
        tenant_id=tenant_id,
        detail=report,
    )
    return report


def _delete_tenant_dataset(deps: Deps, tenant_id: str, dataset_id: str) -> bool:
    warehouse = deps.warehouse
    tenant_dataset.deauthorize_views(warehouse, dataset_id)
    deleted = tenant_dataset.delete_dataset(warehouse, dataset_id)
    warehouse.execute(
        f"UPDATE {warehouse.central('tenant_profiles')} SET dataset_deleted_at = @now "
        "WHERE tenant_id = @t AND dataset_deleted_at IS NULL",
        {"now": deps.clock(), "t": tenant_id},
        component="offboard",
        tenant_id=tenant_id,
    )
    return deleted


def purge_expired_datasets(deps: Deps) -> list[str]:
    """Deletes the datasets of offboarded tenants whose retention has passed."""
    warehouse = deps.warehouse
    due = warehouse.query(
        f"SELECT tenant_id, dataset_id FROM {warehouse.central('tenant_profiles')} "
        "WHERE status = 'DELETED' AND dataset_deleted_at IS NULL "
        "AND dataset_delete_after <= @now",
        {"now": deps.clock()},
        component="offboard",
    )
    for row in due:
        _delete_tenant_dataset(deps, str(row["tenant_id"]), str(row["dataset_id"]))
    return [str(r["tenant_id"]) for r in due]

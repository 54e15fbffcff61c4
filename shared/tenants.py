"""Tenant onboarding and lifecycle: profile, subscription, usage, dataset, keys, offboarding."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from shared import api_keys, audit, tenant_dataset
from shared.deps import Deps
from shared.errors import ApiError, conflict, not_found, unavailable, unprocessable
from shared.identifiers import require_tenant_id
from shared.plans import PLANS, Plan, PlanName, trial_end
from shared.secrets import API_KEY_PEPPER, require
from shared.warehouse import Typed, Warehouse

log = logging.getLogger(__name__)

# An onboarding attempt holds the right to issue the first key for this long;
# after that a retry may take over (the holder crashed).
CLAIM_LEASE = dt.timedelta(seconds=120)

# Letters (any script), digits, spaces and the punctuation real company names use.
_COMPANY_RE = re.compile(r"^[\w][\w .,&'()+\-/@!#:]*$")
_SQL_OR_HTML = ("--", "/*", "*/", ";", "<", ">", "`", '"', "\\")

ACTIVE_STATUSES = ("TRIALING", "ACTIVE", "PAST_DUE")
TENANT_STATUSES = ("TRIALING", "ACTIVE", "PAST_DUE", "SUSPENDED", "CANCELLED", "DELETED")


class OnboardRequest(BaseModel):
    """The onboarding payload; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    tenant_id: str = Field(pattern=r"^[a-z0-9_]{3,50}$")
    company_name: str = Field(min_length=1, max_length=200)
    admin_email: EmailStr
    subscription_plan: PlanName = "STARTER"

    @field_validator("company_name")
    @classmethod
    def _plain_company_name(cls, value: str) -> str:
        if any(token in value for token in _SQL_OR_HTML) or not _COMPANY_RE.match(value):
            raise ValueError("may contain letters, digits, spaces and . , & ' ( ) + - / @ ! # :")
        return value

    def fingerprint(self) -> str:
        """The same onboarding request always has the same fingerprint."""
        canonical = json.dumps(
            {
                "tenant_id": self.tenant_id,
                "company_name": self.company_name,
                "admin_email": self.admin_email.lower(),
                "subscription_plan": self.subscription_plan,
            },
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class StripeRefs:
    """Where a Stripe-provisioned tenant came from."""

    customer_id: str | None = None
    subscription_id: str | None = None
    price_lookup_key: str | None = None
    subscription_status: str | None = None
    trial_ends_at: dt.datetime | None = None
    event_created: dt.datetime | None = None


@dataclass
class OnboardResult:
    status_code: int
    tenant_id: str
    subscription_plan: str
    dataset_id: str
    tables_created: list[str]
    views_created: list[str]
    dryrun_status: str
    api_key: str | None
    api_key_id: str | None
    replayed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body = {
            "tenant_id": self.tenant_id,
            "api_key": self.api_key,
            "api_key_id": self.api_key_id,
            "subscription_plan": self.subscription_plan,
            "dataset_id": self.dataset_id,
            "tables_created": self.tables_created,
            "views_created": self.views_created,
            "dryrun_status": self.dryrun_status,
            "replayed": self.replayed,
        }
        if self.replayed:
            body["detail"] = (
                "tenant already onboarded by this request; the API key is shown only once "
                "(rotate it through the admin API if it was lost)"
            )
        return {**body, **self.extra}


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


def _insert_if_missing(warehouse: Warehouse, table: str, row: dict[str, Any]) -> None:
    """One row keyed by tenant_id, by MERGE: a retry inserts nothing twice.

    Rows are created by DML (never streamed) because lifecycle changes UPDATE
    them. Column names come from this module, never from input.
    """
    columns = ", ".join(row)
    values = ", ".join(f"@{column}" for column in row)
    warehouse.execute(
        f"MERGE {warehouse.central(table)} AS existing "
        "USING (SELECT @tenant_id AS tenant_id) AS incoming "
        "ON existing.tenant_id = incoming.tenant_id "
        f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})",
        row,
        component="onboard",
        tenant_id=str(row["tenant_id"]),
    )


def _insert_rows_if_missing(
    warehouse: Warehouse,
    request: OnboardRequest,
    refs: StripeRefs,
    now: dt.datetime,
    *,
    idempotency_key: str | None,
    source: str,
) -> None:
    """Profile, subscription and usage rows of a new tenant."""
    plan = PLANS[request.subscription_plan]
    tenant_id = request.tenant_id
    subscription_status = refs.subscription_status or "trialing"
    trial_ends_at = refs.trial_ends_at or (
        trial_end(now) if subscription_status == "trialing" else None
    )
    _insert_if_missing(
        warehouse,
        "tenant_profiles",
        {
            "tenant_id": tenant_id,
            "company_name": request.company_name,
            "admin_email": request.admin_email,
            "status": "PROVISIONING",
            "onboarding_state": "PROVISIONING",
            "request_fingerprint": request.fingerprint(),
            "idempotency_key": Typed("STRING", idempotency_key),
            "source": source,
            "dataset_id": tenant_dataset.dataset_id_for(
                tenant_id, warehouse.settings.tenant_dataset_suffix
            ),
            "stripe_customer_id": Typed("STRING", refs.customer_id),
            "stripe_subscription_id": Typed("STRING", refs.subscription_id),
            "created_at": now,
            "updated_at": now,
        },
    )
    _insert_if_missing(
        warehouse,
        "tenant_subscriptions",
        {
            "tenant_id": tenant_id,
            "plan": plan.name,
            "status": subscription_status,
            "stripe_customer_id": Typed("STRING", refs.customer_id),
            "stripe_subscription_id": Typed("STRING", refs.subscription_id),
            "stripe_price_lookup_key": refs.price_lookup_key or plan.stripe_lookup_key,
            "daily_run_limit": plan.daily_runs,
            "monthly_run_limit": plan.monthly_runs,
            "concurrent_run_limit": plan.concurrent_runs,
            "team_member_limit": plan.team_members,
            "provider_limit": plan.providers,
            "trial_ends_at": Typed("TIMESTAMP", trial_ends_at),
            "last_event_created": Typed("TIMESTAMP", refs.event_created),
            "created_at": now,
            "updated_at": now,
        },
    )
    _insert_if_missing(
        warehouse,
        "tenant_usage_quotas",
        {
            "tenant_id": tenant_id,
            "usage_date": now.date(),
            "daily_runs": 0,
            "usage_month": now.date().replace(day=1),
            "monthly_runs": 0,
            "running_runs": 0,
            "created_at": now,
            "updated_at": now,
        },
    )


def _limit_params(plan: Plan) -> dict[str, int]:
    return {
        "daily": plan.daily_runs,
        "monthly": plan.monthly_runs,
        "concurrent": plan.concurrent_runs,
        "team": plan.team_members,
        "providers": plan.providers,
    }


def _replay(deps: Deps, profile: dict[str, Any]) -> OnboardResult:
    subscription = get_subscription(deps.warehouse, profile["tenant_id"]) or {}
    return OnboardResult(
        status_code=200,
        tenant_id=profile["tenant_id"],
        subscription_plan=str(subscription.get("plan", "")),
        dataset_id=str(profile["dataset_id"]),
        tables_created=sorted(deps.catalog.tenant),
        views_created=sorted(tenant_dataset.LOG_VIEWS),
        dryrun_status="SUCCESS",
        api_key=None,
        api_key_id=None,
        replayed=True,
    )


def _check_replay(
    profile: dict[str, Any], request: OnboardRequest, idempotency_key: str | None
) -> None:
    if profile["request_fingerprint"] == request.fingerprint():
        return
    if idempotency_key and profile.get("idempotency_key") == idempotency_key:
        raise conflict("Idempotency-Key was already used with a different payload")
    raise conflict(f"tenant_id '{request.tenant_id}' already exists", field="tenant_id")


def _onboarding_in_progress(detail: str) -> ApiError:
    return ApiError(409, "onboarding_in_progress", detail, headers={"Retry-After": "5"})


def _take_claim(warehouse: Warehouse, profile: dict[str, Any], now: dt.datetime) -> str:
    """Conditional UPDATE: at most one attempt may issue the first key."""
    claimed_at = profile.get("claimed_at")
    if profile.get("claim_token") and claimed_at and now - claimed_at < CLAIM_LEASE:
        raise _onboarding_in_progress(
            "this tenant is being onboarded by another request; retry shortly"
        )
    token = uuid.uuid4().hex
    changed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_profiles')} "
        "SET claim_token = @token, claimed_at = @now "
        "WHERE tenant_id = @t AND onboarding_state = 'PROVISIONING' "
        "AND IFNULL(claim_token, '') = @seen",
        {
            "token": token,
            "now": now,
            "t": profile["tenant_id"],
            "seen": profile.get("claim_token") or "",
        },
        component="onboard",
        tenant_id=profile["tenant_id"],
    )
    if changed != 1:
        raise _onboarding_in_progress(
            "this tenant is being onboarded by another request; retry shortly"
        )
    return token


def onboard(
    deps: Deps,
    request: OnboardRequest,
    *,
    idempotency_key: str | None = None,
    source: str = "admin",
    refs: StripeRefs | None = None,
    actor: str = "admin",
) -> OnboardResult:
    """Onboards a tenant; safe to retry at any point, and a retry never issues a second key."""
    refs = refs or StripeRefs()
    warehouse = deps.warehouse
    tenant_id = require_tenant_id(request.tenant_id, deps.settings.central_dataset)
    pepper = require(deps.secrets, API_KEY_PEPPER)
    catalog = deps.catalog
    profile = get_profile(warehouse, tenant_id)
    if profile is not None:
        if profile["status"] == "DELETED":
            raise conflict(
                f"tenant_id '{tenant_id}' belonged to an offboarded tenant and can't be reused",
                field="tenant_id",
            )
        _check_replay(profile, request, idempotency_key)
        if profile["onboarding_state"] == "COMPLETE":
            return _replay(deps, profile)

    dataset_id = tenant_dataset.dataset_id_for(tenant_id, deps.settings.tenant_dataset_suffix)
    dataset_created = tenant_dataset.claim_dataset(
        warehouse, dataset_id, tenant_id, request.fingerprint()
    )
    now = deps.clock()
    _insert_rows_if_missing(
        warehouse, request, refs, now, idempotency_key=idempotency_key, source=source
    )
    deps.crypto.ensure_tenant_key(tenant_id)
    outcome = tenant_dataset.provision(warehouse, catalog, tenant_id, dataset_id)
    dryrun_status = tenant_dataset.write_check(warehouse, dataset_id)
    if dryrun_status != "SUCCESS":
        raise unavailable("the tenant dataset is not writable yet; retry the same request")

    profile = get_profile(warehouse, tenant_id)
    assert profile is not None
    if profile["onboarding_state"] == "COMPLETE":
        return _replay(deps, profile)
    token = _take_claim(warehouse, profile, deps.clock())
    # Keys left by a crashed attempt were never shown to anyone: retire them.
    api_keys.revoke(warehouse, tenant_id, deps.clock())
    issued = api_keys.insert_key(warehouse, pepper, tenant_id, deps.clock(), created_by=actor)
    status = _initial_status(refs)
    finished = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_profiles')} "
        "SET onboarding_state = 'COMPLETE', status = @status, updated_at = @now "
        "WHERE tenant_id = @t AND claim_token = @token AND onboarding_state = 'PROVISIONING'",
        {"status": status, "now": deps.clock(), "t": tenant_id, "token": token},
        component="onboard",
        tenant_id=tenant_id,
    )
    if finished != 1:
        api_keys.revoke(warehouse, tenant_id, deps.clock(), key_id=issued.key_id)
        raise _onboarding_in_progress(
            "another request took over this onboarding; retry to see its outcome"
        )
    audit.record(
        warehouse,
        actor=actor,
        action="tenant.onboarded",
        now=deps.clock(),
        tenant_id=tenant_id,
        detail={"plan": request.subscription_plan, "source": source, "key_id": issued.key_id},
    )
    log.info("tenant onboarded", extra={"tenant_id": tenant_id, "source": source})
    return OnboardResult(
        status_code=201,
        tenant_id=tenant_id,
        subscription_plan=request.subscription_plan,
        dataset_id=dataset_id,
        tables_created=sorted(outcome.tables_created + outcome.tables_existing),
        views_created=outcome.views,
        dryrun_status=dryrun_status,
        api_key=issued.key,
        api_key_id=issued.key_id,
        extra={"dataset_created": dataset_created, "status": status},
    )


def _initial_status(refs: StripeRefs) -> str:
    mapped = stripe_status_to_tenant_status(refs.subscription_status or "trialing")
    return mapped or "TRIALING"


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


# ----------------------------------------------------------------- lifecycle


def tenant_status(deps: Deps, tenant_id: str) -> dict[str, Any]:
    """Profile, plan, limits, usage and key metadata; never secrets or hashes."""
    warehouse = deps.warehouse
    profile = require_profile(warehouse, tenant_id)
    subscription = get_subscription(warehouse, tenant_id) or {}
    usage = get_usage(warehouse, tenant_id) or {}
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
) -> bool:
    """Moves a tenant to `status` if it is in one of `allowed_from`; True if it changed."""
    assert status in TENANT_STATUSES
    warehouse = deps.warehouse
    require_profile(warehouse, tenant_id)
    now = deps.clock()
    changed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_profiles')} SET status = @status, "
        "status_reason = @reason, updated_at = @now, "
        "past_due_since = IF(@status = 'PAST_DUE', IFNULL(past_due_since, @since), NULL) "
        "WHERE tenant_id = @t AND status IN UNNEST(@allowed) AND status != @status",
        {
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
    # Immediate in this process; other processes within the auth cache TTL.
    deps.auth_cache.forget_tenant(tenant_id, key_id)
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
    pipelines_disabled = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_pipeline_configs')} SET enabled = FALSE, "
        "updated_at = @now WHERE tenant_id = @t AND enabled",
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

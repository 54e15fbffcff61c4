"""Tenant onboarding: claim the id, create rows, dataset and views, issue exactly one first key."""

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

from shared.deps import Deps
from shared.platform import audit
from shared.platform.bootstrap import missing_central_tables, not_bootstrapped
from shared.platform.errors import ApiError, conflict, unavailable
from shared.platform.identifiers import require_tenant_id
from shared.platform.secrets import API_KEY_PEPPER, require
from shared.platform.warehouse import Typed, Warehouse
from shared.tenancy import api_keys, tenant_dataset
from shared.tenancy.plans import PLANS, PlanName, trial_end
from shared.tenancy.profiles import get_profile, get_subscription, stripe_status_to_tenant_status

log = logging.getLogger(__name__)

# The error code of a Stripe checkout naming a tenant another request created.
OTHER_CHECKOUT = "checkout_for_existing_tenant"

# How long an attempt owns a PROVISIONING tenant (profile `claim_token` and
# `claimed_at`). A duplicate inside it is 409 with Retry-After; a failed attempt
# releases it at once, so its retry goes on; a crashed one frees it after this.
# Onboarding takes well under a second locally and a few seconds on BigQuery.
ONBOARDING_LEASE = dt.timedelta(seconds=60)
IN_PROGRESS_RETRY_AFTER_SECONDS = 2

# Letters (any script), digits, spaces and the punctuation real company names use.
_COMPANY_RE = re.compile(r"^[\w][\w .,&'()+\-/@!#:]*$")
_SQL_OR_HTML = ("--", "/*", "*/", ";", "<", ">", "`", '"', "\\")


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


class OnboardResponse(BaseModel):
    """The onboarding answer; `api_key` is shown once and is null on a replay."""

    model_config = ConfigDict(extra="allow")

    tenant_id: str
    api_key: str | None
    api_key_id: str | None
    subscription_plan: str
    dataset_id: str
    tables_created: list[str]
    views_created: list[str]
    dryrun_status: str
    replayed: bool
    detail: str | None = None


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


def _insert_if_missing(warehouse: Warehouse, table: str, row: dict[str, Any]) -> bool:
    """One row keyed by tenant_id, by MERGE: a retry inserts nothing twice. True if inserted.

    Rows are created by DML (never streamed) because lifecycle changes UPDATE
    them. Column names come from this module, never from input.
    """
    columns = ", ".join(row)
    values = ", ".join(f"@{column}" for column in row)
    inserted = warehouse.execute(
        f"MERGE {warehouse.central(table)} AS existing "
        "USING (SELECT @tenant_id AS tenant_id) AS incoming "
        "ON existing.tenant_id = incoming.tenant_id "
        f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})",
        row,
        component="onboard",
        tenant_id=str(row["tenant_id"]),
    )
    return inserted > 0


def _insert_profile_if_missing(
    warehouse: Warehouse,
    request: OnboardRequest,
    refs: StripeRefs,
    now: dt.datetime,
    *,
    idempotency_key: str | None,
    source: str,
    attempt: str,
) -> bool:
    """The profile row of a new tenant, PROVISIONING until it completes; True if inserted.

    The inserting attempt holds the onboarding lease from the start.
    """
    tenant_id = request.tenant_id
    return _insert_if_missing(
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
            "claim_token": attempt,
            "claimed_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )


def _take_over(warehouse: Warehouse, tenant_id: str, attempt: str, now: dt.datetime) -> bool:
    """Claims the lease of a PROVISIONING tenant whose attempt failed or went silent.

    A conditional UPDATE: of concurrent retries BigQuery lets exactly one change the row.
    """
    return (
        warehouse.execute(
            f"UPDATE {warehouse.central('tenant_profiles')} "
            "SET claim_token = @attempt, claimed_at = @now "
            "WHERE tenant_id = @t AND onboarding_state = 'PROVISIONING' "
            "AND (claimed_at IS NULL OR claimed_at <= @stale)",
            {"attempt": attempt, "now": now, "t": tenant_id, "stale": now - ONBOARDING_LEASE},
            component="onboard",
            tenant_id=tenant_id,
        )
        > 0
    )


def _release(warehouse: Warehouse, tenant_id: str, attempt: str) -> None:
    """A failed attempt gives the lease back so its retry needn't wait; best effort."""
    try:
        warehouse.execute(
            f"UPDATE {warehouse.central('tenant_profiles')} SET claimed_at = NULL "
            "WHERE tenant_id = @t AND claim_token = @attempt "
            "AND onboarding_state = 'PROVISIONING'",
            {"t": tenant_id, "attempt": attempt},
            component="onboard",
            tenant_id=tenant_id,
        )
    except Exception:
        # The lease expires on its own; the original error is what the client needs.
        log.warning("onboarding lease not released", extra={"tenant_id": tenant_id})


def _in_progress_retry_after(profile: dict[str, Any], now: dt.datetime) -> int | None:
    """Seconds to wait while another attempt holds the lease; None if it is free."""
    claimed_at = profile.get("claimed_at")
    if claimed_at is None or claimed_at <= now - ONBOARDING_LEASE:
        return None
    return IN_PROGRESS_RETRY_AFTER_SECONDS


def _profile_vanished(deps: Deps) -> ApiError:
    """The profile MERGE inserted nothing, yet no profile is there: a missing table.

    BigQuery says "Not found" for a missing table; bqemulator answers with no
    rows and no error, which lands here.
    """
    if missing_central_tables(deps.warehouse, deps.catalog):
        return not_bootstrapped()
    return unavailable("the tenant profile could not be read; retry the same request")


def _insert_plan_rows_if_missing(
    warehouse: Warehouse, request: OnboardRequest, refs: StripeRefs, now: dt.datetime
) -> None:
    """Subscription and usage rows of a new tenant."""
    plan = PLANS[request.subscription_plan]
    tenant_id = request.tenant_id
    subscription_status = refs.subscription_status or "trialing"
    trial_ends_at = refs.trial_ends_at or (
        trial_end(now) if subscription_status == "trialing" else None
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
    profile: dict[str, Any], request: OnboardRequest, idempotency_key: str | None, source: str
) -> None:
    if source == "stripe" and (
        profile.get("source") != "stripe" or profile.get("idempotency_key") != idempotency_key
    ):
        # A checkout may create a tenant or replay the very session that created
        # it, nothing else: the same fingerprint (tenant id, company, email,
        # plan) is public knowledge and proves nothing about who pays.
        raise ApiError(
            409, OTHER_CHECKOUT, f"tenant_id '{request.tenant_id}' was created by another request"
        )
    if profile["request_fingerprint"] == request.fingerprint():
        return
    if idempotency_key and profile.get("idempotency_key") == idempotency_key:
        raise conflict("Idempotency-Key was already used with a different payload")
    raise conflict(f"tenant_id '{request.tenant_id}' already exists", field="tenant_id")


def _onboarding_in_progress(detail: str, retry_after: int = 5) -> ApiError:
    return ApiError(
        409, "onboarding_in_progress", detail, headers={"Retry-After": str(retry_after)}
    )


def onboard(
    deps: Deps,
    request: OnboardRequest,
    *,
    idempotency_key: str | None = None,
    source: str = "admin",
    refs: StripeRefs | None = None,
    actor: str = "admin",
) -> OnboardResult:
    """Onboards a tenant; safe to retry at any point, and a retry never issues a second key.

    Six query jobs on a first attempt: profile, subscription and usage MERGEs,
    the write check, the completing UPDATE and the key INSERT. The profile is
    read only when a MERGE finds it already there (a retry, a replay, a
    conflict), never on the first attempt: the dataset claim comes first and
    tells a retry of this request from a different one.
    """
    refs = refs or StripeRefs()
    warehouse = deps.warehouse
    tenant_id = require_tenant_id(request.tenant_id, deps.settings.central_dataset)
    require(deps.secrets, API_KEY_PEPPER)  # fail before anything is written, not half-way
    dataset_id = tenant_dataset.dataset_id_for(tenant_id, deps.settings.tenant_dataset_suffix)
    try:
        dataset_created = tenant_dataset.claim_dataset(
            warehouse, dataset_id, tenant_id, request.fingerprint()
        )
    except ApiError:
        # Someone else's payload holds the id: say precisely why, from the profile.
        _refuse_existing(get_profile(warehouse, tenant_id), request, idempotency_key, source)
        raise
    now = deps.clock()
    attempt = uuid.uuid4().hex
    profile_inserted = _insert_profile_if_missing(
        warehouse,
        request,
        refs,
        now,
        idempotency_key=idempotency_key,
        source=source,
        attempt=attempt,
    )
    if not profile_inserted:
        profile = get_profile(warehouse, tenant_id)
        if profile is None:
            raise _profile_vanished(deps)
        try:
            # Another request may have created the profile (a retry, or a race
            # for a new id): only this request's own retries may go on.
            _refuse_existing(profile, request, idempotency_key, source)
        except ApiError:
            if dataset_created:
                # E.g. an offboarded id whose dataset is gone: undo our claim.
                tenant_dataset.delete_dataset(warehouse, dataset_id)
            raise
        if profile["onboarding_state"] == "COMPLETE":
            return _replay(deps, profile)
        completed = _claim_lease(
            deps,
            profile,
            request,
            idempotency_key=idempotency_key,
            source=source,
            attempt=attempt,
            now=now,
        )
        if completed is not None:
            return _replay(deps, completed)
    try:
        return _provision_and_complete(
            deps,
            request,
            refs,
            dataset_id=dataset_id,
            dataset_created=dataset_created,
            actor=actor,
            source=source,
        )
    except Exception:
        _release(warehouse, tenant_id, attempt)
        raise


def _claim_lease(
    deps: Deps,
    profile: dict[str, Any],
    request: OnboardRequest,
    *,
    idempotency_key: str | None,
    source: str,
    attempt: str,
    now: dt.datetime,
) -> dict[str, Any] | None:
    """Goes on with a PROVISIONING tenant only if no other attempt is working on it.

    None: this attempt now holds the lease. A profile: another attempt
    completed the tenant meanwhile (answer as a replay). A duplicate that
    arrives while the first attempt is in flight is the client's own retry:
    409 with Retry-After, never a server error.
    """
    tenant_id = request.tenant_id
    wait = _in_progress_retry_after(profile, now)
    if wait is None and _take_over(deps.warehouse, tenant_id, attempt, now):
        return None
    latest = get_profile(deps.warehouse, tenant_id)
    if latest is not None and latest["onboarding_state"] == "COMPLETE":
        _refuse_existing(latest, request, idempotency_key, source)
        return latest
    raise _onboarding_in_progress(
        "this tenant is being onboarded by an earlier request; retry the same request shortly",
        wait or IN_PROGRESS_RETRY_AFTER_SECONDS,
    )


def _provision_and_complete(
    deps: Deps,
    request: OnboardRequest,
    refs: StripeRefs,
    *,
    dataset_id: str,
    dataset_created: bool,
    actor: str,
    source: str,
) -> OnboardResult:
    """Plan rows, the tenant's key and dataset, the write check; then complete and issue a key."""
    warehouse = deps.warehouse
    tenant_id = request.tenant_id
    pepper = require(deps.secrets, API_KEY_PEPPER)
    now = deps.clock()
    _insert_plan_rows_if_missing(warehouse, request, refs, now)
    deps.crypto.ensure_tenant_key(tenant_id)
    outcome = tenant_dataset.provision(
        warehouse, deps.catalog, tenant_id, dataset_id, fresh=dataset_created
    )
    dryrun_status = tenant_dataset.write_check(warehouse, dataset_id)
    if dryrun_status != "SUCCESS":
        raise unavailable("the tenant dataset is not writable yet; retry the same request")

    # Exactly one attempt completes the profile: a conditional UPDATE, which
    # BigQuery serialises against a concurrent one (the loser re-runs and
    # changes nothing). Only that attempt issues the first key, so no attempt
    # ever leaves a key behind; a crash between the two leaves a complete
    # tenant without a key, which replays answer with api_key null (rotate).
    status = _initial_status(refs)
    completed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_profiles')} "
        "SET onboarding_state = 'COMPLETE', status = @status, updated_at = @now "
        "WHERE tenant_id = @t AND onboarding_state = 'PROVISIONING' AND status != 'DELETED'",
        {"status": status, "now": deps.clock(), "t": tenant_id},
        component="onboard",
        tenant_id=tenant_id,
    )
    if completed == 0:
        profile = get_profile(warehouse, tenant_id)
        if profile is not None and profile["onboarding_state"] == "COMPLETE":
            return _replay(deps, profile)
        raise _onboarding_in_progress("this tenant changed while it was onboarded; retry")
    issued = api_keys.insert_key(warehouse, pepper, tenant_id, deps.clock(), created_by=actor)
    audit.record(
        warehouse,
        actor=actor,
        action="tenant.onboarded",
        now=deps.clock(),
        tenant_id=tenant_id,
        detail={"plan": request.subscription_plan, "source": source, "key_id": issued.key_id},
    )
    log.info("tenant onboarded", extra={"tenant_id": tenant_id, "source": source})
    from shared.notify.welcome import record_welcome

    record_welcome(deps, tenant_id, request.company_name)
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


def _refuse_existing(
    profile: dict[str, Any] | None,
    request: OnboardRequest,
    idempotency_key: str | None,
    source: str,
) -> None:
    """409 unless `profile` is this very request's tenant (a retry or a replay)."""
    if profile is None:
        return
    if profile["status"] == "DELETED":
        raise conflict(
            f"tenant_id '{request.tenant_id}' belonged to an offboarded tenant and can't be reused",
            field="tenant_id",
        )
    _check_replay(profile, request, idempotency_key, source)


def _initial_status(refs: StripeRefs) -> str:
    mapped = stripe_status_to_tenant_status(refs.subscription_status or "trialing")
    return mapped or "TRIALING"

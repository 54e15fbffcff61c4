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
from shared.platform.errors import ApiError, conflict, unavailable
from shared.platform.identifiers import require_tenant_id
from shared.platform.secrets import API_KEY_PEPPER, require
from shared.platform.warehouse import Typed, Warehouse
from shared.tenancy import api_keys, tenant_dataset
from shared.tenancy.plans import PLANS, PlanName, trial_end
from shared.tenancy.profiles import get_profile, get_subscription, stripe_status_to_tenant_status

log = logging.getLogger(__name__)

# An onboarding attempt holds the right to issue the first key for this long;
# after that a retry may take over (the holder crashed).
CLAIM_LEASE = dt.timedelta(seconds=120)

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
    outcome = tenant_dataset.provision(
        warehouse, catalog, tenant_id, dataset_id, fresh=dataset_created
    )
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

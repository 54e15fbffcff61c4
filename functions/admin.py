"""The admin function: platform bootstrap and tenant lifecycle, behind X-Admin-Key."""

from __future__ import annotations

import datetime as dt
import re

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict, Field

from shared.http import ApiRequest, Reply, Routes, require_admin, serve
from shared.platform.bootstrap import bootstrap_central
from shared.platform.errors import conflict, unprocessable
from shared.platform.identifiers import require_tenant_id
from shared.platform.schemas import SchemaError
from shared.tenancy import lifecycle, profiles
from shared.tenancy.plans import PlanName

routes = Routes()
_SESSION_ID_RE = re.compile(r"^cs_[A-Za-z0-9_]{1,250}$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BootstrapRequest(_Body):
    dry_run: bool = False


class StatusChange(_Body):
    reason: str = Field(default="admin action", min_length=1, max_length=500)


class PlanChange(_Body):
    plan: PlanName


class RotateRequest(_Body):
    # How long the previous keys keep working; 0 ends them at once.
    overlap_seconds: int = Field(default=86_400, ge=0, le=7 * 86_400)


class OffboardRequest(_Body):
    # Days the tenant's dataset is kept before deletion; 0 deletes it now.
    retain_days: int = Field(default=30, ge=0, le=365)
    # Must repeat the tenant id: offboarding destroys key material for good.
    confirm: str


def _options[B: _Body](request: ApiRequest, model: type[B]) -> B:
    """An optional JSON body: empty means all defaults."""
    if request.body_bytes().strip():
        return request.model(model)
    return model.model_validate({})


def _tenant(request: ApiRequest) -> str:
    require_admin(request)
    return require_tenant_id(request.args["tenant_id"], request.deps.settings.central_dataset)


@routes.route(
    "/bootstrap",
    methods=["POST"],
    auth="admin",
    body=BootstrapRequest,
    body_optional=True,
    status=(201, 200),
)
def bootstrap(request: ApiRequest) -> Reply:
    """Creates the central dataset and missing tables; an empty body means a real run."""
    require_admin(request)
    options = _options(request, BootstrapRequest)
    try:
        catalog = request.deps.catalog
    except SchemaError as exc:
        raise unprocessable("invalid_schema", str(exc)) from None
    report = bootstrap_central(request.deps.warehouse, catalog, dry_run=options.dry_run)
    created = report.created and not report.dry_run
    return Reply(report.as_dict(), status=201 if created else 200)


@routes.route("/tenants/<tenant_id>", methods=["GET"], auth="admin")
def get_tenant(request: ApiRequest) -> Reply:
    return Reply(lifecycle.tenant_status(request.deps, _tenant(request)))


@routes.route(
    "/tenants/<tenant_id>/suspend",
    methods=["POST"],
    auth="admin",
    body=StatusChange,
    body_optional=True,
    errors=(409,),
)
def suspend(request: ApiRequest) -> Reply:
    tenant_id = _tenant(request)
    body = _options(request, StatusChange)
    changed = lifecycle.set_status(
        request.deps,
        tenant_id,
        "SUSPENDED",
        reason=body.reason,
        actor="admin",
        allowed_from=profiles.ACTIVE_STATUSES,
    )
    return _status_reply(request, tenant_id, changed)


@routes.route(
    "/tenants/<tenant_id>/reactivate",
    methods=["POST"],
    auth="admin",
    body=StatusChange,
    body_optional=True,
    errors=(409,),
)
def reactivate(request: ApiRequest) -> Reply:
    tenant_id = _tenant(request)
    body = _options(request, StatusChange)
    profile = profiles.require_profile(request.deps.warehouse, tenant_id)
    if profile["status"] in ("CANCELLED", "DELETED"):
        raise conflict(
            f"tenant is {profile['status'].lower()}; only a new subscription can restore it"
        )
    changed = lifecycle.set_status(
        request.deps,
        tenant_id,
        "ACTIVE",
        reason=body.reason,
        actor="admin",
        allowed_from=("SUSPENDED", "PAST_DUE"),
    )
    return _status_reply(request, tenant_id, changed)


def _status_reply(request: ApiRequest, tenant_id: str, changed: bool) -> Reply:
    profile = profiles.require_profile(request.deps.warehouse, tenant_id)
    return Reply({"tenant_id": tenant_id, "status": profile["status"], "changed": changed})


@routes.route(
    "/tenants/<tenant_id>/plan", methods=["POST"], auth="admin", body=PlanChange, errors=(409,)
)
def change_plan(request: ApiRequest) -> Reply:
    tenant_id = _tenant(request)
    body = request.model(PlanChange)
    limits = lifecycle.change_plan(request.deps, tenant_id, body.plan, actor="admin")
    return Reply({"tenant_id": tenant_id, **limits})


@routes.route(
    "/tenants/<tenant_id>/keys/rotate",
    methods=["POST"],
    auth="admin",
    body=RotateRequest,
    body_optional=True,
    status=(201,),
    errors=(409,),
)
def rotate_key(request: ApiRequest) -> Reply:
    tenant_id = _tenant(request)
    body = _options(request, RotateRequest)
    result = lifecycle.rotate_key(
        request.deps, tenant_id, dt.timedelta(seconds=body.overlap_seconds), actor="admin"
    )
    return Reply(result, status=201)


@routes.route(
    "/tenants/<tenant_id>/keys/<key_id>/revoke", methods=["POST"], auth="admin", errors=(409,)
)
def revoke_key(request: ApiRequest) -> Reply:
    tenant_id = _tenant(request)
    return Reply(
        lifecycle.revoke_key(request.deps, tenant_id, request.args["key_id"], actor="admin")
    )


@routes.route(
    "/tenants/<tenant_id>/offboard",
    methods=["POST"],
    auth="admin",
    body=OffboardRequest,
    errors=(409,),
)
def offboard(request: ApiRequest) -> Reply:
    tenant_id = _tenant(request)
    body = request.model(OffboardRequest)
    if body.confirm != tenant_id:
        raise unprocessable(
            "confirmation_mismatch", "confirm must repeat the tenant id", field="confirm"
        )
    return Reply(lifecycle.offboard(request.deps, tenant_id, body.retain_days, actor="admin"))


@routes.route("/key-reveals/<session_id>", methods=["POST"], auth="admin", errors=(409, 410))
def reveal_key(request: ApiRequest) -> Reply:
    """The key of a tenant provisioned by Stripe checkout: shown once, then destroyed."""
    require_admin(request)
    session_id = request.args["session_id"]
    if not _SESSION_ID_RE.match(session_id):
        raise unprocessable("invalid_session_id", "not a checkout session id", field="session_id")
    # Imported here: the Stripe SDK and Tink load only when a reveal is asked for.
    from shared.tenancy import stripe_events

    return Reply(stripe_events.reveal_key(request.deps, session_id))


@routes.route("/enforce-grace", methods=["POST"], auth="admin")
def enforce_grace(request: ApiRequest) -> Reply:
    """Suspends tenants past due beyond the grace period (idempotent; safe on a schedule)."""
    require_admin(request)
    from shared.tenancy import stripe_events

    return Reply({"suspended": stripe_events.enforce_payment_grace(request.deps)})


@routes.route("/purge", methods=["POST"], auth="admin")
def purge(request: ApiRequest) -> Reply:
    """Deletes datasets of offboarded tenants whose retention has passed (idempotent)."""
    require_admin(request)
    return Reply({"datasets_deleted_for": lifecycle.purge_expired_datasets(request.deps)})


@functions_framework.http
def admin(request: flask.Request) -> flask.Response:
    """Admin API: bootstrap, tenant status and lifecycle."""
    return serve(request, routes, "admin")

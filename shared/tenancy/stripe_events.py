"""Stripe webhook events: signature check, dedupe ledger, and their effect on tenants."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import stripe
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from shared.deps import Deps
from shared.http import parse_json_bytes
from shared.platform import audit
from shared.platform.errors import ApiError, bad_request, not_found, unavailable
from shared.platform.secrets import STRIPE_WEBHOOK_SECRET, require
from shared.platform.warehouse import Typed, Warehouse
from shared.tenancy import api_keys, lifecycle, onboarding, profiles
from shared.tenancy.plans import plan_for_lookup_key
from shared.vault.crypto import DecryptionError, purpose_aad

log = logging.getLogger(__name__)


# A delivery being processed holds the event this long; a duplicate arriving
# meanwhile is told to retry, and a crashed attempt is retaken after it.
PROCESSING_LEASE = dt.timedelta(seconds=120)
# A webhook-provisioned tenant's key waits this long for its single reveal.
REVEAL_WINDOW = dt.timedelta(days=7)


class PermanentEventError(Exception):
    """The event can never be applied (e.g. unusable metadata); redelivery won't help."""


class EventShapeError(PermanentEventError):
    """A signed event whose fields have the wrong types: permanent, answered 400."""


class RetryLater(Exception):
    """The event can't be applied yet (e.g. its tenant isn't provisioned yet)."""


class IgnoredEvent(Exception):
    """A valid event that must not change anything (e.g. it names someone else's tenant)."""

    def __init__(self, reason: str, tenant_id: str | None = None) -> None:
        super().__init__(reason)
        self.tenant_id = tenant_id


# The ledger's last_error of a shape rejection starts with this, so a duplicate
# delivery gets the same 400 as the first.
_SHAPE_PREFIX = "invalid_event: "


def _invalid_signature(detail: str = "Stripe signature is invalid or too old") -> ApiError:
    return bad_request("invalid_signature", detail)


def _signature_timestamp(header: str) -> int:
    """The header's timestamp, read the way the stripe library reads it (the first t=)."""
    try:
        items = [item.split("=", 2) for item in header.split(",")]
        return int(next(item[1] for item in items if item[0] == "t" and len(item) > 1))
    except (StopIteration, ValueError):
        raise _invalid_signature() from None


def verify(payload: bytes, signature: str | None, deps: Deps) -> dict[str, Any]:
    """The event, if the Stripe-Signature header signs this exact raw body recently enough.

    Nothing before the signature check can fail with a 5xx: an unauthenticated
    request is a 400 and touches nothing.
    """
    secret = require(deps.secrets, STRIPE_WEBHOOK_SECRET)
    if not signature:
        raise _invalid_signature("missing Stripe-Signature header")
    tolerance = deps.settings.stripe_signature_tolerance_seconds
    # The library refuses only timestamps too far in the past; a signature
    # dated in the future would stay replayable for as long as it likes.
    if _signature_timestamp(signature) > time.time() + tolerance:
        raise _invalid_signature("Stripe signature timestamp is in the future")
    try:
        # Stripe signs the UTF-8 text of its JSON; bytes that are not UTF-8 can
        # carry no valid signature, so they are refused as one (not a decoder crash).
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid_signature() from None
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError:
        raise _invalid_signature() from None
    event = parse_json_bytes(payload)
    if not isinstance(event, dict):
        raise bad_request("invalid_event", "the event is not a JSON object")
    if not isinstance(event.get("id"), str) or not 0 < len(event["id"]) <= 255:
        # Without a usable id there is nothing to key a ledger row on.
        raise bad_request("invalid_event", "id: the event id must be a string")
    return event


# ------------------------------------------------------------ event shapes
#
# Only the fields the handlers read, with their types; anything else Stripe
# sends is allowed and ignored. A wrong type is a permanent rejection.

_Timestamp = Annotated[StrictInt, Field(ge=0, le=253_402_300_799)]  # up to year 9999
_Metadata = dict[StrictStr, StrictStr]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _Ref(_Shape):
    """An expanded object: Stripe sends either its id or the object with an id."""

    id: StrictStr


_Id = StrictStr | _Ref


def _ref(value: _Id | None) -> str | None:
    return value.id if isinstance(value, _Ref) else value


class _Envelope(_Shape):
    id: StrictStr
    type: StrictStr
    created: _Timestamp
    data: _EventData


class _EventData(_Shape):
    object: dict[StrictStr, Any]


class _Price(_Shape):
    lookup_key: StrictStr | None = None


class _LineItem(_Shape):
    price: _Price | None = None
    current_period_end: _Timestamp | None = None


class _LineItems(_Shape):
    data: list[_LineItem] = []


class _CustomerDetails(_Shape):
    name: StrictStr | None = None
    email: StrictStr | None = None


class CheckoutSession(_Shape):
    id: StrictStr
    client_reference_id: StrictStr | None = None
    metadata: _Metadata | None = None
    customer: _Id | None = None
    subscription: _Id | None = None
    payment_status: StrictStr | None = None
    customer_details: _CustomerDetails | None = None
    line_items: _LineItems | None = None


class Subscription(_Shape):
    id: StrictStr
    customer: _Id | None = None
    status: StrictStr | None = None
    metadata: _Metadata | None = None
    items: _LineItems | None = None
    current_period_end: _Timestamp | None = None
    trial_end: _Timestamp | None = None


class _SubscriptionDetails(_Shape):
    subscription: _Id | None = None


class _InvoiceParent(_Shape):
    subscription_details: _SubscriptionDetails | None = None


class Invoice(_Shape):
    id: StrictStr | None = None
    customer: _Id | None = None
    subscription: _Id | None = None
    parent: _InvoiceParent | None = None


_Envelope.model_rebuild()


def _shape_error(exc: ValidationError, where: str) -> EventShapeError:
    first = exc.errors(include_input=False, include_url=False)[0]
    location = ".".join(str(part) for part in (where, *first["loc"]) if part != "")
    return EventShapeError(f"{location}: {first['msg']}")


def _shaped[S: BaseModel](model: type[S], event: dict[str, Any]) -> S:
    """The event's data.object as `model`; a wrong type anywhere is permanent."""
    try:
        envelope = _Envelope.model_validate(event)
    except ValidationError as exc:
        raise _shape_error(exc, "") from None
    try:
        return model.model_validate(envelope.data.object)
    except ValidationError as exc:
        raise _shape_error(exc, "data.object") from None


# ------------------------------------------------------------------ ledger


def _ledger(warehouse: Warehouse) -> str:
    return warehouse.central("tenant_webhook_events")


def _event_in_progress() -> ApiError:
    return ApiError(
        409,
        "event_in_progress",
        "this event is being processed; retry later",
        headers={"Retry-After": "10"},
    )


def _claim(deps: Deps, event: dict[str, Any]) -> dict[str, Any] | None:
    """Takes the event for processing; None if it is already done (a duplicate delivery)."""
    warehouse = deps.warehouse
    now = deps.clock()
    # Read leniently: a malformed event is still ledgered (and then rejected).
    created = Typed("TIMESTAMP", _created_or_none(event))
    event_type = event.get("type") if isinstance(event.get("type"), str) else "(invalid)"
    warehouse.execute(
        f"MERGE {_ledger(warehouse)} AS e USING (SELECT @id AS event_id) AS n "
        "ON e.event_id = n.event_id WHEN NOT MATCHED THEN INSERT "
        "(event_id, event_type, status, stripe_created, attempts, claimed_at, received_at) "
        "VALUES (@id, @type, 'NEW', @created, 0, NULL, @now)",
        {"id": event["id"], "type": str(event_type)[:255], "created": created, "now": now},
        component="stripe_webhook",
    )
    # Two concurrent INSERT-only MERGEs may both insert on BigQuery. Twin rows
    # move in lockstep (every write is by event_id), so the earliest speaks for both.
    row = warehouse.query(
        f"SELECT status, attempts, claimed_at, last_error FROM {_ledger(warehouse)} "
        "WHERE event_id = @id ORDER BY received_at LIMIT 1",
        {"id": event["id"]},
        component="stripe_webhook",
    )[0]
    if row["status"] in ("PROCESSED", "IGNORED", "REJECTED"):
        return row
    if (
        row["status"] == "PROCESSING"
        and row["claimed_at"]
        and now - row["claimed_at"] < PROCESSING_LEASE
    ):
        raise _event_in_progress()
    # Conditional on what we read: of two concurrent deliveries only one wins.
    won = warehouse.execute(
        f"UPDATE {_ledger(warehouse)} SET status = 'PROCESSING', attempts = attempts + 1, "
        "claimed_at = @now WHERE event_id = @id AND status = @status AND attempts = @attempts",
        {"now": now, "id": event["id"], "status": row["status"], "attempts": row["attempts"]},
        component="stripe_webhook",
    )
    if won < 1:
        raise _event_in_progress()
    return None


def _finish(
    deps: Deps,
    event_id: str,
    status: str,
    *,
    tenant_id: str | None = None,
    subscription_id: str | None = None,
    error: str | None = None,
) -> None:
    deps.warehouse.execute(
        f"UPDATE {_ledger(deps.warehouse)} SET status = @status, processed_at = @now, "
        "tenant_id = IFNULL(@tenant, tenant_id), subscription_id = IFNULL(@sub, subscription_id), "
        "last_error = @error WHERE event_id = @id AND status = 'PROCESSING'",
        {
            "status": status,
            "now": deps.clock(),
            "tenant": Typed("STRING", tenant_id),
            "sub": Typed("STRING", subscription_id),
            "error": Typed("STRING", error),
            "id": event_id,
        },
        component="stripe_webhook",
    )


@dataclass
class Outcome:
    status: str  # PROCESSED, IGNORED
    tenant_id: str | None = None
    subscription_id: str | None = None
    detail: str = ""


def handle(deps: Deps, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Applies one verified event at most once; failures are left for Stripe to redeliver."""
    done = _claim(deps, event)
    if done is not None:
        if done["status"] == "REJECTED":
            raise _rejection(str(done["last_error"] or ""), event["id"])
        return 200, {"received": True, "duplicate": True, "status": done["status"]}
    try:
        envelope = _envelope(event)
        handler = HANDLERS.get(envelope.type)
        outcome = (
            handler(deps, event) if handler else Outcome("IGNORED", detail="event type not handled")
        )
    except IgnoredEvent as exc:
        # Recorded with its reason for an operator; 2xx so Stripe doesn't retry.
        outcome = Outcome("IGNORED", exc.tenant_id, None, str(exc))
        log.warning("stripe event ignored", extra={"event_id": event["id"], "reason": str(exc)})
    except EventShapeError as exc:
        _finish(deps, event["id"], "REJECTED", error=_SHAPE_PREFIX + str(exc))
        log.error("stripe event malformed", extra={"event_id": event["id"], "reason": str(exc)})
        raise _rejection(_SHAPE_PREFIX + str(exc), event["id"]) from None
    except PermanentEventError as exc:
        _finish(deps, event["id"], "REJECTED", error=str(exc))
        log.error("stripe event rejected", extra={"event_id": event["id"], "reason": str(exc)})
        raise _rejection(str(exc), event["id"]) from None
    except RetryLater as exc:
        _finish(deps, event["id"], "FAILED", error=str(exc))
        raise unavailable(f"event not applied yet: {exc}", retry_after_seconds=60) from None
    except Exception:
        # Not marked done: Stripe's redelivery processes it fully.
        _finish(deps, event["id"], "FAILED", error="internal_error")
        raise
    _finish(
        deps,
        event["id"],
        outcome.status,
        tenant_id=outcome.tenant_id,
        subscription_id=outcome.subscription_id,
        error=outcome.detail or None,
    )
    return 200, {"received": True, "status": outcome.status, "detail": outcome.detail}


def _rejection(reason: str, event_id: str) -> ApiError:
    """400 for a malformed event, 422 for a well-formed one that can never apply."""
    if reason.startswith(_SHAPE_PREFIX):
        return bad_request("invalid_event", reason.removeprefix(_SHAPE_PREFIX), event_id=event_id)
    return ApiError(422, "event_rejected", reason, event_id=event_id)


# ---------------------------------------------------------------- helpers


def _envelope(event: dict[str, Any]) -> _Envelope:
    try:
        return _Envelope.model_validate(event)
    except ValidationError as exc:
        raise _shape_error(exc, "") from None


def _created(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromtimestamp(_envelope(event).created, dt.UTC)


def _created_or_none(event: dict[str, Any]) -> dt.datetime | None:
    try:
        return _created(event)
    except EventShapeError:
        return None


def _timestamp(value: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.UTC) if value is not None else None


def _subscription_lookup_key(subscription: Subscription) -> str | None:
    for item in subscription.items.data if subscription.items else []:
        if item.price and item.price.lookup_key:
            return item.price.lookup_key
    return None


def _period_end(subscription: Subscription) -> dt.datetime | None:
    # Newer API versions moved current_period_end onto the subscription items.
    end = _timestamp(subscription.current_period_end)
    if end is None:
        for item in subscription.items.data if subscription.items else []:
            end = _timestamp(item.current_period_end) or end
    return end


def _tenant_for_subscription(
    deps: Deps, subscription_id: str | None, customer_id: str | None, metadata: dict[str, str]
) -> str:
    """The tenant whose recorded subscription (and customer) this event is about.

    Metadata naming a tenant is never enough: anyone can create a Stripe
    subscription with any metadata. An event for another subscription or
    customer of an existing tenant is ignored and left for an operator.
    """
    warehouse = deps.warehouse
    table = warehouse.central("tenant_subscriptions")
    named = metadata.get("tenant_id")
    rows = warehouse.query(
        f"SELECT tenant_id, stripe_subscription_id, stripe_customer_id FROM {table} "
        "WHERE (@sub != '' AND stripe_subscription_id = @sub) "
        "OR (@customer != '' AND stripe_customer_id = @customer) OR tenant_id = @named "
        "ORDER BY created_at",
        {"sub": subscription_id or "", "customer": customer_id or "", "named": named or ""},
        component="stripe_webhook",
    )
    for row in rows:
        if subscription_id and row["stripe_subscription_id"] == subscription_id:
            recorded_customer = row["stripe_customer_id"]
            if customer_id and recorded_customer and recorded_customer != customer_id:
                raise IgnoredEvent(
                    f"subscription {subscription_id} is recorded for another customer; "
                    "left for an operator",
                    str(row["tenant_id"]),
                )
            return str(row["tenant_id"])
    if rows:
        tenant_id = str(rows[0]["tenant_id"])
        raise IgnoredEvent(
            f"subscription {subscription_id or '(none)'} is not the recorded subscription of "
            f"existing tenant {tenant_id}; left for an operator",
            tenant_id,
        )
    if named and profiles.get_profile(warehouse, named):
        # A tenant without a subscription row (it never went through Stripe).
        raise IgnoredEvent(
            f"tenant {named} has no Stripe subscription on record; left for an operator", named
        )
    # Stripe does not order deliveries: the checkout that provisions this
    # tenant may still be on its way. Fail now; the redelivery applies it.
    raise RetryLater("no tenant for this subscription yet")


def _record_event_time(deps: Deps, tenant_id: str, created: dt.datetime, **fields: Any) -> int:
    """Moves last_event_created forward (never back); returns 0 if a newer event got there first."""
    assignments = "".join(f", {name} = @{name}" for name in fields)
    return deps.warehouse.execute(
        f"UPDATE {deps.warehouse.central('tenant_subscriptions')} "
        f"SET last_event_created = @created, updated_at = @now{assignments} "
        "WHERE tenant_id = @t AND (last_event_created IS NULL OR last_event_created <= @created)",
        {"created": created, "now": deps.clock(), "t": tenant_id, **fields},
        component="stripe_webhook",
        tenant_id=tenant_id,
    )


# --------------------------------------------------------------- handlers


def on_checkout_completed(deps: Deps, event: dict[str, Any]) -> Outcome:
    session = _shaped(CheckoutSession, event)
    session_id = session.id
    metadata = session.metadata or {}
    tenant_id = metadata.get("tenant_id") or session.client_reference_id
    lookup_key = metadata.get("price_lookup_key") or metadata.get("lookup_key")
    line_items = session.line_items.data if session.line_items else []
    if not lookup_key and line_items and line_items[0].price:
        lookup_key = line_items[0].price.lookup_key
    plan = plan_for_lookup_key(lookup_key)
    if not session_id or not tenant_id:
        raise PermanentEventError("checkout session carries no tenant id")
    if plan is None:
        raise PermanentEventError(f"price lookup key {lookup_key!r} is not a Convergence plan")
    details = session.customer_details or _CustomerDetails()
    try:
        request = onboarding.OnboardRequest(
            tenant_id=tenant_id,
            company_name=metadata.get("company_name") or details.name or tenant_id,
            admin_email=metadata.get("admin_email") or details.email or "",
            subscription_plan=plan.name,
        )
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        raise PermanentEventError(f"{first['loc'][0]}: {first['msg']}") from None
    paid = session.payment_status == "paid"
    refs = onboarding.StripeRefs(
        customer_id=_ref(session.customer),
        subscription_id=_ref(session.subscription),
        price_lookup_key=lookup_key,
        subscription_status="active" if paid else "trialing",
        event_created=_created(event),
    )
    try:
        # Onboarding itself refuses any checkout for an existing tenant except a
        # replay of the session that created it (checked again after its rows
        # are written, so two sessions racing for a new id can't both win).
        result = onboarding.onboard(
            deps, request, idempotency_key=session_id, source="stripe", refs=refs, actor="stripe"
        )
    except ApiError as exc:
        if exc.code == onboarding.OTHER_CHECKOUT:
            raise IgnoredEvent(
                f"checkout {session_id} for existing tenant {request.tenant_id}, which another "
                "request created; nothing changed, left for an operator",
                request.tenant_id,
            ) from None
        if exc.status == 409 and exc.code == "conflict":
            raise PermanentEventError(exc.detail) from None
        if exc.status in (409, 503):
            raise RetryLater(exc.detail) from None
        raise PermanentEventError(exc.detail) from None
    _keep_for_reveal(deps, request.tenant_id, session_id, result.api_key)
    return Outcome("PROCESSED", request.tenant_id, refs.subscription_id, "tenant provisioned")


def _keep_for_reveal(deps: Deps, tenant_id: str, session_id: str, api_key: str | None) -> None:
    """Encrypts the new key for one admin-authenticated reveal; the webhook can't show it."""
    warehouse = deps.warehouse
    table = warehouse.central("tenant_key_reveals")
    existing = warehouse.query(
        f"SELECT checkout_session_id FROM {table} WHERE checkout_session_id = @s",
        {"s": session_id},
        component="stripe_webhook",
    )
    if existing:
        return
    if api_key is None:
        # A retry after the key was issued but before it was stored: nobody has
        # seen that key, so replace it with one we can keep for the reveal.
        # Only ever reached for the session that created the tenant: onboard()
        # refuses every other checkout session (OTHER_CHECKOUT) before this.
        api_key = lifecycle.rotate_key(deps, tenant_id, dt.timedelta(0), actor="stripe")["api_key"]
    if api_key is None:
        raise RetryLater("the new key could not be kept for the reveal; retry")
    ciphertext = deps.crypto.encrypt(
        tenant_id, api_key.encode(), purpose_aad("key_reveal", tenant_id, session_id)
    )
    now = deps.clock()
    warehouse.execute(
        f"MERGE {table} AS r USING (SELECT @s AS checkout_session_id) AS n "
        "ON r.checkout_session_id = n.checkout_session_id WHEN NOT MATCHED THEN INSERT "
        "(checkout_session_id, tenant_id, ciphertext, created_at, expires_at) "
        "VALUES (@s, @t, FROM_BASE64(@c), @now, @expires)",
        {
            "s": session_id,
            "t": tenant_id,
            "c": base64.b64encode(ciphertext).decode(),
            "now": now,
            "expires": now + REVEAL_WINDOW,
        },
        component="stripe_webhook",
        tenant_id=tenant_id,
    )


def on_subscription_updated(deps: Deps, event: dict[str, Any]) -> Outcome:
    subscription = _shaped(Subscription, event)
    sub_id = subscription.id
    tenant_id = _tenant_for_subscription(
        deps, sub_id, _ref(subscription.customer), subscription.metadata or {}
    )
    created = _created(event)
    status = subscription.status or "unknown"
    plan = plan_for_lookup_key(_subscription_lookup_key(subscription))
    # One conditional UPDATE per event: the guard and the write can't be split
    # by a concurrent newer delivery.
    if plan is not None:
        applied = lifecycle.apply_stripe_plan(
            deps,
            tenant_id,
            plan,
            subscription_status=status,
            event_created=created,
            current_period_end=_period_end(subscription),
        )
    else:
        applied = _record_event_time(deps, tenant_id, created, status=status) > 0
    if not applied:
        return Outcome("IGNORED", tenant_id, sub_id, "older than the last applied event")
    tenant_status = profiles.stripe_status_to_tenant_status(status)
    if tenant_status:
        _set_status_if_newest(
            deps,
            tenant_id,
            tenant_status,
            created,
            reason=f"payment: subscription {status}",
            allowed_from=_moves_to(tenant_status),
        )
    return Outcome("PROCESSED", tenant_id, sub_id, f"subscription {status}")


def _moves_to(status: str) -> tuple[str, ...]:
    # Stripe never resurrects a deleted tenant, and an admin suspension (not
    # about payment) is not lifted by a subscription update.
    if status in ("ACTIVE", "TRIALING"):
        return ("TRIALING", "ACTIVE", "PAST_DUE", "SUSPENDED")
    return ("TRIALING", "ACTIVE", "PAST_DUE", "SUSPENDED", "CANCELLED")


def on_subscription_deleted(deps: Deps, event: dict[str, Any]) -> Outcome:
    subscription = _shaped(Subscription, event)
    sub_id = subscription.id
    tenant_id = _tenant_for_subscription(
        deps, sub_id, _ref(subscription.customer), subscription.metadata or {}
    )
    # A deleted subscription is final in Stripe: applied whatever its time.
    _record_event_time(deps, tenant_id, _created(event), status="canceled")
    lifecycle.set_status(
        deps,
        tenant_id,
        "CANCELLED",
        reason="payment: subscription deleted",
        actor="stripe",
        allowed_from=("TRIALING", "ACTIVE", "PAST_DUE", "SUSPENDED"),
    )
    return Outcome("PROCESSED", tenant_id, sub_id, "tenant cancelled")


def _invoice_tenant(deps: Deps, event: dict[str, Any]) -> tuple[str, str | None, dt.datetime]:
    """The invoice's tenant, subscription and event time, once the event claimed the clock.

    An invoice event older than the last applied Stripe event of its tenant is
    ignored: the clock moves forward in one conditional UPDATE, and the status
    write that follows is conditional on the clock still holding this event.
    """
    invoice = _shaped(Invoice, event)
    parent = invoice.parent.subscription_details if invoice.parent else None
    sub_id = _ref(invoice.subscription) or (_ref(parent.subscription) if parent else None)
    tenant_id = _tenant_for_subscription(deps, sub_id, _ref(invoice.customer), {})
    created = _created(event)
    if _record_event_time(deps, tenant_id, created) == 0:
        raise IgnoredEvent("older than the last applied event", tenant_id)
    return tenant_id, sub_id, created


def on_payment_failed(deps: Deps, event: dict[str, Any]) -> Outcome:
    tenant_id, sub_id, created = _invoice_tenant(deps, event)
    changed = _set_status_if_newest(
        deps,
        tenant_id,
        "PAST_DUE",
        created,
        reason="payment: invoice payment failed",
        allowed_from=("TRIALING", "ACTIVE"),
        past_due_since=created,
    )
    suspended = enforce_payment_grace(deps)
    detail = "suspended after grace period" if tenant_id in suspended else "past due"
    return Outcome("PROCESSED", tenant_id, sub_id, detail if changed or suspended else "no change")


def on_payment_succeeded(deps: Deps, event: dict[str, Any]) -> Outcome:
    tenant_id, sub_id, created = _invoice_tenant(deps, event)
    profile = profiles.require_profile(deps.warehouse, tenant_id)
    reason = str(profile.get("status_reason") or "")
    if profile["status"] == "PAST_DUE" or (
        profile["status"] == "SUSPENDED" and reason.startswith("payment")
    ):
        _set_status_if_newest(
            deps,
            tenant_id,
            "ACTIVE",
            created,
            reason="payment: invoice paid",
            allowed_from=("PAST_DUE", "SUSPENDED"),
        )
        return Outcome("PROCESSED", tenant_id, sub_id, "reactivated")
    return Outcome("PROCESSED", tenant_id, sub_id, "no status change")


def on_trial_will_end(deps: Deps, event: dict[str, Any]) -> Outcome:
    subscription = _shaped(Subscription, event)
    sub_id = subscription.id
    tenant_id = _tenant_for_subscription(
        deps, sub_id, _ref(subscription.customer), subscription.metadata or {}
    )
    trial_end = _timestamp(subscription.trial_end)
    if trial_end is None:
        raise PermanentEventError("subscription has no trial_end")
    deps.warehouse.execute(
        f"UPDATE {deps.warehouse.central('tenant_subscriptions')} SET trial_ends_at = @end, "
        "updated_at = @now WHERE tenant_id = @t",
        {"end": trial_end, "now": deps.clock(), "t": tenant_id},
        component="stripe_webhook",
        tenant_id=tenant_id,
    )
    audit.record(
        deps.warehouse,
        actor="stripe",
        action="subscription.trial_will_end",
        now=deps.clock(),
        tenant_id=tenant_id,
        detail={"trial_end": trial_end},
    )
    return Outcome("PROCESSED", tenant_id, sub_id, "trial end recorded")


def _set_status_if_newest(
    deps: Deps,
    tenant_id: str,
    status: str,
    created: dt.datetime,
    *,
    reason: str,
    allowed_from: tuple[str, ...],
    past_due_since: dt.datetime | None = None,
) -> bool:
    """lifecycle.set_status, guarded in its one UPDATE by the tenant's Stripe event clock.

    The clock was moved to `created` by this event; if a newer event moved it
    on since, that event's status stands and this write changes nothing.
    """
    return lifecycle.set_status(
        deps,
        tenant_id,
        status,
        reason=reason,
        actor="stripe",
        allowed_from=allowed_from,
        past_due_since=past_due_since,
        stripe_event_created=created,
    )


HANDLERS: dict[str, Callable[[Deps, dict[str, Any]], Outcome]] = {
    "checkout.session.completed": on_checkout_completed,
    "customer.subscription.updated": on_subscription_updated,
    "customer.subscription.deleted": on_subscription_deleted,
    "invoice.payment_failed": on_payment_failed,
    "invoice.payment_succeeded": on_payment_succeeded,
    "customer.subscription.trial_will_end": on_trial_will_end,
}


def enforce_payment_grace(deps: Deps) -> list[str]:
    """Suspends tenants still past due after the grace period; returns their ids."""
    warehouse = deps.warehouse
    cutoff = deps.clock() - dt.timedelta(days=deps.settings.payment_grace_days)
    due = warehouse.query(
        f"SELECT tenant_id FROM {warehouse.central('tenant_profiles')} "
        "WHERE status = 'PAST_DUE' AND past_due_since <= @cutoff",
        {"cutoff": cutoff},
        component="billing",
    )
    suspended = []
    for row in due:
        if lifecycle.set_status(
            deps,
            str(row["tenant_id"]),
            "SUSPENDED",
            reason="payment: grace period over",
            actor="stripe",
            allowed_from=("PAST_DUE",),
        ):
            suspended.append(str(row["tenant_id"]))
    return suspended


def reveal_key(deps: Deps, session_id: str) -> dict[str, Any]:
    """The API key of a webhook-provisioned tenant, once; the stored copy is destroyed."""
    warehouse = deps.warehouse
    table = warehouse.central("tenant_key_reveals")
    rows = warehouse.query(
        f"SELECT tenant_id, ciphertext, expires_at, revealed_at FROM {table} "
        "WHERE checkout_session_id = @s",
        {"s": session_id},
        component="key_reveal",
    )
    if not rows:
        raise not_found("no key is waiting for this checkout session")
    row = rows[0]
    if row["ciphertext"] is None:
        raise ApiError(410, "already_revealed", "this key was already revealed or destroyed")
    now = deps.clock()
    tenant_id = str(row["tenant_id"])
    # Destroy first, conditionally: of two concurrent reveals exactly one gets the key.
    won = warehouse.execute(
        f"UPDATE {table} SET ciphertext = NULL, revealed_at = @now "
        "WHERE checkout_session_id = @s AND ciphertext IS NOT NULL",
        {"now": now, "s": session_id},
        component="key_reveal",
        tenant_id=tenant_id,
    )
    if won != 1:
        raise ApiError(410, "already_revealed", "this key was already revealed or destroyed")
    if row["expires_at"] and row["expires_at"] < now:
        raise ApiError(410, "reveal_expired", "the reveal window has passed; rotate the key")
    try:
        api_key = deps.crypto.decrypt(
            tenant_id, bytes(row["ciphertext"]), purpose_aad("key_reveal", tenant_id, session_id)
        ).decode()
    except DecryptionError:
        raise ApiError(
            410, "already_revealed", "the stored key can no longer be decrypted"
        ) from None
    audit.record(
        warehouse,
        actor="admin",
        action="api_key.revealed",
        now=now,
        tenant_id=tenant_id,
        detail={"checkout_session_id": session_id},
    )
    return {
        "tenant_id": tenant_id,
        "api_key": api_key,
        "key_prefix": api_keys.key_prefix(api_key),
        "checkout_session_id": session_id,
    }

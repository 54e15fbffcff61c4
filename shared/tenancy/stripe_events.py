"""Stripe webhook events: signature check, dedupe ledger, and their effect on tenants."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe
from pydantic import ValidationError

from shared.deps import Deps
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


class RetryLater(Exception):
    """The event can't be applied yet (e.g. its tenant isn't provisioned yet)."""


def verify(payload: bytes, signature: str | None, deps: Deps) -> dict[str, Any]:
    """The event, if the Stripe-Signature header signs this exact raw body recently enough."""
    secret = require(deps.secrets, STRIPE_WEBHOOK_SECRET)
    if not signature:
        raise bad_request("invalid_signature", "missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, tolerance=deps.settings.stripe_signature_tolerance_seconds
        )
    except stripe.SignatureVerificationError:
        raise bad_request("invalid_signature", "Stripe signature is invalid or too old") from None
    try:
        event = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("invalid_json", "signed body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise bad_request("invalid_event", "event has no id")
    if not isinstance(event.get("type"), str) or not isinstance(event.get("data"), dict):
        raise bad_request("invalid_event", "event has no type or data")
    return event


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
    created = _created(event)
    warehouse.execute(
        f"MERGE {_ledger(warehouse)} AS e USING (SELECT @id AS event_id) AS n "
        "ON e.event_id = n.event_id WHEN NOT MATCHED THEN INSERT "
        "(event_id, event_type, status, stripe_created, attempts, claimed_at, received_at) "
        "VALUES (@id, @type, 'NEW', @created, 0, NULL, @now)",
        {"id": event["id"], "type": event["type"], "created": created, "now": now},
        component="stripe_webhook",
    )
    [row] = warehouse.query(
        f"SELECT status, attempts, claimed_at, last_error FROM {_ledger(warehouse)} "
        "WHERE event_id = @id",
        {"id": event["id"]},
        component="stripe_webhook",
    )
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
    if won != 1:
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
            raise ApiError(422, "event_rejected", str(done["last_error"]), event_id=event["id"])
        return 200, {"received": True, "duplicate": True, "status": done["status"]}
    handler = HANDLERS.get(event["type"])
    try:
        outcome = (
            handler(deps, event) if handler else Outcome("IGNORED", detail="event type not handled")
        )
    except PermanentEventError as exc:
        _finish(deps, event["id"], "REJECTED", error=str(exc))
        log.error("stripe event rejected", extra={"event_id": event["id"], "reason": str(exc)})
        raise ApiError(422, "event_rejected", str(exc), event_id=event["id"]) from None
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


# ---------------------------------------------------------------- helpers


def _object(event: dict[str, Any]) -> dict[str, Any]:
    obj = event["data"].get("object")
    if not isinstance(obj, dict):
        raise PermanentEventError("event data has no object")
    return obj


def _created(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(event.get("created") or 0), dt.UTC)


def _timestamp(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value), dt.UTC) if isinstance(value, int) else None


def _id(value: Any) -> str | None:
    """Stripe sends either an id string or an expanded object with an id."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _subscription_lookup_key(subscription: dict[str, Any]) -> str | None:
    items = (subscription.get("items") or {}).get("data") or []
    for item in items:
        price = item.get("price") or {}
        if price.get("lookup_key"):
            return str(price["lookup_key"])
    return None


def _period_end(subscription: dict[str, Any]) -> dt.datetime | None:
    # Newer API versions moved current_period_end onto the subscription items.
    end = _timestamp(subscription.get("current_period_end"))
    if end is None:
        for item in (subscription.get("items") or {}).get("data") or []:
            end = _timestamp(item.get("current_period_end")) or end
    return end


def _tenant_for_subscription(
    deps: Deps, subscription_id: str | None, customer_id: str | None, metadata: dict[str, Any]
) -> str:
    warehouse = deps.warehouse
    rows = warehouse.query(
        f"SELECT tenant_id FROM {warehouse.central('tenant_subscriptions')} "
        "WHERE stripe_subscription_id = @sub "
        "OR (@customer != '' AND stripe_customer_id = @customer) "
        "ORDER BY created_at LIMIT 1",
        {"sub": subscription_id or "", "customer": customer_id or ""},
        component="stripe_webhook",
    )
    if rows:
        return str(rows[0]["tenant_id"])
    tenant_id = metadata.get("tenant_id")
    if isinstance(tenant_id, str) and profiles.get_profile(warehouse, tenant_id):
        return tenant_id
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
    session = _object(event)
    session_id = _id(session)
    metadata = session.get("metadata") or {}
    tenant_id = metadata.get("tenant_id") or session.get("client_reference_id")
    lookup_key = metadata.get("price_lookup_key") or metadata.get("lookup_key")
    line_items = (session.get("line_items") or {}).get("data") or []
    if not lookup_key and line_items:
        lookup_key = (line_items[0].get("price") or {}).get("lookup_key")
    plan = plan_for_lookup_key(lookup_key)
    if not session_id or not tenant_id:
        raise PermanentEventError("checkout session carries no tenant id")
    if plan is None:
        raise PermanentEventError(f"price lookup key {lookup_key!r} is not a Convergence plan")
    details = session.get("customer_details") or {}
    try:
        request = onboarding.OnboardRequest(
            tenant_id=tenant_id,
            company_name=metadata.get("company_name") or details.get("name") or tenant_id,
            admin_email=metadata.get("admin_email") or details.get("email") or "",
            subscription_plan=plan.name,
        )
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        raise PermanentEventError(f"{first['loc'][0]}: {first['msg']}") from None
    paid = session.get("payment_status") == "paid"
    refs = onboarding.StripeRefs(
        customer_id=_id(session.get("customer")),
        subscription_id=_id(session.get("subscription")),
        price_lookup_key=lookup_key,
        subscription_status="active" if paid else "trialing",
        event_created=_created(event),
    )
    try:
        result = onboarding.onboard(
            deps, request, idempotency_key=session_id, source="stripe", refs=refs, actor="stripe"
        )
    except ApiError as exc:
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
        api_key = lifecycle.rotate_key(deps, tenant_id, dt.timedelta(0), actor="stripe")["api_key"]
    assert api_key is not None
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
    subscription = _object(event)
    sub_id = _id(subscription)
    tenant_id = _tenant_for_subscription(
        deps, sub_id, _id(subscription.get("customer")), subscription.get("metadata") or {}
    )
    created = _created(event)
    status = str(subscription.get("status") or "") or "unknown"
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
        lifecycle.set_status(
            deps,
            tenant_id,
            tenant_status,
            reason=f"payment: subscription {status}",
            actor="stripe",
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
    subscription = _object(event)
    sub_id = _id(subscription)
    tenant_id = _tenant_for_subscription(
        deps, sub_id, _id(subscription.get("customer")), subscription.get("metadata") or {}
    )
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


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _id(invoice.get("subscription")) or _id(parent.get("subscription"))


def on_payment_failed(deps: Deps, event: dict[str, Any]) -> Outcome:
    invoice = _object(event)
    sub_id = _invoice_subscription(invoice)
    tenant_id = _tenant_for_subscription(deps, sub_id, _id(invoice.get("customer")), {})
    lifecycle.set_status(
        deps,
        tenant_id,
        "PAST_DUE",
        reason="payment: invoice payment failed",
        actor="stripe",
        allowed_from=("TRIALING", "ACTIVE"),
        past_due_since=_created(event),
    )
    suspended = enforce_payment_grace(deps)
    detail = "suspended after grace period" if tenant_id in suspended else "past due"
    return Outcome("PROCESSED", tenant_id, sub_id, detail)


def on_payment_succeeded(deps: Deps, event: dict[str, Any]) -> Outcome:
    invoice = _object(event)
    sub_id = _invoice_subscription(invoice)
    tenant_id = _tenant_for_subscription(deps, sub_id, _id(invoice.get("customer")), {})
    profile = profiles.require_profile(deps.warehouse, tenant_id)
    reason = str(profile.get("status_reason") or "")
    if profile["status"] == "PAST_DUE" or (
        profile["status"] == "SUSPENDED" and reason.startswith("payment")
    ):
        lifecycle.set_status(
            deps,
            tenant_id,
            "ACTIVE",
            reason="payment: invoice paid",
            actor="stripe",
            allowed_from=("PAST_DUE", "SUSPENDED"),
        )
        return Outcome("PROCESSED", tenant_id, sub_id, "reactivated")
    return Outcome("PROCESSED", tenant_id, sub_id, "no status change")


def on_trial_will_end(deps: Deps, event: dict[str, Any]) -> Outcome:
    subscription = _object(event)
    sub_id = _id(subscription)
    tenant_id = _tenant_for_subscription(
        deps, sub_id, _id(subscription.get("customer")), subscription.get("metadata") or {}
    )
    trial_end = _timestamp(subscription.get("trial_end"))
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

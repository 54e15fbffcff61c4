"""The Stripe webhook against the emulator: signatures, dedupe, redelivery, lifecycle events."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
import stripe

from shared.deps import use_deps
from shared.platform.secrets import STRIPE_WEBHOOK_SECRET
from shared.tenancy import lifecycle
from shared.tenancy.plans import PLANS
from tests.conftest import TEST_SECRETS
from tests.integration.conftest import Platform, emulator_deps, new_tenant_id
from tests.integration.test_onboarding import FailingOnce, central_rows

PROFESSIONAL = "convergence_professional_monthly"
SCALE = "convergence_scale_monthly"
STARTER = "convergence_starter_monthly"


def make_event(type_: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "object": "event",
        "type": type_,
        "created": created or int(time.time()),
        "data": {"object": obj},
    }


def checkout(tenant_id: str, lookup_key: str = PROFESSIONAL, paid: bool = True) -> dict[str, Any]:
    return {
        "id": "cs_test_" + uuid.uuid4().hex,
        "object": "checkout.session",
        "client_reference_id": tenant_id,
        "customer": "cus_" + uuid.uuid4().hex[:14],
        "subscription": "sub_" + uuid.uuid4().hex[:14],
        "payment_status": "paid" if paid else "no_payment_required",
        "customer_details": {"email": "billing@example.com", "name": "Example Ltd"},
        "metadata": {"price_lookup_key": lookup_key},
    }


def subscription(
    session: dict[str, Any], status: str, lookup_key: str = PROFESSIONAL
) -> dict[str, Any]:
    return {
        "id": session["subscription"],
        "object": "subscription",
        "customer": session["customer"],
        "status": status,
        "trial_end": int(time.time()) + 3 * 86400,
        "items": {
            "data": [
                {
                    "price": {"lookup_key": lookup_key},
                    "current_period_end": int(time.time()) + 86400,
                }
            ]
        },
        "metadata": {},
    }


def invoice(session: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "in_" + uuid.uuid4().hex[:14],
        "object": "invoice",
        "customer": session["customer"],
        "parent": {"subscription_details": {"subscription": session["subscription"]}},
    }


def deliver(
    platform: Platform,
    event: dict[str, Any],
    *,
    secret: str = TEST_SECRETS[STRIPE_WEBHOOK_SECRET],
    timestamp: int | None = None,
    header: str | None = None,
) -> Any:
    payload = json.dumps(event)
    signature = (
        header
        if header is not None
        else stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    )
    headers = {"Stripe-Signature": signature} if signature else {}
    return platform.client("stripe_webhook").post(
        "/", data=payload, content_type="application/json", headers=headers
    )


def provisioned(platform: Platform, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    tenant_id = new_tenant_id()
    session = checkout(tenant_id, **kwargs)
    response = deliver(platform, make_event("checkout.session.completed", session))
    assert response.status_code == 200, response.get_json()
    return tenant_id, session


def reveal(platform: Platform, session: dict[str, Any]) -> Any:
    return platform.admin("POST", f"/key-reveals/{session['id']}")


def tenant_status(platform: Platform, tenant_id: str) -> dict[str, Any]:
    return dict(platform.admin("GET", f"/tenants/{tenant_id}").get_json())


def test_checkout_provisions_a_tenant_whose_key_is_revealed_once(platform: Platform) -> None:
    tenant_id = new_tenant_id()
    session = checkout(tenant_id)

    response = deliver(platform, make_event("checkout.session.completed", session))

    assert response.status_code == 200
    assert "api_key" not in response.get_data(as_text=True)
    status = tenant_status(platform, tenant_id)
    assert status["status"] == "ACTIVE"
    assert status["subscription"]["plan"] == "PROFESSIONAL"
    assert status["source"] == "stripe"
    first = reveal(platform, session)
    assert first.status_code == 200
    key = first.get_json()["api_key"]
    assert platform.tenant_call("quota", "GET", "/", key).status_code == 200
    second = reveal(platform, session)
    assert second.status_code == 410
    [row] = central_rows(platform.deps, "tenant_key_reveals", tenant_id)
    assert row["ciphertext"] is None
    assert row["revealed_at"] is not None


def test_a_checkout_without_payment_starts_a_trial(platform: Platform) -> None:
    tenant_id, _ = provisioned(platform, paid=False)

    assert tenant_status(platform, tenant_id)["status"] == "TRIALING"


def test_key_reveals_need_the_admin_key_and_a_known_session(platform: Platform) -> None:
    _, session = provisioned(platform)

    assert platform.client("admin").post(f"/key-reveals/{session['id']}").status_code == 401
    assert platform.admin("POST", "/key-reveals/cs_unknown").status_code == 404
    assert platform.admin("POST", "/key-reveals/not-a-session").status_code == 422


@pytest.mark.parametrize(
    "signing",
    [
        {"secret": "whsec_forged"},
        {"header": ""},
        {"header": "t=1,v1=deadbeef"},
        {"timestamp": int(time.time()) - 3600},
    ],
    ids=["forged", "missing", "garbage", "stale"],
)
def test_bad_signatures_are_400_and_write_nothing(
    platform: Platform, signing: dict[str, Any]
) -> None:
    tenant_id = new_tenant_id()
    event = make_event("checkout.session.completed", checkout(tenant_id))

    response = deliver(platform, event, **signing)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_signature"
    wh = platform.deps.warehouse
    assert (
        wh.query(
            f"SELECT event_id FROM {wh.central('tenant_webhook_events')} WHERE event_id = @e",
            {"e": event["id"]},
        )
        == []
    )
    assert central_rows(platform.deps, "tenant_profiles", tenant_id) == []


def test_a_tampered_body_fails_the_signature(platform: Platform) -> None:
    event = make_event("checkout.session.completed", checkout(new_tenant_id()))
    header = stripe.WebhookSignature.generate_signature_header(
        json.dumps(event), TEST_SECRETS[STRIPE_WEBHOOK_SECRET]
    )
    event["data"]["object"]["metadata"]["price_lookup_key"] = SCALE

    response = deliver(platform, event, header=header)

    assert response.status_code == 400


def test_a_replayed_event_is_acknowledged_and_changes_nothing(platform: Platform) -> None:
    tenant_id = new_tenant_id()
    event = make_event("checkout.session.completed", checkout(tenant_id))
    deliver(platform, event)

    again = deliver(platform, event)

    assert again.status_code == 200
    assert again.get_json()["duplicate"] is True
    assert len(central_rows(platform.deps, "tenant_api_keys", tenant_id)) == 1
    [ledger] = platform.deps.warehouse.query(
        f"SELECT attempts, status FROM {platform.deps.warehouse.central('tenant_webhook_events')} "
        "WHERE event_id = @e",
        {"e": event["id"]},
    )
    assert ledger == {"attempts": 1, "status": "PROCESSED"}


def fail_once_from_now_on(platform: Platform) -> None:
    """The functions now use a client whose next qualifying job fails once (FailingOnce)."""

    use_deps(emulator_deps(platform, FailingOnce))
    FailingOnce.failed = False


def test_an_event_that_fails_once_is_processed_fully_on_redelivery(platform: Platform) -> None:
    fail_once_from_now_on(platform)
    tenant_id = new_tenant_id()
    session = checkout(tenant_id)
    event = make_event("checkout.session.completed", session)

    first = deliver(platform, event)
    redelivered = deliver(platform, event)

    assert first.status_code == 503
    assert redelivered.status_code == 200, redelivered.get_json()
    assert redelivered.get_json()["status"] == "PROCESSED"
    assert tenant_status(platform, tenant_id)["status"] == "ACTIVE"
    key = reveal(platform, session).get_json()["api_key"]
    assert platform.tenant_call("quota", "GET", "/", key).status_code == 200
    active = [
        k
        for k in central_rows(platform.deps, "tenant_api_keys", tenant_id)
        if k["status"] == "ACTIVE"
    ]
    assert len(active) == 1


def test_a_subscription_event_before_its_checkout_is_applied_on_redelivery(
    platform: Platform,
) -> None:
    tenant_id = new_tenant_id()
    session = checkout(tenant_id)
    # An upgrade made just after checkout, delivered before the checkout event.
    early = make_event(
        "customer.subscription.updated",
        subscription(session, "active", SCALE),
        created=int(time.time()) + 5,
    )

    first = deliver(platform, early)
    deliver(platform, make_event("checkout.session.completed", session))
    redelivered = deliver(platform, early)

    assert first.status_code == 503
    assert first.headers["Retry-After"]
    assert redelivered.status_code == 200
    assert tenant_status(platform, tenant_id)["subscription"]["plan"] == "SCALE"


@pytest.mark.parametrize(
    ("stripe_status", "tenant_status_after"),
    [
        ("past_due", "PAST_DUE"),
        ("unpaid", "SUSPENDED"),
        ("canceled", "CANCELLED"),
        ("active", "ACTIVE"),
    ],
)
def test_subscription_status_changes_map_to_tenant_status(
    platform: Platform, stripe_status: str, tenant_status_after: str
) -> None:
    tenant_id, session = provisioned(platform, paid=False)

    response = deliver(
        platform, make_event("customer.subscription.updated", subscription(session, stripe_status))
    )

    assert response.status_code == 200
    assert tenant_status(platform, tenant_id)["status"] == tenant_status_after


def test_a_plan_change_applies_new_limits(platform: Platform) -> None:
    tenant_id, session = provisioned(platform)

    deliver(
        platform,
        make_event("customer.subscription.updated", subscription(session, "active", SCALE)),
    )

    status = tenant_status(platform, tenant_id)
    assert status["subscription"]["plan"] == "SCALE"
    assert status["limits"]["daily_runs"] == 100


def test_an_event_older_than_the_last_applied_one_is_ignored(platform: Platform) -> None:
    tenant_id, session = provisioned(platform)
    now = int(time.time())
    newer = make_event(
        "customer.subscription.updated", subscription(session, "active", SCALE), now + 60
    )
    older = make_event(
        "customer.subscription.updated", subscription(session, "past_due", STARTER), now + 30
    )

    deliver(platform, newer)
    response = deliver(platform, older)

    assert response.get_json()["status"] == "IGNORED"
    status = tenant_status(platform, tenant_id)
    assert status["subscription"]["plan"] == "SCALE"
    assert status["status"] == "ACTIVE"


def test_a_deleted_subscription_cancels_the_tenant(platform: Platform) -> None:
    tenant_id, session = provisioned(platform)
    key = reveal(platform, session).get_json()["api_key"]

    deliver(
        platform, make_event("customer.subscription.deleted", subscription(session, "canceled"))
    )

    assert tenant_status(platform, tenant_id)["status"] == "CANCELLED"
    assert platform.tenant_call("quota", "GET", "/", key).status_code == 403


def test_payment_failure_starts_a_grace_period_then_suspends_and_payment_reactivates(
    platform: Platform,
) -> None:
    tenant_id, session = provisioned(platform)

    deliver(platform, make_event("invoice.payment_failed", invoice(session)))
    past_due = tenant_status(platform, tenant_id)["status"]
    grace = dt.timedelta(days=platform.deps.settings.payment_grace_days + 1)
    platform.travel_to(platform.deps.clock() + grace)
    swept = platform.admin("POST", "/enforce-grace").get_json()
    suspended = tenant_status(platform, tenant_id)["status"]
    deliver(platform, make_event("invoice.payment_succeeded", invoice(session)))

    assert past_due == "PAST_DUE"
    assert tenant_id in swept["suspended"]
    assert suspended == "SUSPENDED"
    assert tenant_status(platform, tenant_id)["status"] == "ACTIVE"


def test_a_payment_does_not_lift_an_admin_suspension(platform: Platform) -> None:
    tenant_id, session = provisioned(platform)
    platform.admin("POST", f"/tenants/{tenant_id}/suspend", json={"reason": "abuse report"})

    deliver(platform, make_event("invoice.payment_succeeded", invoice(session)))

    assert tenant_status(platform, tenant_id)["status"] == "SUSPENDED"


def test_trial_will_end_records_the_trial_end(platform: Platform) -> None:
    tenant_id, session = provisioned(platform, paid=False)
    sub = subscription(session, "trialing")

    deliver(platform, make_event("customer.subscription.trial_will_end", sub))

    trial_end = tenant_status(platform, tenant_id)["subscription"]["trial_ends_at"]
    assert dt.datetime.fromisoformat(str(trial_end)).timestamp() == pytest.approx(sub["trial_end"])


def test_an_unknown_event_type_is_acknowledged_without_effect(platform: Platform) -> None:
    response = deliver(platform, make_event("customer.created", {"id": "cus_1"}))

    assert response.status_code == 200
    assert response.get_json()["status"] == "IGNORED"


def test_a_checkout_for_an_unknown_price_is_rejected_and_provisions_nothing(
    platform: Platform,
) -> None:
    tenant_id = new_tenant_id()
    event = make_event("checkout.session.completed", checkout(tenant_id, lookup_key="gold_plan"))

    first = deliver(platform, event)
    again = deliver(platform, event)

    assert first.status_code == 422
    assert "gold_plan" in first.get_json()["detail"]
    assert again.status_code == 422
    assert central_rows(platform.deps, "tenant_profiles", tenant_id) == []


def test_the_plan_update_itself_refuses_an_event_older_than_the_last_applied(
    platform: Platform,
) -> None:
    tenant_id, _ = provisioned(platform)
    now = platform.deps.clock()
    newer = lifecycle.apply_stripe_plan(
        platform.deps,
        tenant_id,
        PLANS["SCALE"],
        subscription_status="active",
        event_created=now + dt.timedelta(minutes=2),
        current_period_end=None,
    )

    older = lifecycle.apply_stripe_plan(
        platform.deps,
        tenant_id,
        PLANS["STARTER"],
        subscription_status="past_due",
        event_created=now + dt.timedelta(minutes=1),
        current_period_end=None,
    )

    assert (newer, older) == (True, False)
    [row] = central_rows(platform.deps, "tenant_subscriptions", tenant_id)
    assert (row["plan"], row["status"]) == ("SCALE", "active")
    assert row["last_event_created"] == now + dt.timedelta(minutes=2)


# ------------------------------------------------------------ hostile events (issue 9)


def ledger_row(platform: Platform, event_id: str) -> dict[str, Any]:
    wh = platform.deps.warehouse
    [row] = wh.query(
        f"SELECT status, last_error, tenant_id FROM {wh.central('tenant_webhook_events')} "
        "WHERE event_id = @e",
        {"e": event_id},
    )
    return dict(row)


def active_keys(platform: Platform, tenant_id: str) -> list[str]:
    return sorted(
        str(k["key_id"])
        for k in central_rows(platform.deps, "tenant_api_keys", tenant_id)
        if k["status"] == "ACTIVE"
    )


def test_a_new_checkout_naming_an_existing_tenant_never_touches_its_keys_plan_or_status(
    platform: Platform,
) -> None:
    tenant_id, original = provisioned(platform)
    key = reveal(platform, original).get_json()["api_key"]
    keys_before = active_keys(platform, tenant_id)
    # A stranger's checkout: same tenant id, company, email and plan (the same fingerprint).
    takeover = checkout(tenant_id)
    event = make_event("checkout.session.completed", takeover)
    bigger = make_event("checkout.session.completed", checkout(tenant_id, lookup_key=SCALE))

    response = deliver(platform, event)
    again = deliver(platform, event)
    upgrade = deliver(platform, bigger)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "IGNORED"
    assert again.status_code == 200
    assert (upgrade.status_code, upgrade.get_json()["status"]) == (200, "IGNORED")
    row = ledger_row(platform, event["id"])
    assert row["status"] == "IGNORED"
    assert "existing tenant" in row["last_error"] and "operator" in row["last_error"]
    assert active_keys(platform, tenant_id) == keys_before
    assert platform.tenant_call("quota", "GET", "/", key).status_code == 200
    assert reveal(platform, takeover).status_code == 404
    status = tenant_status(platform, tenant_id)
    assert (status["status"], status["subscription"]["plan"]) == ("ACTIVE", "PROFESSIONAL")
    # The same holds for a tenant onboarded by an admin, not through Stripe.
    admin_tenant = platform.onboarded()
    stranger = make_event("checkout.session.completed", checkout(admin_tenant["tenant_id"]))
    assert deliver(platform, stranger).get_json()["status"] == "IGNORED"
    assert platform.tenant_call("quota", "GET", "/", admin_tenant["api_key"]).status_code == 200


def test_a_subscription_event_for_another_subscription_never_changes_the_tenant(
    platform: Platform,
) -> None:
    tenant_id, session = provisioned(platform)
    foreign = {**checkout(tenant_id), "customer": "cus_stranger"}
    deleted = subscription(foreign, "canceled")
    deleted["metadata"] = {"tenant_id": tenant_id}
    same_customer = subscription({**session, "subscription": "sub_other"}, "past_due", SCALE)
    same_customer["metadata"] = {"tenant_id": tenant_id}

    responses = [
        deliver(platform, make_event("customer.subscription.deleted", deleted)),
        deliver(platform, make_event("customer.subscription.updated", same_customer)),
        deliver(platform, make_event("customer.subscription.updated", deleted)),
    ]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.get_json()["status"] for r in responses] == ["IGNORED"] * 3
    status = tenant_status(platform, tenant_id)
    assert (status["status"], status["subscription"]["plan"]) == ("ACTIVE", "PROFESSIONAL")


def test_an_invoice_failure_older_than_an_applied_payment_leaves_the_tenant_active(
    platform: Platform,
) -> None:
    tenant_id, session = provisioned(platform)
    now = int(time.time())
    failed_first = deliver(
        platform, make_event("invoice.payment_failed", invoice(session), now + 5)
    )
    assert tenant_status(platform, tenant_id)["status"] == "PAST_DUE", failed_first.get_json()
    paid = deliver(platform, make_event("invoice.payment_succeeded", invoice(session), now + 20))
    assert paid.get_json()["detail"] == "reactivated"

    late = make_event("invoice.payment_failed", invoice(session), now + 10)
    response = deliver(platform, late)

    assert response.status_code == 200
    assert response.get_json()["status"] == "IGNORED"
    assert tenant_status(platform, tenant_id)["status"] == "ACTIVE"


def _shapes() -> list[tuple[str, Any]]:
    def event(**changes: Any) -> dict[str, Any]:
        base = make_event("checkout.session.completed", checkout(new_tenant_id()))
        for path, value in changes.items():
            target = base
            *parents, leaf = path.split("__")
            for parent in parents:
                target = target[parent]
            if value is _MISSING:
                del target[leaf]
            else:
                target[leaf] = value
        return base

    return [
        ("created_string", event(created="1700000000")),
        ("metadata_string", event(data__object__metadata="tenant")),
        ("metadata_list", event(data__object__metadata=["tenant"])),
        ("object_missing", event(data__object=_MISSING)),
        ("object_not_object", event(data__object="cs_1")),
        ("data_not_object", event(data=[1])),
        ("numeric_id", event(id=12345)),
        ("numeric_session_id", event(data__object__id=12345)),
        (
            "subscription_metadata_list",
            make_event(
                "customer.subscription.deleted",
                {"id": "sub_x", "customer": "cus_x", "metadata": []},
            ),
        ),
        (
            "invoice_customer_number",
            make_event("invoice.payment_failed", {"id": "in_x", "customer": 7, "parent": "nope"}),
        ),
    ]


_MISSING = object()


@pytest.mark.parametrize("event", [e for _, e in _shapes()], ids=[n for n, _ in _shapes()])
def test_a_signed_event_of_the_wrong_shape_is_rejected_for_good_never_5xx(
    platform: Platform, event: dict[str, Any]
) -> None:
    first = deliver(platform, event)
    again = deliver(platform, event)

    assert first.status_code in (200, 400), first.get_json()
    assert again.status_code in (200, 400), again.get_json()
    body = first.get_json()
    assert body["error"] == "invalid_event" or body["status"] == "REJECTED"
    if isinstance(event.get("id"), str):
        row = ledger_row(platform, event["id"])
        assert row["status"] == "REJECTED"
        assert row["last_error"]


def test_a_body_that_is_not_utf8_is_400_whatever_its_signature(platform: Platform) -> None:
    body = b'{"id": "evt_\xff\xfe", "type": "checkout.session.completed"}'
    timestamp = int(time.time())
    secret = TEST_SECRETS[STRIPE_WEBHOOK_SECRET]
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    client = platform.client("stripe_webhook")

    for header in (f"t={timestamp},v1={mac}", f"t={timestamp},v1=deadbeef", ""):
        response = client.post(
            "/", data=body, content_type="application/json", headers={"Stripe-Signature": header}
        )
        assert response.status_code == 400, (header, response.get_json())
        assert response.get_json()["error"] == "invalid_signature"


def test_a_signature_timestamp_in_the_future_is_refused(platform: Platform) -> None:
    tolerance = platform.deps.settings.stripe_signature_tolerance_seconds
    event = make_event("checkout.session.completed", checkout(new_tenant_id()))

    response = deliver(platform, event, timestamp=int(time.time()) + tolerance + 60)

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_signature"
    assert deliver(platform, event, timestamp=int(time.time()) + 5).status_code == 200


def test_a_second_checkout_while_the_first_is_half_way_cannot_take_the_tenant_over(
    platform: Platform,
) -> None:
    fail_once_from_now_on(platform)
    tenant_id = new_tenant_id()
    first = checkout(tenant_id)
    first_event = make_event("checkout.session.completed", first)
    assert deliver(platform, first_event).status_code == 503  # rows written, then a crash
    second = checkout(tenant_id)

    intruder = deliver(platform, make_event("checkout.session.completed", second))
    redelivered = deliver(platform, first_event)

    assert (intruder.status_code, intruder.get_json()["status"]) == (200, "IGNORED")
    assert redelivered.get_json()["status"] == "PROCESSED"
    assert reveal(platform, second).status_code == 404
    key = reveal(platform, first).get_json()["api_key"]
    assert platform.tenant_call("quota", "GET", "/", key).status_code == 200
    assert len(active_keys(platform, tenant_id)) == 1


def test_an_event_whose_ledger_row_was_written_twice_is_processed_once(
    platform: Platform,
) -> None:
    # Two concurrent INSERT-only MERGEs may both insert on BigQuery; the twin
    # ledger rows must not block the event forever (they move in lockstep).
    tenant_id = new_tenant_id()
    event = make_event("checkout.session.completed", checkout(tenant_id))
    wh = platform.deps.warehouse
    for _ in range(2):
        wh.execute(
            f"INSERT INTO {wh.central('tenant_webhook_events')} (event_id, event_type, status, "
            "stripe_created, attempts, claimed_at, received_at) VALUES (@id, @type, 'NEW', "
            "NULL, 0, NULL, CURRENT_TIMESTAMP())",
            {"id": event["id"], "type": event["type"]},
        )

    first = deliver(platform, event)
    again = deliver(platform, event)

    assert (first.status_code, again.status_code) == (200, 200), first.get_json()
    assert tenant_status(platform, tenant_id)["tenant_id"] == tenant_id
    statuses = wh.query(
        f"SELECT status FROM {wh.central('tenant_webhook_events')} WHERE event_id = @id",
        {"id": event["id"]},
    )
    assert [r["status"] for r in statuses] == ["PROCESSED", "PROCESSED"]

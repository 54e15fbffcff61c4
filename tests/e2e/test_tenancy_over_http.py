"""Tenancy through the running local stack: onboard, authenticate, Stripe, reveal, offboard."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import stripe

from tests.e2e.stack import RunningStack, call, call_json, start_stack

ORIGIN = "https://app.convergence.example"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("tenancy") / "data", env={"FRONTEND_ORIGINS": ORIGIN}
    )
    yield running
    assert running.stop() == 0


def admin_headers(stack: RunningStack) -> dict[str, str]:
    return {"X-Admin-Key": stack.admin_key()}


def webhook_secret(stack: RunningStack) -> str:
    return str(json.loads((stack.data_dir / "secrets.json").read_text())["STRIPE_WEBHOOK_SECRET"])


def test_an_admin_onboards_a_tenant_whose_key_works_and_is_isolated(stack: RunningStack) -> None:
    tenant_a = "e2e_" + uuid.uuid4().hex[:8]
    tenant_b = "e2e_" + uuid.uuid4().hex[:8]
    bodies = {}
    for tenant_id in (tenant_a, tenant_b):
        status, _, body = call_json(
            "POST",
            f"{stack.url}/onboard/",
            {
                "tenant_id": tenant_id,
                "company_name": "E2E Corp",
                "admin_email": "ops@e2e.example",
                "subscription_plan": "STARTER",
            },
            {**admin_headers(stack), "Idempotency-Key": f"onboard-{tenant_id}"},
        )
        assert status == 201, body
        bodies[tenant_id] = body
    key_a = bodies[tenant_a]["api_key"]

    status, _, quota = call("GET", f"{stack.url}/quota/", headers={"X-API-Key": key_a})
    assert status == 200
    assert quota["tenant_id"] == tenant_a
    assert quota["daily"]["limit"] == 6
    status, _, body = call("GET", f"{stack.url}/quota/{tenant_b}", headers={"X-API-Key": key_a})
    assert status == 403
    status, _, _ = call(
        "GET", f"{stack.url}/admin/tenants/{tenant_b}", headers={"X-Admin-Key": key_a}
    )
    assert status == 401

    status, _, report = call_json(
        "POST",
        f"{stack.url}/admin/tenants/{tenant_a}/offboard",
        {"retain_days": 0, "confirm": tenant_a},
        admin_headers(stack),
    )
    assert status == 200
    assert report["dataset"]["deleted"] is True
    status, _, _ = call("GET", f"{stack.url}/quota/", headers={"X-API-Key": key_a})
    assert status in (401, 403)


def test_a_stripe_checkout_provisions_a_tenant_and_its_key_is_revealed_once(
    stack: RunningStack,
) -> None:
    tenant_id = "e2e_" + uuid.uuid4().hex[:8]
    session_id = "cs_test_" + uuid.uuid4().hex
    event = {
        "id": "evt_" + uuid.uuid4().hex,
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": session_id,
                "client_reference_id": tenant_id,
                "customer": "cus_e2e",
                "subscription": "sub_" + uuid.uuid4().hex[:10],
                "payment_status": "paid",
                "customer_details": {"email": "billing@e2e.example", "name": "E2E Ltd"},
                "metadata": {"price_lookup_key": "convergence_scale_monthly"},
            }
        },
    }
    payload = json.dumps(event)
    signature = stripe.WebhookSignature.generate_signature_header(payload, webhook_secret(stack))

    status, _, body = call(
        "POST",
        f"{stack.url}/stripe_webhook/",
        payload.encode(),
        {"Stripe-Signature": signature, "Content-Type": "application/json"},
    )
    assert status == 200, body
    status, _, _ = call(
        "POST",
        f"{stack.url}/stripe_webhook/",
        payload.encode(),
        {"Stripe-Signature": signature.replace("v1=", "v1=0"), "Content-Type": "application/json"},
    )
    assert status == 400

    status, _, revealed = call(
        "POST", f"{stack.url}/admin/key-reveals/{session_id}", headers=admin_headers(stack)
    )
    assert status == 200
    status, _, quota = call(
        "GET", f"{stack.url}/quota/", headers={"X-API-Key": revealed["api_key"]}
    )
    assert (status, quota["plan"]) == (200, "SCALE")
    status, _, _ = call(
        "POST", f"{stack.url}/admin/key-reveals/{session_id}", headers=admin_headers(stack)
    )
    assert status == 410


def test_browsers_get_cors_only_for_configured_origins(stack: RunningStack) -> None:
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    status, headers, _ = call("OPTIONS", f"{stack.url}/credentials/", headers=preflight)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    status, headers, _ = call(
        "OPTIONS", f"{stack.url}/quota/", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in headers


def test_no_response_leaks_a_stack_trace(stack: RunningStack) -> None:
    for name in ("onboard", "stripe_webhook", "credentials", "quota", "admin"):
        status, _, body = call(
            "POST", f"{stack.url}/{name}/", b"\xff\xfe{", {"Content-Type": "application/json"}
        )
        assert 400 <= status < 500 or status == 501, (name, status, body)
        assert "Traceback" not in json.dumps(body)


def test_credentials_are_stored_per_tenant_and_invisible_to_others(stack: RunningStack) -> None:
    keys = {}
    for _ in range(2):
        tenant_id = "e2e_" + uuid.uuid4().hex[:8]
        status, _, body = call_json(
            "POST",
            f"{stack.url}/onboard/",
            {"tenant_id": tenant_id, "company_name": "Cred Co", "admin_email": "c@e2e.example"},
            admin_headers(stack),
        )
        assert status == 201
        keys[tenant_id] = body["api_key"]
    key_a, key_b = keys.values()
    secret = "sk-ant-" + uuid.uuid4().hex * 2

    status, _, created = call_json(
        "POST",
        f"{stack.url}/credentials/",
        {
            "provider": "ANTHROPIC",
            "credential_type": "API_KEY",
            "credential_name": "llm spend",
            "credentials": {"api_key": secret},
            "metadata": {},
        },
        {"X-API-Key": key_a},
    )
    assert status == 201, created
    assert secret not in json.dumps(created)
    credential_url = f"{stack.url}/credentials/{created['credential_id']}"

    assert call("GET", credential_url, headers={"X-API-Key": key_a})[0] == 200
    assert call("GET", credential_url, headers={"X-API-Key": key_b})[0] == 404
    assert call("DELETE", credential_url, headers={"X-API-Key": key_b})[0] == 404
    status, _, listed = call("GET", f"{stack.url}/credentials/", headers={"X-API-Key": key_b})
    assert (status, listed["credentials"]) == (200, [])
    assert secret not in stack.output()

"""Hostile requests over real HTTP against the local stack: every error is the JSON error body."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe

from tests.e2e.stack import RunningStack, call, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("hostile") / "data")
    yield running
    assert running.stop() == 0


def raw_http(stack: RunningStack, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request written byte for byte, so malformed request lines reach the server."""
    address = urlsplit(stack.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def assert_json_error(status: int, headers: dict[str, str], body: Any, expected: int) -> None:
    assert status == expected, body
    content_type = {k.lower(): v for k, v in headers.items()}["content-type"]
    assert content_type.startswith("application/json"), content_type
    parsed = json.loads(body) if isinstance(body, bytes) else body
    assert set(parsed) >= {"error", "detail", "request_id"}, parsed
    assert "<" not in json.dumps(parsed)  # no HTML page smuggled into a field


def test_a_100_kib_url_and_every_gateway_error_is_the_json_error_body(stack: RunningStack) -> None:
    long_path = "/quota/" + "a" * 100 * 1024
    status, headers, body = raw_http(
        stack, f"GET {long_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert_json_error(status, headers, body, 414)

    status, headers, body = raw_http(stack, b"NOT A REQUEST LINE AT ALL\r\n\r\n")
    assert_json_error(status, headers, body, 400)

    for path in ("/no-such-function", "/onboard/robots.txt", "/admin/favicon.ico"):
        status, headers, parsed = call("GET", f"{stack.url}{path}")
        assert_json_error(status, headers, parsed, 404)

    status, headers, parsed = call(
        "POST",
        f"{stack.url}/onboard/",
        b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        {"Content-Type": "application/json", "X-Admin-Key": stack.admin_key()},
    )
    assert_json_error(status, headers, parsed, 400)


def _secret(stack: RunningStack) -> str:
    return str(json.loads((stack.data_dir / "secrets.json").read_text())["STRIPE_WEBHOOK_SECRET"])


def _checkout(stack: RunningStack, tenant_id: str, session_id: str) -> tuple[int, Any]:
    payload = json.dumps(
        {
            "id": "evt_" + uuid.uuid4().hex,
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": session_id,
                    "client_reference_id": tenant_id,
                    "customer": "cus_" + uuid.uuid4().hex[:10],
                    "subscription": "sub_" + uuid.uuid4().hex[:10],
                    "payment_status": "paid",
                    "customer_details": {"email": "billing@e2e.example", "name": "E2E Ltd"},
                    "metadata": {"price_lookup_key": "convergence_starter_monthly"},
                }
            },
        }
    )
    signature = stripe.WebhookSignature.generate_signature_header(payload, _secret(stack))
    status, _, body = call(
        "POST",
        f"{stack.url}/stripe_webhook/",
        payload.encode(),
        {"Stripe-Signature": signature, "Content-Type": "application/json"},
    )
    return status, body


def test_over_http_a_strangers_checkout_for_a_paying_tenant_changes_nothing(
    stack: RunningStack,
) -> None:
    tenant_id = "e2e_" + uuid.uuid4().hex[:8]
    owner, stranger = "cs_test_" + uuid.uuid4().hex, "cs_test_" + uuid.uuid4().hex
    admin = {"X-Admin-Key": stack.admin_key()}
    assert _checkout(stack, tenant_id, owner)[0] == 200
    _, _, revealed = call("POST", f"{stack.url}/admin/key-reveals/{owner}", headers=admin)

    status, body = _checkout(stack, tenant_id, stranger)

    assert (status, body["status"]) == (200, "IGNORED")
    status, _, _ = call("POST", f"{stack.url}/admin/key-reveals/{stranger}", headers=admin)
    assert status == 404
    status, _, _ = call("GET", f"{stack.url}/quota/", headers={"X-API-Key": revealed["api_key"]})
    assert status == 200

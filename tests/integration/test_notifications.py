"""Webhooks and the outbox sender against the emulator, the SMTP sink and a local receiver."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.smtp_sink import SmtpSink
from shared.deps import Deps
from shared.notify import outbox, sender, signing
from shared.platform.secrets import SMTP_HOST, StaticSecrets
from tests.integration.conftest import Platform

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


class Receiver:
    """A webhook receiver on 127.0.0.1 that records requests and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(outer.status)
                if outer.status in (301, 302):
                    self.send_header("Location", "http://169.254.169.254/")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://localhost:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    server = SmtpSink(tmp_path / "mail")
    server.start()
    yield server
    server.stop()


def quiet_tenant(platform: Platform) -> dict[str, Any]:
    """An onboarded tenant whose welcome message is removed (tests here count their own)."""
    tenant = platform.onboarded()
    wh = platform.deps.warehouse
    wh.execute(
        f"DELETE FROM {wh.central('tenant_notification_outbox')} WHERE tenant_id = @t",
        {"t": tenant["tenant_id"]},
    )
    return tenant


def call(platform: Platform, method: str, path: str, key: str, **kwargs: Any) -> Any:
    return platform.tenant_call("notifications", method, path, key, **kwargs)


def outbox_rows(deps: Deps, tenant_id: str) -> list[dict[str, Any]]:
    return deps.warehouse.query(
        "SELECT message_id, status, attempts, next_attempt_at, sent_at, last_error "
        f"FROM {deps.warehouse.central('tenant_notification_outbox')} WHERE tenant_id = @t",
        {"t": tenant_id},
    )


def webhook_count(deps: Deps) -> int:
    rows = deps.warehouse.query(
        f"SELECT COUNT(*) AS n FROM {deps.warehouse.central('tenant_webhooks')}"
    )
    return int(rows[0]["n"])


def at(deps: Deps, when: dt.datetime, **secrets: str) -> Deps:
    """The same adapters, seeing `when` as now, with extra secrets (the SMTP relay)."""
    values = {**getattr(deps.secrets, "values", {}), **secrets}
    return dataclasses.replace(deps, clock=lambda: when, secrets=StaticSecrets(values))


def record_alert(deps: Deps, tenant_id: str, key: str = "quota:daily:2026-12-02:80") -> int:
    return outbox.record(
        deps.warehouse,
        "SELECT @t AS tenant_id, @k AS dedupe_key, 'quota' AS kind, "
        "'Daily pipeline runs at 80% of the plan' AS subject, "
        """'{"used": 20, "limit": 25}' AS facts_json, """
        """'["ops@acme.example"]' AS recipients_json""",
        {"t": tenant_id, "k": key},
        NOW,
        component="test",
    )


# ---------------------------------------------------------------- registration (hostile first)


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/computeMetadata/v1/",
        "https://localhost/hook",
        "http://example.com/hook",
    ],
)
def test_unsafe_webhook_urls_are_422_naming_url_and_nothing_is_written(
    platform: Platform, url: str
) -> None:
    tenant = platform.onboarded()
    response = call(platform, "POST", "/webhooks", tenant["api_key"], json={"url": url})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == "url"
    assert webhook_count(platform.deps) == 0


def test_a_dns_name_that_resolves_to_loopback_is_refused(platform: Platform) -> None:
    tenant = platform.onboarded()
    # `localhost` is the one name every resolver maps to loopback without a network.
    response = call(
        platform, "POST", "/webhooks", tenant["api_key"], json={"url": "https://localhost:8443/x"}
    )
    assert response.status_code == 422
    assert "private, loopback or link-local" in response.get_json()["detail"]


@pytest.mark.parametrize("settings_overrides", [{"webhook_localhost_allowed": True}])
def test_registration_shows_the_secret_once_and_another_tenant_cannot_delete_it(
    platform: Platform, receiver: Receiver
) -> None:
    owner, other = platform.onboarded(), platform.onboarded()
    created = call(platform, "POST", "/webhooks", owner["api_key"], json={"url": receiver.url})
    assert created.status_code == 201, created.get_json()
    hook = created.get_json()
    assert hook["secret"].startswith("whsec_") and hook["webhook_id"].startswith("whk_")

    listed = call(platform, "GET", "/webhooks", owner["api_key"]).get_json()["webhooks"]
    assert [w["webhook_id"] for w in listed] == [hook["webhook_id"]]
    assert "secret" not in json.dumps(listed).replace("secret_hint", "")
    assert call(platform, "GET", "/webhooks", other["api_key"]).get_json()["webhooks"] == []

    foreign = call(platform, "DELETE", f"/webhooks/{hook['webhook_id']}", other["api_key"])
    assert foreign.status_code == 404
    assert (
        call(platform, "DELETE", f"/webhooks/{hook['webhook_id']}", owner["api_key"]).status_code
        == 200
    )
    assert call(platform, "GET", "/webhooks", owner["api_key"]).get_json()["webhooks"] == []


@pytest.mark.parametrize("settings_overrides", [{"webhook_localhost_allowed": True}])
def test_a_retried_registration_with_the_same_idempotency_key_returns_the_same_webhook(
    platform: Platform, receiver: Receiver
) -> None:
    tenant = platform.onboarded()
    headers = {"Idempotency-Key": "hook-1"}
    first = call(
        platform,
        "POST",
        "/webhooks",
        tenant["api_key"],
        json={"url": receiver.url},
        headers=headers,
    )
    again = call(
        platform,
        "POST",
        "/webhooks",
        tenant["api_key"],
        json={"url": receiver.url},
        headers=headers,
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["secret"] == again.get_json()["secret"]
    assert webhook_count(platform.deps) == 1


# ---------------------------------------------------------------- outbox and sender


def test_an_alert_is_recorded_once_however_often_it_is_decided(platform: Platform) -> None:
    tenant = quiet_tenant(platform)
    assert record_alert(platform.deps, tenant["tenant_id"]) == 1
    assert record_alert(platform.deps, tenant["tenant_id"]) == 0
    rows = outbox_rows(platform.deps, tenant["tenant_id"])
    assert [(r["status"], r["attempts"]) for r in rows] == [("PENDING", 0)]


@pytest.mark.parametrize("settings_overrides", [{"webhook_localhost_allowed": True}])
def test_the_sender_delivers_a_signed_webhook_and_an_email_then_marks_the_message_once(
    platform: Platform, receiver: Receiver, sink: SmtpSink
) -> None:
    tenant = quiet_tenant(platform)
    hook = call(platform, "POST", "/webhooks", tenant["api_key"], json={"url": receiver.url})
    secret = hook.get_json()["secret"]
    record_alert(platform.deps, tenant["tenant_id"])
    now = at(platform.deps, NOW, **{SMTP_HOST: sink.address})

    report = sender.send_due(now)

    assert (report.claimed, report.sent) == (1, 1)
    [request] = receiver.requests
    message_id = request["headers"][signing.MESSAGE_ID_HEADER]
    assert signing.verify(
        secret, request["headers"][signing.SIGNATURE_HEADER], request["body"], int(NOW.timestamp())
    )
    assert not signing.verify(
        secret,
        request["headers"][signing.SIGNATURE_HEADER],
        request["body"].replace(b"80%", b"99%"),
        int(NOW.timestamp()),
    )
    body = json.loads(request["body"])
    assert body["text"] == "Daily pipeline runs at 80% of the plan"
    assert body["message_id"] == message_id and body["blocks"]
    mail = email.message_from_bytes(
        (Path(sink.mail_dir) / f"{message_id}.eml").read_bytes(), policy=email.policy.default
    )
    assert "finops@acme.example" in mail["To"] and "ops@acme.example" in mail["To"]
    assert mail["X-Convergence-Message-Id"] == message_id
    [row] = outbox_rows(platform.deps, tenant["tenant_id"])
    assert (row["status"], row["attempts"], row["last_error"]) == ("SENT", 1, None)

    assert sender.send_due(at(platform.deps, NOW + dt.timedelta(hours=1))).claimed == 0
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "settings_overrides", [{"webhook_localhost_allowed": True, "notify_max_attempts": 2}]
)
def test_a_failing_receiver_is_retried_with_backoff_then_the_message_fails(
    platform: Platform, receiver: Receiver
) -> None:
    tenant = quiet_tenant(platform)
    call(platform, "POST", "/webhooks", tenant["api_key"], json={"url": receiver.url})
    record_alert(platform.deps, tenant["tenant_id"])
    receiver.status = 302  # a redirect is not followed: it is a failure

    assert sender.send_due(at(platform.deps, NOW)).retrying == 1
    [row] = outbox_rows(platform.deps, tenant["tenant_id"])
    assert (row["status"], row["attempts"]) == ("PENDING", 1)
    assert row["next_attempt_at"] == NOW + dt.timedelta(seconds=outbox.BACKOFF_FIRST_SECONDS)
    assert "HTTP 302" in row["last_error"] and "whsec" not in row["last_error"]
    assert sender.send_due(at(platform.deps, NOW + dt.timedelta(seconds=30))).claimed == 0

    receiver.status = 500
    assert sender.send_due(at(platform.deps, NOW + dt.timedelta(seconds=61))).claimed == 1
    [row] = outbox_rows(platform.deps, tenant["tenant_id"])
    assert (row["status"], row["attempts"]) == ("FAILED", 2)
    assert len(receiver.requests) == 2 and len({r["body"] for r in receiver.requests}) == 1


@pytest.mark.parametrize("settings_overrides", [{"webhook_localhost_allowed": True}])
def test_a_crash_between_send_and_mark_sends_again_later_never_loses(
    platform: Platform, receiver: Receiver
) -> None:
    tenant = quiet_tenant(platform)
    call(platform, "POST", "/webhooks", tenant["api_key"], json={"url": receiver.url})
    record_alert(platform.deps, tenant["tenant_id"])
    # A pass that claimed and then died before finish(): the claim alone.
    outbox.claim(platform.deps.warehouse, NOW, limit=10, max_attempts=8)

    assert sender.send_due(at(platform.deps, NOW)).claimed == 0
    later = sender.send_due(at(platform.deps, NOW + dt.timedelta(minutes=2)))
    assert (later.claimed, later.sent) == (1, 1)
    [row] = outbox_rows(platform.deps, tenant["tenant_id"])
    assert (row["status"], row["attempts"]) == ("SENT", 2)


def test_messages_are_listed_for_their_tenant_only_without_secrets(platform: Platform) -> None:
    owner, other = quiet_tenant(platform), quiet_tenant(platform)
    record_alert(platform.deps, owner["tenant_id"])
    mine = call(platform, "GET", "/messages", owner["api_key"]).get_json()["messages"]
    assert [m["kind"] for m in mine] == ["quota"] and mine[0]["facts"] == {"used": 20, "limit": 25}
    assert call(platform, "GET", "/messages", other["api_key"]).get_json()["messages"] == []
    bad = call(platform, "GET", "/messages?limit=0", owner["api_key"])
    assert bad.status_code == 422 and bad.get_json()["field"] == "limit"


def test_onboarding_records_one_welcome_that_never_contains_the_key(platform: Platform) -> None:
    tenant = platform.onboarded()
    platform.onboard(
        {
            "tenant_id": tenant["tenant_id"],
            "company_name": "Acme Corp",
            "admin_email": "finops@acme.example",
            "subscription_plan": "PROFESSIONAL",
        }
    )
    messages = call(platform, "GET", "/messages", tenant["api_key"]).get_json()["messages"]
    assert [m["kind"] for m in messages] == ["welcome"]
    assert tenant["api_key"] not in json.dumps(messages)
    assert "reveal" in messages[0]["facts"]["text"]


def test_the_trigger_function_runs_a_sender_pass_for_the_scheduler_only(platform: Platform) -> None:
    from tests.conftest import ADMIN_KEY

    tenant = platform.onboarded()
    assert platform.client("trigger").post("/notifications").status_code == 401
    response = platform.client("trigger").post("/notifications", headers={"X-Admin-Key": ADMIN_KEY})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["sent"] >= 1
    [welcome] = call(platform, "GET", "/messages", tenant["api_key"]).get_json()["messages"]
    assert welcome["status"] == "SENT"


@pytest.mark.parametrize("settings_overrides", [{"webhook_localhost_allowed": True}])
def test_the_url_is_checked_again_at_send_time(platform: Platform, receiver: Receiver) -> None:
    tenant = quiet_tenant(platform)
    call(platform, "POST", "/webhooks", tenant["api_key"], json={"url": receiver.url})
    record_alert(platform.deps, tenant["tenant_id"])
    # The same webhook, sent by a process where localhost is not allowed (production rules).
    strict = dataclasses.replace(
        platform.deps,
        clock=lambda: NOW,
        settings=platform.deps.settings.model_copy(update={"webhook_localhost_allowed": False}),
    )

    assert sender.send_due(strict).retrying == 1
    assert receiver.requests == []
    [row] = outbox_rows(platform.deps, tenant["tenant_id"])
    assert "the URL must use https" in row["last_error"]

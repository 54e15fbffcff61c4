"""Tenant webhooks: registration (secret shown once, stored encrypted) and signed delivery."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import re
import socket
import ssl
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.deps import Deps
from shared.notify import signing
from shared.notify.webhook_urls import Resolver, Target, UnsafeUrl, check_url, system_resolver
from shared.platform.errors import ApiError, not_found, unprocessable
from shared.platform.secrets import API_KEY_PEPPER, require
from shared.platform.warehouse import Typed
from shared.vault.crypto import purpose_aad

WEBHOOK_ID_RE = re.compile(r"^whk_[0-9a-f]{32}$")
MAX_WEBHOOKS_PER_TENANT = 10
SEND_TIMEOUT_SECONDS = 5.0
_COLUMNS = "webhook_id, url, description, secret_hint, status, created_at"


class RegisterWebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(min_length=8, max_length=2048)
    description: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class Webhook:
    """An ACTIVE webhook with its decrypted secret: only the sender holds one."""

    webhook_id: str
    url: str
    secret: str


def _table(deps: Deps) -> str:
    return deps.warehouse.central("tenant_webhooks")


def _aad(tenant_id: str, webhook_id: str) -> bytes:
    return purpose_aad("webhook_secret", tenant_id, webhook_id)


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "webhook_id": row["webhook_id"],
        "url": row["url"],
        "description": row.get("description"),
        "secret_hint": row.get("secret_hint"),
        "status": row["status"],
        "created_at": _iso(row.get("created_at")),
    }


def checked_url(deps: Deps, url: str, resolve: Resolver = system_resolver) -> Target:
    """422 naming `url` when it is not safe to call (SSRF rules, webhook_urls)."""
    try:
        return check_url(
            url, localhost_allowed=deps.settings.webhook_localhost_allowed, resolve=resolve
        )
    except UnsafeUrl as problem:
        raise unprocessable("unsafe_url", f"url: {problem}", field="url") from None


def _ids(deps: Deps, tenant_id: str, idempotency_key: str | None) -> tuple[str, str]:
    """Id and secret; with an Idempotency-Key both are derived, so a retried POST shows the same.

    The derivation is keyed by the API-key pepper (a platform secret), so
    nobody without it can compute a tenant's signing secret.
    """
    if idempotency_key is None:
        return "whk_" + uuid.uuid4().hex, signing.new_secret()
    pepper = require(deps.secrets, API_KEY_PEPPER).encode()
    seed = f"{tenant_id}\x00{idempotency_key}".encode()
    webhook_id = "whk_" + hmac.new(pepper, b"webhook-id\x00" + seed, hashlib.sha256).hexdigest()
    secret = "whsec_" + hmac.new(pepper, b"webhook-secret\x00" + seed, hashlib.sha256).hexdigest()
    return webhook_id[:36], secret


def register(
    deps: Deps,
    tenant_id: str,
    body: RegisterWebhookRequest,
    idempotency_key: str | None = None,
    resolve: Resolver = system_resolver,
) -> tuple[dict[str, Any], bool]:
    """Stores a webhook and returns it with its signing secret (the only time it is shown).

    One conditional INSERT: nothing is written past the per-tenant limit, and
    a retried POST with the same Idempotency-Key inserts nothing new.
    """
    checked_url(deps, body.url, resolve)
    webhook_id, secret = _ids(deps, tenant_id, idempotency_key)
    deps.crypto.ensure_tenant_key(tenant_id)
    ciphertext = deps.crypto.encrypt(tenant_id, secret.encode(), _aad(tenant_id, webhook_id))
    now = deps.clock()
    table = _table(deps)
    inserted = deps.warehouse.execute(
        f"INSERT INTO {table} (webhook_id, tenant_id, url, description, secret_ciphertext, "
        "secret_hint, status, created_at) "
        "SELECT @id, @t, @url, @description, @ciphertext, @hint, 'ACTIVE', @now FROM UNNEST([1]) "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE tenant_id = @t AND webhook_id = @id) "
        f"AND (SELECT COUNT(*) FROM {table} WHERE tenant_id = @t AND status = 'ACTIVE') < @limit",
        {
            "id": webhook_id,
            "t": tenant_id,
            "url": body.url,
            "description": Typed("STRING", body.description),
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "hint": secret[-4:],
            "now": now,
            "limit": MAX_WEBHOOKS_PER_TENANT,
        },
        component="notifications",
        tenant_id=tenant_id,
    )
    if not inserted:
        rows = deps.warehouse.query(
            f"SELECT {_COLUMNS}, url = @url AS same_url FROM {table} "
            "WHERE tenant_id = @t AND webhook_id = @id",
            {"t": tenant_id, "id": webhook_id, "url": body.url},
            component="notifications",
            tenant_id=tenant_id,
        )
        if not rows:
            raise ApiError(
                409,
                "limit_reached",
                f"a tenant has at most {MAX_WEBHOOKS_PER_TENANT} webhooks; delete one first",
            )
        if not rows[0]["same_url"] or rows[0]["status"] != "ACTIVE":
            raise ApiError(
                409,
                "idempotency_key_reused",
                "this Idempotency-Key was used for another webhook",
                field="Idempotency-Key",
            )
        return {**public_view(rows[0]), "secret": secret}, False
    row = {
        "webhook_id": webhook_id,
        "url": body.url,
        "description": body.description,
        "secret_hint": secret[-4:],
        "status": "ACTIVE",
        "created_at": now,
    }
    return {**public_view(row), "secret": secret}, True


def list_webhooks(deps: Deps, tenant_id: str) -> list[dict[str, Any]]:
    rows = deps.warehouse.query(
        f"SELECT {_COLUMNS} FROM {_table(deps)} WHERE tenant_id = @t AND status = 'ACTIVE' "
        "ORDER BY created_at, webhook_id",
        {"t": tenant_id},
        component="notifications",
        tenant_id=tenant_id,
    )
    return [public_view(r) for r in rows]


def delete_webhook(deps: Deps, tenant_id: str, webhook_id: str) -> dict[str, Any]:
    """Soft delete; another tenant's id or an unknown one is the same 404. Repeats are 404."""
    if not WEBHOOK_ID_RE.match(webhook_id):
        raise not_found("no such webhook")
    changed = deps.warehouse.execute(
        f"UPDATE {_table(deps)} SET status = 'DELETED', deleted_at = @now, "
        "secret_ciphertext = '' WHERE tenant_id = @t AND webhook_id = @id AND status = 'ACTIVE'",
        {"t": tenant_id, "id": webhook_id, "now": deps.clock()},
        component="notifications",
        tenant_id=tenant_id,
    )
    if not changed:
        raise not_found("no such webhook")
    return {"webhook_id": webhook_id, "status": "DELETED"}


def active_webhooks(deps: Deps, tenant_ids: list[str]) -> dict[str, list[Webhook]]:
    """Every ACTIVE webhook of these tenants, secrets decrypted, in one query."""
    if not tenant_ids:
        return {}
    rows = deps.warehouse.query(
        f"SELECT tenant_id, webhook_id, url, secret_ciphertext FROM {_table(deps)} "
        "WHERE tenant_id IN UNNEST(@tenants) AND status = 'ACTIVE' ORDER BY webhook_id",
        {"tenants": tenant_ids},
        component="notify_sender",
    )
    hooks: dict[str, list[Webhook]] = {}
    for row in rows:
        tenant_id, webhook_id = str(row["tenant_id"]), str(row["webhook_id"])
        secret = deps.crypto.decrypt(
            tenant_id, base64.b64decode(row["secret_ciphertext"]), _aad(tenant_id, webhook_id)
        )
        hooks.setdefault(tenant_id, []).append(
            Webhook(webhook_id, str(row["url"]), secret.decode())
        )
    return hooks


class DeliveryError(Exception):
    """A webhook delivery that did not get a 2xx; the message is safe to store (no secret)."""


class _PinnedHttp(http.client.HTTPConnection):
    """Connects to the address that was checked, not to a fresh DNS answer."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHttps(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = target.address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # SNI and certificate checks use the URL's host name, as the tenant registered it.
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def _tls_context(deps: Deps) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if deps.settings.webhook_ca_bundle is not None:
        context.load_verify_locations(cafile=str(deps.settings.webhook_ca_bundle))
    return context


def deliver(
    deps: Deps,
    webhook: Webhook,
    message_id: str,
    body: bytes,
    resolve: Resolver = system_resolver,
) -> None:
    """One signed POST, 5 s timeout, redirects not followed; DeliveryError unless 2xx."""
    try:
        target = check_url(
            webhook.url, localhost_allowed=deps.settings.webhook_localhost_allowed, resolve=resolve
        )
    except UnsafeUrl as problem:
        raise DeliveryError(f"webhook {webhook.webhook_id}: {problem}") from None
    timestamp = int(deps.clock().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Convergence-Webhooks/1",
        signing.MESSAGE_ID_HEADER: message_id,
        signing.SIGNATURE_HEADER: signing.signature_header(webhook.secret, timestamp, body),
    }
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHttps(target, SEND_TIMEOUT_SECONDS, _tls_context(deps))
    else:
        connection = _PinnedHttp(target, SEND_TIMEOUT_SECONDS)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"webhook {webhook.webhook_id}: {exc.__class__.__name__}") from None
    finally:
        connection.close()
    if not 200 <= status < 300:
        # A 3xx is a failure too: following it could lead to an internal address.
        raise DeliveryError(f"webhook {webhook.webhook_id}: HTTP {status}")

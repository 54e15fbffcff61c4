"""Tenant API keys: generation, peppered HMAC storage, cached lookup, rotation, revocation."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.platform.errors import forbidden, unauthorized

if TYPE_CHECKING:  # the BigQuery client loads with the warehouse, not with this module
    from shared.platform.warehouse import Warehouse

# 32 random bytes = 256 bits, URL-safe; the tenant prefix tells keys apart in logs-free UIs.
_RANDOM_BYTES = 32
KEY_RE = re.compile(r"^([a-z0-9_]{3,50})_api_([A-Za-z0-9_-]{43})$")
_MAX_KEY_LENGTH = 200

# Tenants in these states may not call tenant endpoints at all.
BLOCKED_STATUSES = frozenset({"SUSPENDED", "CANCELLED", "DELETED"})


def generate_key(tenant_id: str) -> str:
    return f"{tenant_id}_api_{secrets.token_urlsafe(_RANDOM_BYTES)}"


def hash_key(pepper: str, key: str) -> str:
    """HMAC-SHA256 with a secret pepper: a stolen table alone can't be brute-forced."""
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def key_prefix(key: str) -> str:
    # Enough to recognise a key in a list, far too little to guess it.
    tenant_part, _, random_part = key.partition("_api_")
    return f"{tenant_part}_api_{random_part[:4]}"


@dataclass(frozen=True)
class Principal:
    """Who a valid API key belongs to."""

    tenant_id: str
    key_id: str
    tenant_status: str


@dataclass(frozen=True)
class IssuedKey:
    key: str
    key_id: str
    key_prefix: str


def insert_key(
    warehouse: Warehouse,
    pepper: str,
    tenant_id: str,
    now: dt.datetime,
    created_by: str,
) -> IssuedKey:
    """A new ACTIVE key, inserted by DML so that rotation and revocation may UPDATE it."""
    key = generate_key(tenant_id)
    issued = IssuedKey(key=key, key_id=f"key_{uuid.uuid4().hex}", key_prefix=key_prefix(key))
    warehouse.execute(
        f"INSERT INTO {warehouse.central('tenant_api_keys')} "
        "(key_id, tenant_id, key_hash, key_prefix, status, created_at, created_by) "
        "VALUES (@key_id, @tenant_id, @key_hash, @key_prefix, 'ACTIVE', @now, @created_by)",
        {
            "key_id": issued.key_id,
            "tenant_id": tenant_id,
            "key_hash": hash_key(pepper, key),
            "key_prefix": issued.key_prefix,
            "now": now,
            "created_by": created_by,
        },
        component="api_keys",
        tenant_id=tenant_id,
    )
    return issued


def start_overlap(
    warehouse: Warehouse, tenant_id: str, keep_key_id: str, expires_at: dt.datetime
) -> int:
    """Every other active key of the tenant expires at `expires_at` (never extends one)."""
    return warehouse.execute(
        f"UPDATE {warehouse.central('tenant_api_keys')} SET expires_at = @expires_at "
        "WHERE tenant_id = @tenant_id AND status = 'ACTIVE' AND key_id != @keep "
        "AND (expires_at IS NULL OR expires_at > @expires_at)",
        {"tenant_id": tenant_id, "keep": keep_key_id, "expires_at": expires_at},
        component="api_keys",
        tenant_id=tenant_id,
    )


def revoke(
    warehouse: Warehouse, tenant_id: str, now: dt.datetime, key_id: str | None = None
) -> list[str]:
    """Revokes one key (or all of the tenant's); returns the key ids it revoked."""
    condition = "tenant_id = @tenant_id AND status = 'ACTIVE'"
    params: dict[str, object] = {"tenant_id": tenant_id, "now": now}
    if key_id is not None:
        condition += " AND key_id = @key_id"
        params["key_id"] = key_id
    table = warehouse.central("tenant_api_keys")
    rows = warehouse.query(
        f"SELECT key_id FROM {table} WHERE {condition}", params, component="api_keys"
    )
    if rows:
        warehouse.execute(
            f"UPDATE {table} SET status = 'REVOKED', revoked_at = @now WHERE {condition}",
            params,
            component="api_keys",
            tenant_id=tenant_id,
        )
    return [str(r["key_id"]) for r in rows]


def list_keys(warehouse: Warehouse, tenant_id: str) -> list[dict[str, object]]:
    """Key metadata only: id, prefix, status, dates. Never the hash."""
    return warehouse.query(
        "SELECT key_id, key_prefix, status, created_at, expires_at, revoked_at "
        f"FROM {warehouse.central('tenant_api_keys')} WHERE tenant_id = @tenant_id "
        "ORDER BY created_at",
        {"tenant_id": tenant_id},
        component="api_keys",
    )


class AuthCache:
    """Key-hash -> principal (or a known miss) for `ttl` seconds, so a warm request runs no job.

    Revocation clears the entry at once in this process; other processes see it
    when their entry expires, so the TTL bounds revocation latency.
    """

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> tuple[bool, Principal | None]:
        with self._lock:
            entry = self._entries.get(key_hash)
            if entry is None or entry[0] <= self._clock():
                self._entries.pop(key_hash, None)
                return False, None
            return True, entry[1]

    def put(self, key_hash: str, principal: Principal | None) -> None:
        with self._lock:
            if len(self._entries) > 100_000:
                self._entries.clear()  # bounded memory under a key-guessing flood
            self._entries[key_hash] = (self._clock() + self.ttl, principal)

    def forget_tenant(self, tenant_id: str, key_id: str | None = None) -> None:
        with self._lock:
            for key_hash, (_, principal) in list(self._entries.items()):
                if principal is None or principal.tenant_id != tenant_id:
                    continue
                if key_id is None or principal.key_id == key_id:
                    del self._entries[key_hash]


def lookup(warehouse: Warehouse, key_hash: str, now: dt.datetime) -> Principal | None:
    rows = warehouse.query(
        "SELECT k.key_id, k.tenant_id, p.status AS tenant_status "
        f"FROM {warehouse.central('tenant_api_keys')} AS k "
        f"JOIN {warehouse.central('tenant_profiles')} AS p ON p.tenant_id = k.tenant_id "
        "WHERE k.key_hash = @key_hash AND k.status = 'ACTIVE' "
        "AND (k.expires_at IS NULL OR k.expires_at > @now) "
        "AND p.onboarding_state = 'COMPLETE' LIMIT 1",
        {"key_hash": key_hash, "now": now},
        component="auth",
    )
    if not rows:
        return None
    row = rows[0]
    return Principal(str(row["tenant_id"]), str(row["key_id"]), str(row["tenant_status"]))


def authenticate_key(
    raw_key: str | None,
    *,
    warehouse: Warehouse,
    pepper: str,
    cache: AuthCache,
    now: dt.datetime,
) -> Principal:
    """The principal of a valid key; 401 for a missing or unknown key, 403 for a blocked tenant.

    The lookup is by HMAC only, never by the tenant part of the key, so an
    unknown key costs the same whether or not its tenant exists.
    """
    if not raw_key or len(raw_key) > _MAX_KEY_LENGTH:
        raise unauthorized("missing or invalid X-API-Key")
    key_hash = hash_key(pepper, raw_key)
    hit, principal = cache.get(key_hash)
    if not hit:
        principal = lookup(warehouse, key_hash, now)
        cache.put(key_hash, principal)
    if principal is None:
        raise unauthorized("missing or invalid X-API-Key")
    if principal.tenant_status in BLOCKED_STATUSES:
        raise forbidden(f"tenant is {principal.tenant_status.lower()}")
    return principal

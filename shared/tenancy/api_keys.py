"""Tenant API keys: generation, peppered HMAC storage, cached lookup, rotation, revocation."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.platform.errors import ApiError, forbidden, unauthorized
from shared.tenancy import access_epoch

if TYPE_CHECKING:  # the BigQuery client loads with the warehouse, not with this module
    from shared.platform.warehouse import Warehouse

# Keys are `{tenant_id}_api_{random}{check}`: 24 random bytes (192 bits, 32
# URL-safe characters) then an 8-character keyed checksum (48 bits of an HMAC
# of everything before it under a key derived from the pepper). A made-up or
# mistyped key fails the checksum offline; only keys this platform issued can
# cost a warehouse lookup. A random guess passes the checksum once in 2**48.
_RANDOM_BYTES = 24
RANDOM_BITS = _RANDOM_BYTES * 8
_RANDOM_CHARS = 32
_CHECK_CHARS = 8
KEY_RE = re.compile(
    rf"^([a-z0-9_]{{3,50}})_api_([A-Za-z0-9_-]{{{_RANDOM_CHARS}}})([A-Za-z0-9_-]{{{_CHECK_CHARS}}})$"
)
_MAX_KEY_LENGTH = 200

# Every lookup reads two small central tables; a runaway plan can't cost more.
LOOKUP_MAX_BYTES = 100 * 1024 * 1024

# Failed authentications per client before 429 (docs/decisions.md, Tenancy).
FAILED_AUTH_LIMIT = 20
FAILED_AUTH_WINDOW_SECONDS = 60
_MAX_TRACKED_CLIENTS = 10_000

# Auth cache bounds: entries kept (LRU beyond) and how long a miss is remembered.
AUTH_CACHE_MAX_ENTRIES = 50_000
MISS_TTL_SECONDS = 5.0

# Tenants in these states may not call tenant endpoints at all.
BLOCKED_STATUSES = frozenset({"SUSPENDED", "CANCELLED", "DELETED"})


def _checksum(pepper: str, body: str) -> str:
    # A key of its own (derived from the pepper), so the checksum and the
    # stored hash are never the same function of the key.
    check_key = hmac.new(pepper.encode(), b"convergence api key checksum v1", hashlib.sha256)
    digest = hmac.new(check_key.digest(), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:_CHECK_CHARS]


def generate_key(tenant_id: str, pepper: str) -> str:
    body = f"{tenant_id}_api_{secrets.token_urlsafe(_RANDOM_BYTES)}"
    return body + _checksum(pepper, body)


def well_formed(key: str, pepper: str) -> bool:
    """Whether `key` has the key format and a valid checksum: decided offline."""
    if len(key) > _MAX_KEY_LENGTH or not KEY_RE.match(key):
        return False
    body, check = key[:-_CHECK_CHARS], key[-_CHECK_CHARS:]
    return hmac.compare_digest(_checksum(pepper, body), check)


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
    # When the key stops working (rotation overlap); None while it has no end.
    expires_at: dt.datetime | None = None
    # The member the key belongs to; a key issued before members existed is its owner's.
    member_id: str | None = None
    role: str = "OWNER"


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
    *,
    member_id: str | None = None,
) -> IssuedKey:
    """A new ACTIVE key, inserted by DML so that rotation and revocation may UPDATE it."""
    from shared.platform.warehouse import Typed  # with the warehouse, not at import

    key = generate_key(tenant_id, pepper)
    issued = IssuedKey(key=key, key_id=f"key_{uuid.uuid4().hex}", key_prefix=key_prefix(key))
    warehouse.execute(
        f"INSERT INTO {warehouse.central('tenant_api_keys')} "
        "(key_id, tenant_id, key_hash, key_prefix, status, created_at, created_by, member_id) "
        "VALUES (@key_id, @tenant_id, @key_hash, @key_prefix, 'ACTIVE', @now, @created_by, "
        "@member_id)",
        {
            "key_id": issued.key_id,
            "tenant_id": tenant_id,
            "key_hash": hash_key(pepper, key),
            "key_prefix": issued.key_prefix,
            "now": now,
            "created_by": created_by,
            "member_id": Typed("STRING", member_id),
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


# A rate-limit budget: (client address, tenant named by the key or "").
Bucket = tuple[str, str]


class FailedAuthLimiter:
    """Sliding window of failed authentications per budget, in bounded memory.

    Per process, like the cache: an attacker spread over instances gets the
    limit per instance, which still caps the rate each instance serves.
    """

    def __init__(
        self,
        limit: int = FAILED_AUTH_LIMIT,
        window_seconds: float = FAILED_AUTH_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = _MAX_TRACKED_CLIENTS,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._max_clients = max_clients
        self._failures: OrderedDict[Bucket, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: Bucket) -> int:
        """Seconds until `client` may try again; 0 if it is not limited."""
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                return 0
            now = self._clock()
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) < self.limit:
                return 0
            return max(1, math.ceil(failures[0] + self.window - now))

    def refuse_if_limited(self, client: Bucket) -> None:
        """429 with Retry-After for a client over the limit, before any key is checked."""
        wait = self.retry_after(client)
        if wait:
            raise ApiError(
                429,
                "too_many_requests",
                "too many failed authentications from this client for this key; retry later",
                headers={"Retry-After": str(wait)},
            )

    def failed(self, client: Bucket) -> None:
        with self._lock:
            failures = self._failures.pop(client, None)
            if failures is None:
                failures = deque(maxlen=self.limit)
            failures.append(self._clock())
            self._failures[client] = failures  # most recent last
            while len(self._failures) > self._max_clients:
                self._failures.popitem(last=False)


@dataclass(frozen=True)
class _Entry:
    deadline: float  # monotonic
    principal: Principal | None
    # The tenant's access epoch read before the principal was looked up.
    epoch: str | None = None


class AuthCache:
    """Key-hash -> principal (or a known miss), so a warm request runs no job.

    A principal is kept for `ttl` seconds but never past its key's expiry; a
    miss for `miss_ttl_seconds`. At most `max_entries` are kept: beyond that
    the least recently used go, one at a time. A principal is stored with the
    tenant's access epoch read before its lookup; `authenticate_key` uses it
    only while that epoch is still current, so a revocation made by any
    process applies here on the next request (shared/tenancy/access_epoch.py).
    Revocation also clears the entry at once in the process that made it.
    """

    def __init__(
        self,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = AUTH_CACHE_MAX_ENTRIES,
        miss_ttl_seconds: float = MISS_TTL_SECONDS,
    ) -> None:
        self.ttl = ttl_seconds
        self.miss_ttl = min(miss_ttl_seconds, ttl_seconds)
        self.max_entries = max_entries
        self.limiter = FailedAuthLimiter()
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_hash: str, now: dt.datetime | None = None) -> tuple[bool, Principal | None]:
        """(hit, principal); `now` is wall-clock time, checked against the key's expiry."""
        hit, principal, _ = self.get_with_epoch(key_hash, now)
        return hit, principal

    def get_with_epoch(
        self, key_hash: str, now: dt.datetime | None = None
    ) -> tuple[bool, Principal | None, str | None]:
        """(hit, principal, the access epoch it was looked up under)."""
        with self._lock:
            entry = self._entries.get(key_hash)
            if entry is None:
                return False, None, None
            principal = entry.principal
            expired = (
                principal is not None
                and principal.expires_at is not None
                and (now is None or principal.expires_at <= now)
            )
            if entry.deadline <= self._clock() or expired:
                del self._entries[key_hash]
                return False, None, None
            self._entries.move_to_end(key_hash)
            return True, principal, entry.epoch

    def put(self, key_hash: str, principal: Principal | None, epoch: str | None = None) -> None:
        ttl = self.ttl if principal is not None else self.miss_ttl
        with self._lock:
            self._entries[key_hash] = _Entry(self._clock() + ttl, principal, epoch)
            self._entries.move_to_end(key_hash)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget_member(self, tenant_id: str, member_id: str) -> None:
        """Drops every cached key of one member (removed, or its role changed)."""
        with self._lock:
            for key_hash, entry in list(self._entries.items()):
                principal = entry.principal
                if (
                    principal is not None
                    and principal.tenant_id == tenant_id
                    and principal.member_id == member_id
                ):
                    del self._entries[key_hash]

    def forget_tenant(self, tenant_id: str, key_id: str | None = None) -> None:
        with self._lock:
            for key_hash, entry in list(self._entries.items()):
                principal = entry.principal
                if principal is None or principal.tenant_id != tenant_id:
                    continue
                if key_id is None or principal.key_id == key_id:
                    del self._entries[key_hash]


def owner_member_id_sql(key_alias: str) -> str:
    """SQL for a key's member: its own, or (keys from before members) the first owner's."""
    return f"COALESCE({key_alias}.member_id, CONCAT('mem_', {key_alias}.tenant_id, '_0'))"


def lookup(warehouse: Warehouse, key_hash: str, now: dt.datetime) -> Principal | None:
    # One statement: the key, its tenant's status and its member's role. A key
    # from before members existed (member_id NULL) is the owner's, whether or
    # not the owner's member row was written yet (docs/decisions.md, Team).
    member = owner_member_id_sql("k")
    rows = warehouse.query(
        "SELECT k.key_id, k.tenant_id, k.expires_at, p.status AS tenant_status, "
        f"{member} AS member_id, COALESCE(m.role, 'OWNER') AS role "
        f"FROM {warehouse.central('tenant_api_keys')} AS k "
        f"JOIN {warehouse.central('tenant_profiles')} AS p ON p.tenant_id = k.tenant_id "
        f"LEFT JOIN {warehouse.central('tenant_members')} AS m "
        f"ON m.tenant_id = k.tenant_id AND m.member_id = {member} "
        "WHERE k.key_hash = @key_hash AND k.status = 'ACTIVE' "
        "AND (k.expires_at IS NULL OR k.expires_at > @now) "
        "AND p.onboarding_state = 'COMPLETE' "
        "AND (m.status = 'ACTIVE' OR (m.member_id IS NULL AND k.member_id IS NULL)) LIMIT 1",
        {"key_hash": key_hash, "now": now},
        component="auth",
        maximum_bytes_billed=LOOKUP_MAX_BYTES,
    )
    if not rows:
        return None
    row = rows[0]
    return Principal(
        str(row["tenant_id"]),
        str(row["key_id"]),
        str(row["tenant_status"]),
        row["expires_at"],
        member_id=str(row["member_id"]),
        role=str(row["role"]),
    )


def failure_bucket(client: str, raw_key: str | None) -> tuple[str, str]:
    """Whose budget a failed authentication spends.

    (client, tenant named by the key's prefix) for a key of the key format,
    (client, "") for anything else. Every tenant call arrives from the
    frontend's backend in production, so a per-client budget alone would let
    20 wrong keys for one tenant lock every tenant out.
    """
    match = KEY_RE.match(raw_key) if raw_key and len(raw_key) <= _MAX_KEY_LENGTH else None
    return (client, match.group(1) if match else "")


def _tenant_of(key: str) -> str:
    """The tenant a well-formed key names: its own, since the checksum proved we issued it."""
    match = KEY_RE.match(key)
    return match.group(1) if match else ""


def authenticate_key(
    raw_key: str | None,
    *,
    warehouse: Warehouse,
    pepper: str,
    cache: AuthCache,
    now: dt.datetime,
    client: str = "",
) -> Principal:
    """The principal of a valid key; 401 for a missing or unknown key, 403 for a blocked tenant.

    A key failing the format or its checksum is refused without touching the
    warehouse. The lookup is by HMAC only, never by the tenant part of the
    key, so an unknown key costs the same whether or not its tenant exists.
    A client with too many recent failures for the key's tenant (or, for
    keys without a tenant prefix, from that client) gets 429 before the key
    is looked up; a valid key this instance already knows is never refused.

    A cached principal is used only while its tenant's access epoch is the one
    it was looked up under (one tabledata.list per request, no job); a moved
    epoch means some instance took access away, so the key is looked up again.
    On a lookup the epoch is read first: a change landing between the two
    reads leaves a stale principal under an old epoch, never under the new one.
    """
    bucket = failure_bucket(client, raw_key)
    checksum_ok = bool(raw_key) and well_formed(raw_key or "", pepper)
    key_hash = hash_key(pepper, raw_key or "") if checksum_ok else ""
    hit, principal, epoch = (
        cache.get_with_epoch(key_hash, now) if checksum_ok else (False, None, None)
    )
    if hit and principal is not None:
        current = access_epoch.read(warehouse, principal.tenant_id)
        if current != epoch:
            principal = lookup(warehouse, key_hash, now)
            cache.put(key_hash, principal, current)
            if principal is None:
                cache.limiter.failed(bucket)
                raise unauthorized("missing or invalid X-API-Key")
    else:
        cache.limiter.refuse_if_limited(bucket)
        if not checksum_ok:
            cache.limiter.failed(bucket)
            raise unauthorized("missing or invalid X-API-Key")
        if not hit:
            epoch = access_epoch.read(warehouse, _tenant_of(raw_key or ""))
            principal = lookup(warehouse, key_hash, now)
            cache.put(key_hash, principal, epoch)
    if principal is None:
        cache.limiter.failed(bucket)
        raise unauthorized("missing or invalid X-API-Key")
    if principal.tenant_status in BLOCKED_STATUSES:
        raise forbidden(f"tenant is {principal.tenant_status.lower()}")
    return principal

"""Invitations: a seat under the plan's team size, a token used once, the member's own key."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr

from shared.platform import audit
from shared.platform.errors import ApiError, conflict, not_found, too_many_requests
from shared.platform.identifiers import derived_id
from shared.platform.secrets import API_KEY_PEPPER, require
from shared.tenancy import api_keys
from shared.tenancy.api_keys import BLOCKED_STATUSES, Principal
from shared.tenancy.members import ensure_owner
from shared.tenancy.roles import RANK, Role
from shared.vault.reservations import LEASE, Reservations

if TYPE_CHECKING:
    from shared.deps import Deps
    from shared.platform.warehouse import Warehouse

INVITATION_TTL = dt.timedelta(days=7)
# `invt_` + 43 URL-safe characters (256 random bits); stored only as a peppered HMAC.
TOKEN_RE = re.compile(r"^invt_[A-Za-z0-9_-]{43}$")
INVITATION_ID_RE = re.compile(r"^inv_[0-9a-f]{32}$")
_TENANT_RE = re.compile(r"^[a-z0-9_]{3,50}$")
# A seat is held by an ACTIVE member, a PENDING unexpired invitation, or an
# invitation create in flight (shared.vault.reservations).
SEATS = Reservations("member_reservations", "invitation_id", "tenant_invitations")


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    role: Literal["ADMIN", "EDITOR", "VIEWER"]


class AcceptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str
    token: str


def _seats_sql(warehouse: Warehouse) -> str:
    """Seats taken by tenant @t at @now, in-flight reservations aside."""
    return (
        f"(SELECT COUNT(*) FROM {warehouse.central('tenant_members')} "
        "WHERE tenant_id = @t AND status = 'ACTIVE') + "
        f"(SELECT COUNT(*) FROM {warehouse.central('tenant_invitations')} "
        "WHERE tenant_id = @t AND status = 'PENDING' AND expires_at > @now)"
    )


def _limit_sql(warehouse: Warehouse) -> str:
    return (
        f"(SELECT team_member_limit FROM {warehouse.central('tenant_subscriptions')} "
        "WHERE tenant_id = @t ORDER BY created_at LIMIT 1)"
    )


def _email_taken_sql(warehouse: Warehouse) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {warehouse.central('tenant_members')} WHERE tenant_id = @t "
        "AND status = 'ACTIVE' AND email = @email) OR "
        f"EXISTS (SELECT 1 FROM {warehouse.central('tenant_invitations')} WHERE tenant_id = @t "
        "AND status = 'PENDING' AND expires_at > @now AND email = @email)"
    )


def invitation_id_for(tenant_id: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return "inv_" + uuid.uuid4().hex
    return derived_id("inv_", tenant_id, "invitation", idempotency_key)


def invite(
    deps: Deps, actor: Principal, body: InviteRequest, idempotency_key: str | None
) -> tuple[dict[str, Any], bool]:
    """(invitation with its token shown once, created) or a replay without the token.

    Two statements on the happy path: the seat reservation (a conditional
    UPDATE on the usage row, serialised with every other) and the INSERT under it.
    """
    warehouse = deps.warehouse
    tenant_id = actor.tenant_id
    role = Role(body.role)
    if RANK[role] > RANK[Role(actor.role)]:
        raise ApiError(
            403,
            "forbidden",
            f"a {actor.role} cannot invite a {role.value}",
            required_role=role.value,
            role=actor.role,
        )
    now = deps.clock()
    email = str(body.email).lower()
    invitation_id = invitation_id_for(tenant_id, idempotency_key)
    ensure_owner(warehouse, tenant_id, now)
    params = {"email": email}
    admitted = SEATS.reserve(
        warehouse,
        tenant_id,
        invitation_id,
        role.value,
        now,
        admitted=(
            f"(SELECT COUNT(*) FROM in_flight) + {_seats_sql(warehouse)} < {_limit_sql(warehouse)} "
            f"AND NOT ({_email_taken_sql(warehouse)})"
        ),
        params=params,
        component="members",
    )
    if not admitted:
        return _replay_or_refuse(
            warehouse, tenant_id, invitation_id=invitation_id, email=email, role=role, now=now
        ), False
    pepper = require(deps.secrets, API_KEY_PEPPER)
    token = "invt_" + secrets.token_urlsafe(32)
    expires_at = now + INVITATION_TTL
    inserted = SEATS.insert_reserved(
        warehouse,
        tenant_id,
        invitation_id,
        columns={
            "invitation_id": "@id",
            "tenant_id": "@t",
            "email": "@email",
            "role": "@role",
            "token_hash": "@token_hash",
            "status": "'PENDING'",
            "expires_at": "@expires_at",
            "created_at": "@now",
            "created_by": "@by",
        },
        params={
            "email": email,
            "role": role.value,
            "token_hash": api_keys.hash_key(pepper, token),
            "expires_at": expires_at,
            "now": now,
            "by": actor.member_id,
        },
        now=deps.clock(),
        component="members",
    )
    if not inserted:
        raise ApiError(
            503, "unavailable", "the invitation took too long; retry", headers={"Retry-After": "5"}
        )
    return {
        "invitation_id": invitation_id,
        "email": email,
        "role": role.value,
        "expires_at": expires_at,
        "token": token,
        "token_shown_once": True,
    }, True


def _replay_or_refuse(
    warehouse: Warehouse, tenant_id: str, *, invitation_id: str, email: str, role: Role, now: Any
) -> dict[str, Any]:
    in_flight = SEATS.in_flight_sql(warehouse)
    rows = warehouse.query(
        f"SELECT {_limit_sql(warehouse)} AS seat_limit, {_seats_sql(warehouse)} AS taken, "
        f"(SELECT COUNT(*) FROM ({in_flight})) AS in_flight, "
        f"@id IN (SELECT invitation_id FROM ({in_flight})) AS reserved, "
        f"({_email_taken_sql(warehouse)}) AS email_taken, "
        "ARRAY(SELECT AS STRUCT invitation_id, email, role, status, expires_at "
        f"FROM {warehouse.central('tenant_invitations')} "
        "WHERE tenant_id = @t AND invitation_id = @id LIMIT 1) AS existing",
        {"t": tenant_id, "id": invitation_id, "email": email, "now": now, "fresh": now - LEASE},
        component="members",
        tenant_id=tenant_id,
    )
    row = rows[0]
    if row["seat_limit"] is None:
        raise not_found(f"no tenant '{tenant_id}'")
    existing = list(row["existing"] or [])
    if existing:
        stored = dict(existing[0])
        if stored["email"] != email or stored["role"] != role.value:
            raise conflict(
                "Idempotency-Key was already used with a different invitation",
                field="Idempotency-Key",
            )
        # The token was shown once, to the first answer; a replay never shows it again.
        return {**stored, "replayed": True}
    if row["reserved"]:
        raise conflict(
            "an invitation with this Idempotency-Key is in progress; retry",
            field="Idempotency-Key",
            headers={"Retry-After": "5"},
        )
    if row["email_taken"]:
        raise conflict(f"{email} is already a member or has a pending invitation", field="email")
    limit = int(row["seat_limit"])
    used = int(row["taken"]) + int(row["in_flight"])
    raise too_many_requests(
        f"Team member limit reached. {min(used, limit) if used else limit}/{limit} team members "
        "(members and pending invitations). Remove a member, revoke an invitation "
        "or upgrade the plan.",
        # An in-flight invitation frees its seat within the lease if it never lands.
        retry_after_seconds=int(LEASE.total_seconds()) if row["in_flight"] else 3600,
        limit=limit,
        used=used,
    )


def revoke_invitation(deps: Deps, actor: Principal, invitation_id: str) -> dict[str, Any]:
    """A pending invitation stops working and frees its seat. Idempotent."""
    warehouse = deps.warehouse
    tenant_id = actor.tenant_id
    if not INVITATION_ID_RE.match(invitation_id):
        raise not_found("no such invitation")
    rows = warehouse.query(
        f"SELECT status FROM {warehouse.central('tenant_invitations')} "
        "WHERE tenant_id = @t AND invitation_id = @id",
        {"t": tenant_id, "id": invitation_id},
        component="members",
        tenant_id=tenant_id,
    )
    if not rows:
        raise not_found("no such invitation")
    if rows[0]["status"] == "PENDING":
        warehouse.execute(
            f"UPDATE {warehouse.central('tenant_invitations')} SET status = 'REVOKED' "
            "WHERE tenant_id = @t AND invitation_id = @id AND status = 'PENDING'",
            {"t": tenant_id, "id": invitation_id},
            component="members",
            tenant_id=tenant_id,
        )
    elif rows[0]["status"] == "ACCEPTED":
        raise conflict("the invitation was already accepted; remove the member instead")
    return {"invitation_id": invitation_id, "status": "REVOKED"}


def accept(deps: Deps, body: AcceptRequest) -> dict[str, Any]:
    """Claims the invitation once (conditional UPDATE), adds the member, issues its key once.

    A wrong token, another tenant's token and an unknown one are the same 404.
    """
    warehouse = deps.warehouse
    tenant_id = body.tenant_id
    if not TOKEN_RE.match(body.token) or not _TENANT_RE.match(tenant_id):
        raise not_found("no such invitation")
    pepper = require(deps.secrets, API_KEY_PEPPER)
    token_hash = api_keys.hash_key(pepper, body.token)
    now = deps.clock()
    invitation_id_rows = warehouse.query(
        f"SELECT invitation_id, role, email, status, expires_at, "
        f"(SELECT status FROM {warehouse.central('tenant_profiles')} WHERE tenant_id = @t) "
        "AS tenant_status "
        f"FROM {warehouse.central('tenant_invitations')} "
        "WHERE tenant_id = @t AND token_hash = @h LIMIT 1",
        {"t": tenant_id, "h": token_hash},
        component="members",
        tenant_id=tenant_id,
    )
    if not invitation_id_rows:
        raise not_found("no such invitation")
    invitation = invitation_id_rows[0]
    if invitation["tenant_status"] in BLOCKED_STATUSES:
        raise ApiError(403, "forbidden", f"tenant is {invitation['tenant_status'].lower()}")
    if invitation["status"] != "PENDING":
        raise ApiError(409, "invitation_used", "this invitation was already used or revoked")
    if invitation["expires_at"] <= now:
        raise ApiError(409, "invitation_expired", "this invitation has expired; ask for a new one")
    member_id = derived_id("mem_", tenant_id, str(invitation["invitation_id"]))
    claimed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_invitations')} "
        "SET status = 'ACCEPTED', accepted_at = @now, member_id = @m "
        "WHERE tenant_id = @t AND token_hash = @h AND status = 'PENDING' AND expires_at > @now",
        {"t": tenant_id, "h": token_hash, "now": now, "m": member_id},
        component="members",
        tenant_id=tenant_id,
    )
    if claimed != 1:
        raise ApiError(409, "invitation_used", "this invitation was already used or revoked")
    warehouse.execute(
        f"INSERT INTO {warehouse.central('tenant_members')} "
        "(member_id, tenant_id, email, role, status, invitation_id, created_at, updated_at) "
        "VALUES (@m, @t, @email, @role, 'ACTIVE', @inv, @now, @now)",
        {
            "m": member_id,
            "t": tenant_id,
            "email": invitation["email"],
            "role": invitation["role"],
            "inv": invitation["invitation_id"],
            "now": now,
        },
        component="members",
        tenant_id=tenant_id,
    )
    issued = api_keys.insert_key(
        warehouse,
        pepper,
        tenant_id,
        now,
        created_by=f"invitation:{invitation['invitation_id']}",
        member_id=member_id,
    )
    audit.record(
        warehouse,
        actor=f"member:{member_id}",
        action="members.accept_invitation",
        now=now,
        tenant_id=tenant_id,
        target=str(invitation["invitation_id"]),
        detail={"member_id": member_id, "role": invitation["role"], "key_id": issued.key_id},
    )
    return {
        "tenant_id": tenant_id,
        "member_id": member_id,
        "role": invitation["role"],
        "api_key": issued.key,
        "key_id": issued.key_id,
        "key_prefix": issued.key_prefix,
        "api_key_shown_once": True,
    }

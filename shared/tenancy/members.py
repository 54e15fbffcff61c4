"""A tenant's team: the owner, listing, role changes, ownership transfer and removal."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from shared.platform.errors import ApiError, conflict, not_found
from shared.tenancy import access_epoch
from shared.tenancy.api_keys import Principal
from shared.tenancy.roles import RANK, Role

if TYPE_CHECKING:
    from shared.deps import Deps
    from shared.platform.warehouse import Warehouse

MEMBER_ID_RE = re.compile(r"^mem_[A-Za-z0-9_]{1,80}$")


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


def owner_member_id(tenant_id: str) -> str:
    """The first owner's id: the member every key from before members exists belongs to."""
    return f"mem_{tenant_id}_0"


def ensure_owner(warehouse: Warehouse, tenant_id: str, now: dt.datetime) -> None:
    """Writes the first owner's member row if it is missing (the lazy migration).

    A MERGE on the deterministic id: concurrent first uses conflict on
    production BigQuery and the retried one finds the row, so it is written once.
    """
    warehouse.execute(
        f"MERGE {warehouse.central('tenant_members')} AS m "
        f"USING (SELECT tenant_id, admin_email FROM {warehouse.central('tenant_profiles')} "
        "WHERE tenant_id = @t) AS p "
        "ON m.tenant_id = p.tenant_id AND m.member_id = @id "
        "WHEN NOT MATCHED THEN INSERT "
        "(member_id, tenant_id, email, role, status, created_at, updated_at) "
        "VALUES (@id, p.tenant_id, LOWER(p.admin_email), 'OWNER', 'ACTIVE', @now, @now)",
        {"t": tenant_id, "id": owner_member_id(tenant_id), "now": now},
        component="members",
        tenant_id=tenant_id,
    )


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "member_id": row["member_id"],
        "email": row.get("email"),
        "role": row["role"],
        "status": row["status"],
        "created_at": row.get("created_at"),
        "updated_at": row.get("updated_at"),
    }


def list_members(deps: Deps, tenant_id: str) -> dict[str, Any]:
    """Active members and invitations still pending, in one statement."""
    warehouse = deps.warehouse
    now = deps.clock()
    ensure_owner(warehouse, tenant_id, now)
    rows = warehouse.query(
        "SELECT ARRAY(SELECT AS STRUCT member_id, email, role, status, created_at, updated_at "
        f"FROM {warehouse.central('tenant_members')} WHERE tenant_id = @t AND status = 'ACTIVE' "
        "ORDER BY created_at, member_id) AS members, "
        "ARRAY(SELECT AS STRUCT invitation_id, email, role, expires_at, created_at "
        f"FROM {warehouse.central('tenant_invitations')} WHERE tenant_id = @t "
        "AND status = 'PENDING' AND expires_at > @now ORDER BY created_at) AS invitations",
        {"t": tenant_id, "now": now},
        component="members",
        tenant_id=tenant_id,
    )
    row = rows[0]
    return {
        "members": [_public(dict(m)) for m in row["members"] or []],
        "invitations": [dict(i) for i in row["invitations"] or []],
    }


def _member(warehouse: Warehouse, tenant_id: str, member_id: str) -> dict[str, Any]:
    # A malformed id, another tenant's member and an unknown one all look alike: 404.
    if MEMBER_ID_RE.match(member_id):
        rows = warehouse.query(
            "SELECT member_id, email, role, status, created_at, updated_at "
            f"FROM {warehouse.central('tenant_members')} "
            "WHERE tenant_id = @t AND member_id = @m LIMIT 1",
            {"t": tenant_id, "m": member_id},
            component="members",
            tenant_id=tenant_id,
        )
        if rows:
            return rows[0]
    raise not_found("no such member")


def _may_manage(actor: Principal, target: dict[str, Any]) -> None:
    # Only the owner changes the owner; an ADMIN manages everyone else.
    if target["role"] == Role.OWNER and actor.role != Role.OWNER:
        raise ApiError(
            403,
            "forbidden",
            "only the OWNER may change the owner",
            required_role=Role.OWNER.value,
            role=actor.role,
        )


def change_role(deps: Deps, actor: Principal, member_id: str, role: Role) -> dict[str, Any]:
    """Sets a member's role; OWNER transfers ownership (the old owner becomes ADMIN)."""
    warehouse = deps.warehouse
    tenant_id = actor.tenant_id
    now = deps.clock()
    ensure_owner(warehouse, tenant_id, now)
    target = _member(warehouse, tenant_id, member_id)
    if target["status"] != "ACTIVE":
        raise not_found("no such member")
    _may_manage(actor, target)
    if role == Role.OWNER:
        return _transfer(deps, actor, target, now)
    if target["role"] == Role.OWNER:
        raise conflict(
            "the owner's role changes only by transferring ownership to another member "
            "(set that member's role to OWNER)"
        )
    if RANK[role] > RANK[Role(actor.role)]:
        raise ApiError(
            403,
            "forbidden",
            f"a {actor.role} cannot grant {role.value}",
            required_role=role.value,
            role=actor.role,
        )
    warehouse.execute(
        f"UPDATE {warehouse.central('tenant_members')} "
        "SET role = @role, updated_at = @now, updated_by = @by "
        "WHERE tenant_id = @t AND member_id = @m AND status = 'ACTIVE' AND role != 'OWNER'",
        {"t": tenant_id, "m": member_id, "role": role.value, "now": now, "by": actor.member_id},
        component="members",
        tenant_id=tenant_id,
    )
    # Takes effect on the member's next request, in every instance (see docs/team.md).
    deps.auth_cache.forget_member(tenant_id, member_id)
    access_epoch.bump(deps, tenant_id)
    return _public(_member(warehouse, tenant_id, member_id))


def _transfer(
    deps: Deps, actor: Principal, target: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """One UPDATE: the target becomes OWNER and the owner ADMIN, or nothing changes."""
    warehouse = deps.warehouse
    tenant_id = actor.tenant_id
    if target["member_id"] == actor.member_id:
        return _public(target)  # already the owner: a retried transfer
    changed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_members')} "
        "SET role = IF(member_id = @target, 'OWNER', 'ADMIN'), updated_at = @now, "
        "updated_by = @owner "
        "WHERE tenant_id = @t AND status = 'ACTIVE' AND ("
        "(member_id = @owner AND role = 'OWNER') OR member_id = @target) "
        f"AND (SELECT COUNT(*) FROM {warehouse.central('tenant_members')} "
        "WHERE tenant_id = @t AND status = 'ACTIVE' AND "
        "((member_id = @owner AND role = 'OWNER') OR member_id = @target)) = 2",
        {"t": tenant_id, "owner": actor.member_id, "target": target["member_id"], "now": now},
        component="members",
        tenant_id=tenant_id,
    )
    if changed != 2:
        raise conflict("ownership changed concurrently; reload the team and retry")
    deps.auth_cache.forget_member(tenant_id, actor.member_id or "")
    deps.auth_cache.forget_member(tenant_id, target["member_id"])
    access_epoch.bump(deps, tenant_id)
    return _public(_member(warehouse, tenant_id, target["member_id"]))


def remove_member(deps: Deps, actor: Principal, member_id: str) -> dict[str, Any]:
    """Removes a member and revokes its keys; never the owner. Idempotent."""
    warehouse = deps.warehouse
    tenant_id = actor.tenant_id
    now = deps.clock()
    ensure_owner(warehouse, tenant_id, now)
    target = _member(warehouse, tenant_id, member_id)
    _may_manage(actor, target)
    if target["role"] == Role.OWNER:
        raise conflict("the owner cannot be removed; transfer ownership first")
    warehouse.execute(
        f"UPDATE {warehouse.central('tenant_members')} "
        "SET status = 'REMOVED', removed_at = @now, updated_at = @now, updated_by = @by "
        "WHERE tenant_id = @t AND member_id = @m AND status = 'ACTIVE' AND role != 'OWNER'",
        {"t": tenant_id, "m": member_id, "now": now, "by": actor.member_id},
        component="members",
        tenant_id=tenant_id,
    )
    # The lookup already refuses a removed member's keys; revoking them keeps the
    # key list truthful and survives a member id ever being reused.
    warehouse.execute(
        f"UPDATE {warehouse.central('tenant_api_keys')} SET status = 'REVOKED', revoked_at = @now "
        "WHERE tenant_id = @t AND member_id = @m AND status = 'ACTIVE'",
        {"t": tenant_id, "m": member_id, "now": now},
        component="members",
        tenant_id=tenant_id,
    )
    deps.auth_cache.forget_member(tenant_id, member_id)
    access_epoch.bump(deps, tenant_id)
    return {"member_id": member_id, "status": "REMOVED"}

"""Member roles and what each may do: OWNER > ADMIN > EDITOR > VIEWER, one ladder."""

from __future__ import annotations

from enum import StrEnum

from shared.platform.errors import ApiError


class Role(StrEnum):
    """A member's role; each includes everything the roles below it may do."""

    OWNER = "OWNER"
    ADMIN = "ADMIN"
    EDITOR = "EDITOR"
    VIEWER = "VIEWER"


# Higher rank = more rights. A route names the lowest role it admits.
RANK: dict[Role, int] = {Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3, Role.OWNER: 4}


def parse_role(value: str | None) -> Role | None:
    try:
        return Role(value) if value else None
    except ValueError:
        return None


def allows(held: Role | str | None, required: Role) -> bool:
    """Whether a member holding `held` may call a route needing `required`."""
    role = parse_role(str(held)) if held is not None else None
    return role is not None and RANK[role] >= RANK[required]


def missing_role(required: Role, held: Role | str | None) -> ApiError:
    """403 naming the role the route needs and the one the caller has."""
    return ApiError(
        403,
        "forbidden",
        f"this route needs role {required.value} or higher; your role is {held}",
        required_role=required.value,
        role=str(held) if held is not None else None,
    )

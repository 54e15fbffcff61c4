"""The members function: a tenant's team, invitations and their acceptance (X-API-Key)."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, require_tenant, serve
from shared.tenancy import invitations
from shared.tenancy import members as team
from shared.tenancy.roles import Role

routes = Routes()


@routes.route("/", methods=["GET"], role=Role.ADMIN, auth="tenant", summary="The team")
def list_members(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(team.list_members(request.deps, tenant_id))


@routes.route(
    "/invitations",
    methods=["POST"],
    role=Role.ADMIN,
    auth="tenant",
    body=invitations.InviteRequest,
    status=(201, 200),
    errors=(409, 429),
    idempotency_key=True,
    summary="Invite a member (takes a seat of the plan's team size)",
)
def invite(request: ApiRequest) -> Reply:
    principal = require_tenant(request)
    body = request.model(invitations.InviteRequest)
    key = request.idempotency_key()
    invitation, created = invitations.invite(request.deps, principal, body, key)
    return Reply(invitation, status=201 if created else 200)


@routes.route(
    "/invitations/<invitation_id>",
    methods=["DELETE"],
    role=Role.ADMIN,
    auth="tenant",
    summary="Revoke a pending invitation",
)
def revoke_invitation(request: ApiRequest) -> Reply:
    principal = require_tenant(request)
    return Reply(
        invitations.revoke_invitation(request.deps, principal, request.args["invitation_id"])
    )


@routes.route(
    "/invitations/accept",
    methods=["POST"],
    auth="public",
    body=invitations.AcceptRequest,
    status=(201,),
    errors=(404, 409, 429),
    summary="Accept an invitation: the member's own API key, shown once",
)
def accept_invitation(request: ApiRequest) -> Reply:
    """The invitee has no key yet: the token (in the body, never the URL) is the credential."""
    body = request.model(invitations.AcceptRequest)
    return Reply(invitations.accept(request.deps, body), status=201)


@routes.route(
    "/<member_id>/role",
    methods=["PUT"],
    role=Role.ADMIN,
    auth="tenant",
    body=team.RoleChange,
    errors=(409,),
    summary="Change a member's role (OWNER: transfer ownership)",
)
def change_role(request: ApiRequest) -> Reply:
    principal = require_tenant(request)
    body = request.model(team.RoleChange)
    return Reply(team.change_role(request.deps, principal, request.args["member_id"], body.role))


@routes.route(
    "/<member_id>",
    methods=["DELETE"],
    role=Role.ADMIN,
    auth="tenant",
    errors=(409,),
    summary="Remove a member and revoke its keys",
)
def remove_member(request: ApiRequest) -> Reply:
    principal = require_tenant(request)
    return Reply(team.remove_member(request.deps, principal, request.args["member_id"]))


@functions_framework.http
def members(request: flask.Request) -> flask.Response:
    """Team members: invite, accept, list, change roles, remove."""
    return serve(request, routes, "members")

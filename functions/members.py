"""The members function: a tenant's team, invitations and their acceptance (X-API-Key)."""

from __future__ import annotations

import flask
import functions_framework

from shared.http import ApiRequest, Reply, Routes, require_tenant, serve
from shared.tenancy import invitations
from shared.tenancy import members as team
from shared.tenancy.roles import Role

routes = Routes()


@routes.route("/", methods=["GET"], role=Role.ADMIN)
def list_members(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(team.list_members(request.deps, tenant_id))


@routes.route("/invitations", methods=["POST"], role=Role.ADMIN)
def invite(request: ApiRequest) -> Reply:
    principal = require_tenant(request)
    body = request.model(invitations.InviteRequest)
    key = request.idempotency_key()
    invitation, created = invitations.invite(request.deps, principal, body, key)
    return Reply(invitation, status=201 if created else 200)


@routes.route("/invitations/<invitation_id>", methods=["DELETE"], role=Role.ADMIN)
def revoke_invitation(request: ApiRequest) -> Reply:
    principal = require_tenant(request)
    return Reply(
        invitations.revoke_invitation(request.deps, principal, request.args["invitation_id"])
    )


@routes.route("/invitations/accept", methods=["POST"])
def accept_invitation(request: ApiRequest) -> Reply:
    """The invitee has no key yet: the token (in the body, never the URL) is the credential."""
    body = request.model(invitations.AcceptRequest)
    return Reply(invitations.accept(request.deps, body), status=201)


@routes.route("/<member_id>/role", methods=["PUT"], role=Role.ADMIN)
def change_role(request: ApiRequest) -> Reply:
    principal = require_tenant(request)
    body = request.model(team.RoleChange)
    return Reply(team.change_role(request.deps, principal, request.args["member_id"], body.role))


@routes.route("/<member_id>", methods=["DELETE"], role=Role.ADMIN)
def remove_member(request: ApiRequest) -> Reply:
    principal = require_tenant(request)
    return Reply(team.remove_member(request.deps, principal, request.args["member_id"]))


@functions_framework.http
def members(request: flask.Request) -> flask.Response:
    """Team members: invite, accept, list, change roles, remove."""
    return serve(request, routes, "members")

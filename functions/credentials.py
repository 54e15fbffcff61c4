"""The credentials function: a tenant's encrypted cloud credentials and its provider configs."""

from __future__ import annotations

from typing import Literal

import flask
import functions_framework
from pydantic import BaseModel, Field

from shared.http import ApiRequest, Reply, Routes, require_tenant, serve
from shared.tenancy.roles import Role
from shared.vault import credentials as vault
from shared.vault import provider_configs
from shared.vault.credential_validation import (
    CreateCredentialRequest,
    CredentialValidator,
    RotateCredentialRequest,
    validator_for,
)
from shared.vault.provider_configs import CreateProviderConfigRequest, ProviderConfigFields

routes = Routes()


class ValidateQuery(BaseModel):
    """`?validate=`: format checks only (default), or a live call to the provider."""

    validate_: Literal["format", "live"] = Field(default="format", alias="validate")


def _validator(request: ApiRequest) -> CredentialValidator:
    live_enabled = request.deps.settings.credential_live_validation
    return validator_for(request.raw.args.get("validate"), live_enabled)


@routes.route(
    "/",
    methods=["POST"],
    role=Role.ADMIN,
    auth="tenant",
    body=CreateCredentialRequest,
    query=ValidateQuery,
    status=(201, 200),
    errors=(409, 429),
    idempotency_key=True,
)
def create_credential(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    body = request.model(CreateCredentialRequest)
    key = request.idempotency_key()
    credential, created = vault.create_credential(
        request.deps, tenant_id, body, _validator(request), key
    )
    return Reply(credential, status=201 if created else 200)


@routes.route("/", methods=["GET"], role=Role.VIEWER, auth="tenant")
def list_credentials(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply({"credentials": vault.list_credentials(request.deps, tenant_id)})


@routes.route("/platform-identity", methods=["GET"], role=Role.VIEWER, auth="tenant")
def get_platform_identity(request: ApiRequest) -> Reply:
    """What the tenant's AWS role and Entra app must trust (issuer, subject, audience)."""
    tenant_id = require_tenant(request).tenant_id
    from shared.sources.identity import platform_identity

    return Reply(platform_identity(request.deps.settings, tenant_id))


@routes.route("/<credential_id>", methods=["GET"], role=Role.VIEWER, auth="tenant")
def get_credential(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(vault.get_credential(request.deps, tenant_id, request.args["credential_id"]))


@routes.route("/<credential_id>", methods=["DELETE"], role=Role.ADMIN, auth="tenant", errors=(409,))
def delete_credential(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(vault.delete_credential(request.deps, tenant_id, request.args["credential_id"]))


@routes.route(
    "/<credential_id>/rotate",
    methods=["POST"],
    role=Role.ADMIN,
    auth="tenant",
    body=RotateCredentialRequest,
    query=ValidateQuery,
    errors=(409,),
)
def rotate_credential(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    body = request.model(RotateCredentialRequest)
    rotated = vault.rotate_credential(
        request.deps,
        tenant_id,
        request.args["credential_id"],
        body.credentials,
        _validator(request),
    )
    return Reply(rotated)


@routes.route(
    "/provider-configs",
    methods=["POST"],
    role=Role.ADMIN,
    auth="tenant",
    body=CreateProviderConfigRequest,
    status=(201,),
    errors=(409,),
)
def create_provider_config(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    body = request.model(CreateProviderConfigRequest)
    return Reply(provider_configs.create_config(request.deps, tenant_id, body), status=201)


@routes.route("/provider-configs", methods=["GET"], role=Role.VIEWER, auth="tenant")
def list_provider_configs(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply({"provider_configs": provider_configs.list_configs(request.deps, tenant_id)})


@routes.route("/provider-configs/<config_id>", methods=["GET"], role=Role.VIEWER, auth="tenant")
def get_provider_config(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    return Reply(provider_configs.get_config(request.deps, tenant_id, request.args["config_id"]))


@routes.route(
    "/provider-configs/<config_id>",
    methods=["PUT"],
    role=Role.ADMIN,
    auth="tenant",
    body=ProviderConfigFields,
    errors=(409,),
)
def replace_provider_config(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    body = request.model(ProviderConfigFields)
    replaced = provider_configs.replace_config(
        request.deps, tenant_id, request.args["config_id"], body
    )
    return Reply(replaced)


@routes.route(
    "/provider-configs/<config_id>",
    methods=["DELETE"],
    role=Role.ADMIN,
    auth="tenant",
    errors=(409,),
)
def delete_provider_config(request: ApiRequest) -> Reply:
    tenant_id = require_tenant(request).tenant_id
    deleted = provider_configs.delete_config(request.deps, tenant_id, request.args["config_id"])
    return Reply(deleted)


@functions_framework.http
def credentials(request: flask.Request) -> flask.Response:
    """Cloud credentials (encrypted, metadata-only responses) and provider configs."""
    return serve(request, routes, "credentials")

"""OpenAPI 3.1 documents generated from the route tables and pydantic models, never by hand."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from shared.http import Contract, Handler, Routes

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
_REF = "#/components/schemas/{model}"
_PATH_ARG_RE = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_METHOD_ORDER = ("get", "post", "put", "patch", "delete")

ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "description": "The one JSON error body every error response carries.",
    "required": ["error", "detail", "request_id"],
    "properties": {
        "error": {"type": "string", "description": "a stable machine-readable code"},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
        "request_id": {"type": "string", "description": "quote it when asking for help"},
        "field": {"type": "string", "description": "the field or header at fault"},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

# What each status means here, for the document's reader.
_ERROR_MEANING = {
    400: "Malformed request: bad JSON, a malformed header, or a request the platform refuses",
    401: "Missing or invalid credentials",
    403: "The credentials are valid but may not do this (another tenant, a suspended tenant)",
    404: "No such resource for this caller (another tenant's ids are not found either)",
    409: "Conflicts with the current state, or a duplicate still in flight (see Retry-After)",
    410: "Gone for good: a one-time key already revealed or expired",
    413: "The request body is larger than the limit",
    415: "The body is not application/json",
    422: "The body, query or path fails validation; `field`/`fields` name the problem",
    429: "Too many requests (failed authentications or a plan quota); wait Retry-After seconds",
    503: "Temporarily unavailable (warehouse, bootstrap); retry after Retry-After seconds",
}
# Statuses that always tell the client when to come back.
_RETRY_AFTER = frozenset({429, 503})
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "admin": [{"AdminKey": []}],
    "tenant": [{"ApiKey": []}],
    "scheduler": [{"AdminKey": []}, {"SchedulerToken": []}],
    "stripe": [{"StripeSignature": []}],
    "public": [],
}
SECURITY_SCHEMES: dict[str, Any] = {
    "AdminKey": {"type": "apiKey", "in": "header", "name": "X-Admin-Key"},
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "SchedulerToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "Google-signed OIDC ID token",
    },
    "StripeSignature": {"type": "apiKey", "in": "header", "name": "Stripe-Signature"},
}


def openapi_path(rule: str) -> str:
    """Werkzeug's `/configs/<config_id>` as OpenAPI's `/configs/{config_id}`."""
    path = _PATH_ARG_RE.sub(r"{\1}", rule)
    return path if path == "/" else path.rstrip("/")


def error_statuses(contract: Contract, path_args: list[str]) -> list[int]:
    """The 4xx/5xx a route can answer: derived from what it takes, plus what it declares."""
    statuses = {503}
    if contract.auth in ("admin", "tenant", "scheduler"):
        statuses |= {401, 429}  # 429: the failed-authentication limit (shared/tenancy/api_keys)
    if contract.auth == "stripe":
        statuses |= {400}
    if contract.auth == "tenant":
        statuses.add(403)  # suspended tenant, or another tenant's id in the path
    if path_args:
        statuses |= {404, 422}
    if contract.body is not None:
        statuses |= {400, 413, 415, 422}
    if contract.query is not None:
        statuses.add(422)
    if contract.idempotency_key:
        statuses |= {400, 409}
    statuses |= set(contract.errors)
    return sorted(statuses)


class _Components:
    """components.schemas, filled as models are referenced."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Error": ERROR_BODY}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, Any]:
        schema = model.model_json_schema(
            ref_template=_REF,
            mode="validation" if mode == "validation" else "serialization",
        )
        for name, definition in schema.pop("$defs", {}).items():
            self.schemas.setdefault(name, definition)
        name = model.__name__
        self.schemas.setdefault(name, schema)
        return {"$ref": _REF.format(model=name)}

    def inline(self, model: type[BaseModel]) -> dict[str, Any]:
        """The model's own schema (query parameters are listed one by one)."""
        schema = model.model_json_schema(ref_template=_REF)
        for name, definition in schema.pop("$defs", {}).items():
            self.schemas.setdefault(name, definition)
        return schema


def _json(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": dict(schema)}}


def _retry_after() -> dict[str, Any]:
    return {
        "Retry-After": {
            "description": "seconds to wait before retrying",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    }


def _operation(
    function: str,
    *,
    handler_name: str,
    doc: str | None,
    contract: Contract,
    path_args: list[str],
    components: _Components,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{function}.{handler_name}",
        "tags": [function],
        "summary": contract.summary
        or (doc or "").strip().split("\n", 1)[0]
        or handler_name.replace("_", " "),
        "security": _SECURITY.get(contract.auth or "public", []),
    }
    parameters: list[dict[str, Any]] = [
        {"name": arg, "in": "path", "required": True, "schema": {"type": "string"}}
        for arg in path_args
    ]
    if contract.query is not None:
        schema = components.inline(contract.query)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    if contract.idempotency_key:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "the same key replays the first answer instead of acting twice",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,255}$"},
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if contract.body is not None:
        operation["requestBody"] = {
            "required": not contract.body_optional,
            "content": _json(components.ref(contract.body, "validation")),
        }
    success: dict[str, Any] = (
        components.ref(contract.response, "serialization")
        if contract.response is not None
        else {"type": "object"}
    )
    responses: dict[str, Any] = {
        str(status): {"description": "Success", "content": _json(success)}
        for status in contract.status
    }
    for status in error_statuses(contract, path_args):
        response: dict[str, Any] = {
            "description": _ERROR_MEANING.get(status, "Error"),
            "content": _json({"$ref": _REF.format(model="Error")}),
        }
        if status in _RETRY_AFTER:
            response["headers"] = _retry_after()
        responses[str(status)] = response
    operation["responses"] = responses
    return operation


def operations(routes: Routes) -> list[tuple[str, str, Handler, Contract]]:
    """(OpenAPI path, method, handler, contract) of every route, in table order."""
    found = []
    for rule in routes.map.iter_rules():
        endpoint = str(rule.endpoint)
        handler = routes.handlers[endpoint]
        for method in sorted(rule.methods or (), key=str):
            if method in ("HEAD", "OPTIONS"):
                continue  # werkzeug adds HEAD to GET; OPTIONS is CORS preflight for all
            found.append(
                (openapi_path(rule.rule), method.lower(), handler, routes.contracts[endpoint])
            )
    return found


def build_document(functions: Mapping[str, Routes], *, prefixed: bool) -> dict[str, Any]:
    """One document for these functions; `prefixed` mounts each at /<name> (the local gateway)."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for function, routes in functions.items():
        for path, method, handler, contract in operations(routes):
            full = (f"/{function}" + ("" if path == "/" else path)) if prefixed else path
            args = [m.group(1) for m in re.finditer(r"{([^}]+)}", path)]
            item = paths.setdefault(full, {})
            item[method] = _operation(
                function,
                handler_name=handler.__name__,
                doc=handler.__doc__,
                contract=contract,
                path_args=args,
                components=components,
            )
            # The member role the route table names (issue 21), for the frontend's menus.
            role = routes.roles.get(handler)
            if role is not None:
                item[method]["x-required-role"] = role.value
                item[method]["description"] = f"Needs the {role.value} role or a higher one."
    ordered = {
        path: {m: paths[path][m] for m in _METHOD_ORDER if m in paths[path]}
        for path in sorted(paths)
    }
    title = "Convergence API" if prefixed else f"Convergence {next(iter(functions))} function"
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": API_VERSION,
            "description": "Generated from the functions' route tables and request models.",
        },
        "paths": ordered,
        "components": {"schemas": components.schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def function_document(function: str, routes: Routes) -> dict[str, Any]:
    """What one function serves at GET /openapi.json (paths relative to its own URL)."""
    return build_document({function: routes}, prefixed=False)

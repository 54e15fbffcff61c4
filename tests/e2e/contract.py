"""Checks each response the e2e tests receive against the OpenAPI document."""

from __future__ import annotations

import functools
import re
import urllib.parse
from typing import Any

from jsonschema import Draft202012Validator

from local.gateway import openapi_document

# What must never reach a client: tracebacks, source paths, module and engine names.
INTERNALS = re.compile(
    r"Traceback|File \"|\.py\b|shared\.|functions\.|google\.cloud|google\.api_core"
    r"|bqemulator|duckdb|sqlglot|werkzeug|flask|pydantic_core|KeyError|TypeError|NoneType",
    re.IGNORECASE,
)


class ContractBroken(AssertionError):
    """A response the document does not allow."""


@functools.cache
def _document() -> dict[str, Any]:
    # The same generator the stack serves at /openapi.json, from the same route tables.
    return openapi_document()


@functools.cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """Path templates as regexes; literal templates first, so /configs beats /{id}."""
    found = []
    for template in _document()["paths"]:
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        found.append((re.compile(f"^{pattern}/?$"), template))
    return sorted(found, key=lambda item: item[1].count("{"))


def operation_for(path: str, method: str) -> tuple[str, dict[str, Any]] | None:
    """The documented (template, operation) a request reaches, or None (gateway's own paths)."""
    for pattern, template in _templates():
        if pattern.match(path):
            operation = _document()["paths"][template].get(method.lower())
            if operation is not None:
                return template, operation
    return None


def check_response(method: str, url: str, status: int, headers: dict[str, str], body: Any) -> None:
    """Raises ContractBroken unless the document allows this response to this request."""
    path = urllib.parse.urlsplit(url).path
    found = operation_for(urllib.parse.unquote(path), method)
    if found is None:
        return  # /healthz, /openapi.json, or a path no function serves (a 404 by the gateway)
    template, operation = found
    where = f"{method} {template} -> {status}"
    response = operation["responses"].get(str(status))
    if response is None:
        raise ContractBroken(f"{where}: status not in the document; body {body!r}")
    lower = {k.lower(): v for k, v in headers.items()}
    for name, header in response.get("headers", {}).items():
        if header.get("required") and name.lower() not in lower:
            raise ContractBroken(f"{where}: required header {name} missing")
    schema = response["content"]["application/json"]["schema"]
    root = dict(schema, components=_document()["components"])
    errors = sorted(Draft202012Validator(root).iter_errors(body), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "body"
        raise ContractBroken(f"{where}: {at}: {first.message}")

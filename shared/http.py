"""HTTP plumbing shared by every function: routing, body limits, JSON in and out, CORS, errors."""

from __future__ import annotations

import datetime as dt
import decimal
import hmac
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import flask
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from shared.deps import Deps, deps
from shared.platform.errors import ApiError, bad_request, forbidden, unauthorized
from shared.platform.logs import configure_logging, request_id_var, trace_var
from shared.platform.secrets import ADMIN_API_KEY, API_KEY_PEPPER, require
from shared.tenancy.api_keys import Principal, authenticate_key
from shared.tenancy.roles import Role, allows, missing_role

log = logging.getLogger(__name__)


_CORS_HEADERS = "Content-Type, X-API-Key, X-Admin-Key, Idempotency-Key, X-Request-Id"
_CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
_IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,255}$")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TRACE_ID_RE = re.compile(r"[0-9a-f]{32}")

# Hostile-JSON bounds (docs/decisions.md, Foundation). No API body nests deeper
# than a handful of levels; 64 leaves room and keeps json.loads far from the
# recursion limit. 100 digits is beyond any count, id or amount we accept and
# far below CPython's 4,300-digit int-conversion guard (a ValueError).
MAX_JSON_DEPTH = 64
MAX_NUMBER_CHARS = 100
# C0 controls except TAB, LF and CR, DEL, and C1 controls: never meaningful in
# text, and NUL in particular truncates or corrupts values downstream. TAB/LF/CR
# stay: multi-line values are real (PEM keys in service-account JSON, notes),
# and every response and log line is JSON-escaped, so they can't inject.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Field names are single-line: no control character at all.
_KEY_CONTROL_RE = re.compile("[\\x00-\\x1f\\x7f-\\x9f]")
# A string, or an unterminated one to the end of the text. Possessive and with
# an optional closing quote, so the scan is linear: the plain pattern
# backtracked from every quote of an unterminated string to the end of the
# body, minutes of CPU for a 1 MiB body of escaped quotes.
_JSON_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*+"?', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class _RefusedJson(Exception):
    """A JSON body refused while parsing; carries the 4xx to answer."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.detail)
        self.error = error


def _json_depth(text: str) -> int:
    """The deepest [ / { nesting of a JSON text, found without recursion, in linear time.

    Strings are removed first so brackets inside them don't count; a malformed
    text may over-count, which only turns one 400 into another.
    """
    brackets = _JSON_STRING_RE.sub("", text).encode().translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _RefusedJson(
            unprocessable_number(f"a number has more than {MAX_NUMBER_CHARS} characters")
        )
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text) if len(text) <= MAX_NUMBER_CHARS else math.inf
    if not math.isfinite(value):
        raise _RefusedJson(
            unprocessable_number(
                f"a number has more than {MAX_NUMBER_CHARS} characters or is out of range"
            )
        )
    return value


def _parse_constant(text: str) -> Any:
    raise _RefusedJson(
        unprocessable_number(f"{text} is not a JSON number; NaN and Infinity are refused")
    )


def unprocessable_number(detail: str) -> ApiError:
    return ApiError(422, "invalid_number", detail)


def parse_json_bytes(data: bytes) -> Any:
    """Bounded json.loads: depth, number length, NaN/Infinity and encoding are 4xx, not crashes.

    UTF-8 only (RFC 8259): json.loads would also guess UTF-16 and UTF-32 from
    bytes, which the depth scan can't see through, so the body is decoded
    strictly first and everything after reads the same text.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("invalid_json", "the JSON body must be UTF-8") from None
    if _json_depth(text) > MAX_JSON_DEPTH:
        raise bad_request("invalid_json", f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except _RefusedJson as exc:
        raise exc.error from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request("invalid_json", f"malformed JSON body: {_json_problem(exc)}") from None
    except (ValueError, RecursionError):
        # Belt and braces behind the bounds above; never a 5xx for a body.
        raise bad_request("invalid_json", "malformed JSON body") from None


def refuse_control_characters(value: Any, path: str = "") -> None:
    """422 naming the first string (value or key) holding a control character."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:  # iterative: depth is bounded, but no recursion is needed at all
        where, item = stack.pop()
        if isinstance(item, str):
            if _CONTROL_RE.search(item):
                field_name = where or "body"
                raise ApiError(
                    422,
                    "control_characters",
                    f"{field_name}: control characters (such as NUL) are not allowed",
                    field=field_name,
                )
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                if _KEY_CONTROL_RE.search(str(key)):
                    raise ApiError(
                        422,
                        "control_characters",
                        "a field name contains control characters",
                        field=where or "body",
                    )
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]" if where else f"[{i}]", c) for i, c in enumerate(item))


@dataclass
class Reply:
    """What a handler returns: a status, a JSON body and optional headers."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiRequest:
    """The incoming request plus the path arguments of the matched route."""

    raw: flask.Request
    args: dict[str, str]
    deps: Deps
    _body: bytes | None = None
    # The least role the matched route admits (None: not a tenant route).
    required_role: Role | None = None
    # Set by require_tenant: who made the request, for the audit trail.
    principal: Principal | None = None
    routes: Routes | None = None
    function: str = ""

    def header(self, name: str) -> str | None:
        return self.raw.headers.get(name)

    def body_bytes(self) -> bytes:
        """The raw body, refused past the size limit even without Content-Length."""
        if self._body is None:
            limit = self.deps.settings.max_body_bytes
            if (self.raw.content_length or 0) > limit:
                raise _too_large(limit)
            data = self.raw.stream.read(limit + 1)
            if len(data) > limit:
                raise _too_large(limit)
            self._body = data
        return self._body

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; wrong type, bad JSON or a non-object is a 4xx."""
        mimetype = self.raw.mimetype
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            raise ApiError(415, "unsupported_media_type", "Content-Type must be application/json")
        data = self.body_bytes()
        if not data.strip():
            raise bad_request("invalid_json", "request body is empty; a JSON object is required")
        value = parse_json_bytes(data)
        if not isinstance(value, dict):
            raise bad_request("invalid_json", "the JSON body must be an object")
        # Once, here, for every field of every JSON body: no per-model validators.
        refuse_control_characters(value)
        return value

    def idempotency_key(self) -> str | None:
        """The optional Idempotency-Key header; a malformed one is a 400 naming it."""
        key = self.header("Idempotency-Key")
        if key is not None and not _IDEMPOTENCY_KEY_RE.match(key):
            raise bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1-255 characters of letters, digits and . _ : -",
                field="Idempotency-Key",
            )
        return key

    def model[M: BaseModel](self, model: type[M]) -> M:
        """The body validated into a pydantic model; errors name the field."""
        return parse_model(model, self.json())


def parse_model[M: BaseModel](model: type[M], data: Any) -> M:
    # Also here, for data that is not a JSON body (query-string filters).
    refuse_control_characters(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validation_error(exc: ValidationError) -> ApiError:
    # Only locations and messages: pydantic's `input` could echo a secret back.
    fields = [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    first = fields[0]
    return ApiError(
        422,
        "validation_failed",
        f"{first['field']}: {first['message']}",
        field=first["field"],
        fields=fields,
    )


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "body is not UTF-8"


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body exceeds {limit} bytes")


Handler = Callable[[ApiRequest], Reply]

# Who may call a route: the header the OpenAPI document names and the 401/429 it implies.
Auth = Literal["admin", "tenant", "scheduler", "stripe", "public"]


@dataclass(frozen=True)
class Contract:
    """What a route promises, declared beside it; shared/platform/openapi.py documents it.

    `body`/`query` are the pydantic models the handler validates, `response` the
    model of its success body (None: a JSON object not yet modelled), `status`
    its success codes, `errors` the statuses it answers beyond those the
    generator derives from auth, path ids, body and query (docs/api.md).
    """

    auth: Auth | None = None
    body: type[BaseModel] | None = None
    body_optional: bool = False
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: tuple[int, ...] = (200,)
    errors: tuple[int, ...] = ()
    idempotency_key: bool = False
    summary: str = ""


class Routes:
    """Werkzeug's URL map behind a decorator, so each function lists its routes in one place."""

    def __init__(self) -> None:
        self.map = Map(strict_slashes=False, merge_slashes=True)
        self.handlers: dict[str, Handler] = {}
        # The least member role each handler admits; None for admin/webhook routes.
        self.roles: dict[Handler, Role | None] = {}
        self.contracts: dict[str, Contract] = {}
        # Every function serves its own contract (shared/platform/openapi.py).
        self.route(
            "/openapi.json", methods=["GET"], auth="public", summary="This OpenAPI document"
        )(_openapi_document)

    def route(
        self, rule: str, methods: list[str], role: Role | None = None, **contract: Any
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            endpoint = f"{handler.__name__}:{rule}"
            self.map.add(Rule(rule, endpoint=endpoint, methods=methods))
            self.handlers[endpoint] = handler
            self.roles[handler] = role
            self.contracts[endpoint] = Contract(**contract)
            return handler

        return register

    def match(self, path: str, method: str) -> tuple[Handler, dict[str, str]]:
        adapter = self.map.bind("localhost", path_info=path or "/")
        try:
            endpoint, args = adapter.match(method=method)
        except (NotFound, RequestRedirect):
            # RequestRedirect: merge_slashes answers a path with "//" (e.g. an encoded
            # slash in an id) with a redirect; an API names one resource per path, so
            # such a path names none.
            raise ApiError(404, "not_found", f"no route for {method} {path or '/'}") from None
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            raise ApiError(
                405,
                "method_not_allowed",
                f"{method} is not allowed here; allowed: {allowed}",
                headers={"Allow": allowed},
            ) from None
        return self.handlers[str(endpoint)], {k: str(v) for k, v in args.items()}


def _openapi_document(request: ApiRequest) -> Reply:
    """GET /openapi.json: this function's OpenAPI 3.1 document, generated from its routes."""
    from shared.platform.openapi import function_document

    if request.routes is None:
        raise ApiError(404, "not_found", "no OpenAPI document here")
    return Reply(function_document(request.function, request.routes))


def _cors_headers(request: flask.Request, settings_origins: tuple[str, ...]) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if not origin or origin.rstrip("/") not in settings_origins:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Headers": _CORS_HEADERS,
        "Access-Control-Allow-Methods": _CORS_METHODS,
        "Access-Control-Max-Age": "3600",
        "Vary": "Origin",
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")  # money stays exact and fixed-point: never via float
    if isinstance(value, bytes):
        raise TypeError("bytes never reach a response")
    return str(value)


def _finite(value: Any) -> Any:
    """The value with every NaN/Infinity float replaced by null (they are not JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(body: Any) -> str:
    """Strict JSON out: NaN and Infinity are never emitted (input refuses them too)."""
    try:
        return json.dumps(body, default=_json_default, allow_nan=False)
    except ValueError:
        log.error("non-finite number in a response replaced by null")
        return json.dumps(_finite(body), default=_json_default, allow_nan=False)


def _json_response(body: Any, status: int, headers: dict[str, str]) -> flask.Response:
    response = flask.Response(dumps(body), status=status, mimetype="application/json")
    for key, value in headers.items():
        response.headers[key] = value
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def serve(request: flask.Request, routes: Routes, function_name: str) -> flask.Response:
    """Runs one request through a function's routes; the only place errors become JSON."""
    started = time.perf_counter()
    current = deps()
    configure_logging(current.settings.log_level, current.settings.gcp_project)
    incoming_id = request.headers.get("X-Request-Id", "")
    request_id = incoming_id if _REQUEST_ID_RE.match(incoming_id) else uuid.uuid4().hex
    trace = trace_id(request.headers.get("X-Cloud-Trace-Context"))
    id_token = request_id_var.set(request_id)
    trace_token = trace_var.set(trace)
    cors = _cors_headers(request, current.settings.frontend_origins)
    status, error_code = 503, None
    api_request: ApiRequest | None = None
    try:
        if request.method == "OPTIONS":
            preflight = flask.Response(status=204)
            preflight.headers.update(cors)
            return preflight
        handler, args = routes.match(request.path, request.method)
        api_request = ApiRequest(
            raw=request,
            args=args,
            deps=current,
            required_role=routes.roles.get(handler),
            routes=routes,
            function=function_name,
        )
        reply = handler(api_request)
        status, body, headers = reply.status, reply.body, reply.headers
    except ApiError as err:
        status, body, headers, error_code = err.status, err.body(), err.headers, err.code
    except Exception as exc:
        from shared.platform.bootstrap import names_central_dataset, not_bootstrapped

        if names_central_dataset(exc, current.settings.central_dataset):
            # Not a crash: the platform was never bootstrapped (or lost a table).
            log.error("central table missing", extra={"function": function_name})
            missing = not_bootstrapped()
            status, body, headers = missing.status, missing.body(), missing.headers
            error_code = missing.code
        else:
            # Internal detail goes to the log (redacted); the client gets a request id.
            log.exception("unhandled error", extra={"function": function_name})
            status, headers, error_code = 503, {"Retry-After": "5"}, "unavailable"
            body = {
                "error": "unavailable",
                "detail": "the request could not be completed; retry later",
            }
    finally:
        if api_request is not None and api_request.principal is not None:
            from shared.tenancy.audit_trail import record_request

            record_request(
                api_request,
                function_name=function_name,
                handler=handler,
                status=status,
                error_code=error_code,
                body=body,
            )
        if request.method != "OPTIONS":
            log.info(
                "request",
                extra={
                    "function": function_name,
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "error": error_code,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        request_id_var.reset(id_token)
        trace_var.reset(trace_token)
    body = dict(body, request_id=request_id) if isinstance(body, dict) and status >= 400 else body
    return _json_response(body, status, {**headers, **cors, "X-Request-Id": request_id})


def trace_id(header: str | None) -> str | None:
    """The trace id of an `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` header, if well formed.

    A caller can send the header; anything but 32 hex digits is ignored, so a
    forged value can't name arbitrary text as a trace in our logs.
    """
    candidate = (header or "").split("/", 1)[0].split(";", 1)[0]
    return candidate if _TRACE_ID_RE.fullmatch(candidate) else None


def client_address(request: flask.Request) -> str:
    """The client as the platform's front end saw it, for rate limiting.

    Behind Google's front end (Cloud Functions gen2 / Cloud Run) the peer is
    the proxy and the client's address is the LAST X-Forwarded-For entry: the
    one the front end appended. Earlier entries are whatever the client sent
    and prove nothing. Without the header (local stack), the peer address.
    """
    forwarded = request.headers.get("X-Forwarded-For", "")
    last = forwarded.rsplit(",", 1)[-1].strip()[:64]
    return last or request.remote_addr or "unknown"


def _framework_error(exc: Exception) -> flask.Response:
    """An error Flask or functions-framework answers before serve() runs, as JSON."""
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        status = exc.code
        code = "not_found" if status == 404 else (exc.name or "error").lower().replace(" ", "_")
        detail = f"{exc.name}" if status != 404 else "no route for this path"
    else:
        log.error("framework error", extra={"error_type": type(exc).__name__})
        status, code, detail = 503, "unavailable", "the request could not be completed; retry later"
    body = {"error": code, "detail": detail, "request_id": uuid.uuid4().hex}
    headers = {"Retry-After": "5"} if status == 503 else {}
    return _json_response(body, status, headers)


def install_json_errors(app: flask.Flask) -> None:
    """Makes the functions-framework app answer its own errors with the JSON error body.

    Its URL map (`/<path:path>`, `/robots.txt`, `/favicon.ico`) can answer 404
    or 405 HTML pages without calling the function: e.g. a path holding a
    newline matches none of its rules.
    """
    app.register_error_handler(HTTPException, _framework_error)
    app.register_error_handler(500, _framework_error)


def require_admin(request: ApiRequest) -> None:
    """X-Admin-Key, compared in constant time against the configured admin secret.

    Failures count against the same per-client limit as tenant keys, so a
    client guessing either kind of key gets 429 after FAILED_AUTH_LIMIT.
    """
    limiter = request.deps.auth_cache.limiter
    # Admin keys name no tenant: they share the client's budget with keys that name none.
    client = (client_address(request.raw), "")
    limiter.refuse_if_limited(client)
    expected = require(request.deps.secrets, ADMIN_API_KEY)
    given = request.header("X-Admin-Key") or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        limiter.failed(client)
        raise unauthorized("missing or invalid X-Admin-Key")


def require_tenant(request: ApiRequest, tenant_id: str | None = None) -> Principal:
    """The tenant of the X-API-Key; a different tenant id in the path or body is a 403."""
    current = request.deps
    principal = authenticate_key(
        request.header("X-API-Key"),
        warehouse=current.warehouse,
        pepper=require(current.secrets, API_KEY_PEPPER),
        cache=current.auth_cache,
        now=current.clock(),
        client=client_address(request.raw),
    )
    request.principal = principal  # audited from here on, refusals included
    if tenant_id is not None and tenant_id != principal.tenant_id:
        raise forbidden("the API key does not belong to this tenant")
    # A tenant route that names no role is OWNER-only: a new route fails closed.
    required = request.required_role or Role.OWNER
    if not allows(principal.role, required):
        raise missing_role(required, principal.role)
    return principal

"""One WSGI app mounting every function at /<name>/, each a real functions-framework app.

Every error the gateway answers is the platform's JSON error body
`{"error", "detail", "request_id"}`: its own 404s, whatever functions-framework
or werkzeug answer outside our handlers (e.g. /robots.txt), and the HTTP
server's own refusals before any WSGI code runs (414 URI too long, 400 bad
request line), through `JsonRequestHandler`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import functions_framework
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from main import FUNCTION_NAMES

MAIN_SOURCE = str(Path(__file__).resolve().parent.parent / "main.py")

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def _code(status: int) -> str:
    if status >= 500:
        return "unavailable"
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "bad_request"


def error_body(status: int, detail: str) -> bytes:
    """The platform's JSON error body (no request id came in: a fresh one)."""
    return json.dumps(
        {"error": _code(status), "detail": detail, "request_id": uuid.uuid4().hex}
    ).encode()


def _json_error(status: int, detail: str) -> Response:
    return Response(error_body(status, detail), status=status, mimetype="application/json")


def central_tables_missing() -> list[str]:
    """The probe behind /healthz: central tables absent from the warehouse (one tables.list)."""
    from shared.deps import deps
    from shared.platform.bootstrap import missing_central_tables

    current = deps()
    return missing_central_tables(current.warehouse, current.catalog, timeout=3)


def openapi_document() -> dict[str, Any]:
    """Every function's OpenAPI document merged, each mounted at /<name> as the gateway does."""
    import importlib

    from shared.platform.openapi import build_document

    functions = {
        name: importlib.import_module(f"functions.{name}").routes for name in FUNCTION_NAMES
    }
    return build_document(functions, prefixed=True)


class Health:
    """What /healthz promises: 200 only when a request can be served, else 503 saying why.

    - `starting`: the stack has not finished bootstrapping yet;
    - `not_bootstrapped`: central tables are missing (the cure: POST /admin/bootstrap);
    - `warehouse_unavailable`: the warehouse does not answer.
    The probe's answer is kept for `ttl_seconds`, so a poller costs one
    tables.list per TTL, never a query job.
    """

    def __init__(
        self,
        probe: Callable[[], list[str]] = central_tables_missing,
        ttl_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ready = threading.Event()
        self._probe = probe
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, int, dict[str, Any]] | None = None

    def answer(self) -> tuple[int, dict[str, Any]]:
        if not self.ready.is_set():
            return 503, {"status": "starting", "detail": "bootstrap has not finished yet"}
        with self._lock:
            now = self._clock()
            if self._cached is None or self._cached[0] <= now:
                status, body = self._check()
                self._cached = (now + self._ttl, status, body)
            return self._cached[1], self._cached[2]

    def _check(self) -> tuple[int, dict[str, Any]]:
        try:
            missing = self._probe()
        except Exception:
            return 503, {
                "status": "warehouse_unavailable",
                "detail": "the warehouse does not answer; requests get 503 until it does",
            }
        if missing:
            return 503, {
                "status": "not_bootstrapped",
                "detail": "central tables are missing; an operator must run POST /admin/bootstrap",
                "missing": missing,
            }
        return 200, {"status": "ok", "functions": list(FUNCTION_NAMES)}


def _root_app(health: Health) -> WsgiApp:
    """/healthz, and the JSON 404 for paths that name no function."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path in ("/healthz", "/healthz/"):
            status, body = health.answer()
            response = Response(json.dumps(body), status=status, mimetype="application/json")
            response.headers["Cache-Control"] = "no-store"
            if status == 503:
                response.headers["Retry-After"] = "2"
        elif request.path == "/openapi.json" and request.method in ("GET", "HEAD"):
            response = Response(json.dumps(openapi_document()), mimetype="application/json")
            response.headers["Cache-Control"] = "no-store"
        else:
            response = _json_error(404, "no function at this path")
        return response(environ, start_response)

    return app


class JsonErrors:
    """WSGI middleware: any error response that is not JSON becomes the JSON error body.

    Our handlers already answer JSON (shared/http.serve); this catches what
    functions-framework, Flask and werkzeug answer on their own, and crashes.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        replaced: list[int] = []

        def checked(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            code = int(status.split(maxsplit=1)[0])
            content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
            if code >= 400 and not content_type.startswith("application/json"):
                replaced.append(code)
                return lambda data: None  # the original body is dropped
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, checked)
        except Exception:
            return _json_error(500, "the request could not be completed")(environ, start_response)
        if not replaced:
            return body
        if hasattr(body, "close"):
            body.close()
        status = replaced[0]
        detail = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
        return _json_error(status, detail)(environ, start_response)


class JsonRequestHandler(WSGIRequestHandler):
    """The dev server's own errors (before WSGI: 414, malformed request line) as JSON."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        body = error_body(code, message or HTTPStatus(code).phrase)
        self.close_connection = True
        # A request line too broken to parse leaves the HTTP/0.9 default, which
        # would send the body without a status line or headers.
        self.request_version = "HTTP/1.1"
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)


def build_gateway(health: Health | None = None) -> WsgiApp:
    """Each function is a real functions-framework app, as `--target=<name>` would build it.

    Without `health`, /healthz reports the warehouse as if bootstrap had finished.
    """
    if health is None:
        health = Health()
        health.ready.set()
    mounts: dict[str, WsgiApp] = {
        f"/{name}": functions_framework.create_app(target=name, source=MAIN_SOURCE)
        for name in FUNCTION_NAMES
    }
    return JsonErrors(DispatcherMiddleware(_root_app(health), mounts))

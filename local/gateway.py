"""One WSGI app mounting every function at /<name>/, each a real functions-framework app."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import functions_framework
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Request, Response

from main import FUNCTION_NAMES

MAIN_SOURCE = str(Path(__file__).resolve().parent.parent / "main.py")


def _healthz(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    request = Request(environ)
    if request.path in ("/healthz", "/healthz/"):
        body = {"status": "ok", "functions": list(FUNCTION_NAMES)}
        status = 200
    else:
        body = {"error": "not_found", "detail": f"no function at {request.path}"}
        status = 404
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    return response(environ, start_response)


def build_gateway() -> DispatcherMiddleware:
    """Each function is a real functions-framework app, as `--target=<name>` would build it."""
    mounts = {
        f"/{name}": functions_framework.create_app(target=name, source=MAIN_SOURCE)
        for name in FUNCTION_NAMES
    }
    return DispatcherMiddleware(_healthz, mounts)

"""Property test: random JSON, bytes and header values on every route of every function.

Routes come from each function's URL map, so functions that grow routes are
covered without editing this file. Whatever arrives: never a 5xx, and every
4xx is the JSON error body with `error` and `request_id`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from main import FUNCTION_NAMES
from shared.tenancy.api_keys import FailedAuthLimiter
from tests.conftest import ADMIN_KEY
from tests.integration.conftest import Platform

# Modest on purpose: the whole suite runs on 2 shared cores.
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "40"))  # per function


def _routes() -> list[tuple[str, str, str]]:
    found = []
    for name in FUNCTION_NAMES:
        module = importlib.import_module(f"functions.{name}")
        for rule in module.routes.map.iter_rules():
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((name, rule.rule, method))
    return sorted(found)


ROUTES = _routes()
_ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")

header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=5)
    ),
    max_leaves=25,
)
hostile_bodies = st.sampled_from(
    [
        b"[" * 5000,
        b'{"a": ' + b"9" * 5000 + b"}",
        b'{"a": NaN}',
        b'{"a": -Infinity}',
        b'{"reason": "\\u0000"}',
        b"\xff\xfe\x00",
        b"",
        b"null",
    ]
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    hostile_bodies,
)
# Placeholders replaced by the real tenant id / API key, so that many requests
# get past authentication and reach the JSON parsing and the handlers.
TENANT, API_KEY = "<tenant>", "<api-key>"
headers = st.fixed_dictionaries(
    {
        "Content-Type": st.one_of(st.just("application/json"), header_text),
        "X-Admin-Key": st.one_of(st.just(ADMIN_KEY), header_text),
    },
    optional={
        "X-API-Key": st.one_of(st.just(API_KEY), header_text),
        "Stripe-Signature": header_text,
        "Idempotency-Key": header_text,
        "X-Request-Id": header_text,
        "X-Forwarded-For": header_text,
        "Origin": header_text,
    },
)
path_args = st.one_of(
    st.just(TENANT), st.text(max_size=30).map(lambda text: quote(text, safe="") or "x")
)


@pytest.fixture
def tenant(platform: Platform) -> dict[str, Any]:
    # The failed-authentication limit has its own tests; here it would answer
    # 429 to most examples after the first twenty wrong keys, before the
    # parsing and handlers this property is about.
    platform.deps.auth_cache.limiter = FailedAuthLimiter(limit=10**9)
    return platform.onboarded()


def _path(rule: str, arg: str) -> str:
    return _ARG.sub(lambda _: arg, rule)


def check(response: Any, where: str) -> None:
    status = response.status_code
    assert status < 500, (where, status, response.get_data()[:300])
    if 400 <= status < 500:
        body = json.loads(response.get_data())
        assert isinstance(body, dict) and body.get("error") and body.get("request_id"), (
            where,
            body,
        )


@dataclass(frozen=True)
class Attempt:
    route: tuple[str, str, str]
    arg: str
    body: bytes
    headers: dict[str, str]


def attempts(name: str) -> st.SearchStrategy[Attempt]:
    return st.builds(
        Attempt,
        route=st.sampled_from([r for r in ROUTES if r[0] == name]),
        arg=path_args,
        body=bodies,
        headers=headers,
    )


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_no_input_on_any_route_gets_a_5xx_or_a_non_json_4xx(
    platform: Platform, tenant: dict[str, Any], name: str
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(attempt=attempts(name))
    def one(attempt: Attempt) -> None:
        send(platform, tenant, attempt)

    one()


def send(platform: Platform, tenant: dict[str, Any], attempt: Attempt) -> None:
    name, rule, method = attempt.route
    arg, body, sent_headers = attempt.arg, attempt.body, attempt.headers
    path = _path(rule, tenant["tenant_id"] if arg == TENANT else arg)
    if sent_headers.get("X-API-Key") == API_KEY:
        sent_headers = {**sent_headers, "X-API-Key": tenant["api_key"]}
    response = platform.client(name).open(path, method=method, data=body, headers=sent_headers)
    check(response, f"{method} /{name}{path}")


def test_every_function_exposes_routes_to_the_property_test() -> None:
    assert {name for name, _, _ in ROUTES} == set(FUNCTION_NAMES)


@pytest.mark.parametrize("path", ["/robots.txt", "/favicon.ico", "/a%0Ab", "/x%0D"])
def test_the_frameworks_own_errors_are_the_json_error_body(platform: Platform, path: str) -> None:
    for name in FUNCTION_NAMES:
        response = platform.client(name).get(path)
        check(response, f"GET /{name}{path}")
        assert response.is_json, (name, path, response.status_code)

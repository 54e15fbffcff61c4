"""Hostile JSON on the real function apps against the emulator: always a 4xx naming the problem."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.http import MAX_JSON_DEPTH, MAX_NUMBER_CHARS
from tests.conftest import ADMIN_KEY
from tests.integration.conftest import Platform, new_tenant_id, onboarding_payload
from tests.integration.test_credentials import create_body, rows
from tests.integration.test_onboarding import central_rows


def post_raw(platform: Platform, name: str, path: str, body: bytes, **headers: str) -> Any:
    return platform.client(name).post(
        path, data=body, content_type="application/json", headers=headers
    )


def deep(levels: int) -> bytes:
    return b'{"tenant_id": ' + b"[" * levels + b"]" * levels + b"}"


def assert_json_error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = dict(json.loads(response.get_data()))
    assert body["error"] == error
    assert body["request_id"]
    return body


@pytest.mark.parametrize(
    ("body", "status", "error", "named"),
    [
        (deep(10_000), 400, "invalid_json", "deeper"),
        (deep(MAX_JSON_DEPTH + 1), 400, "invalid_json", "deeper"),
        (b'{"tenant_id": ' + b"7" * 5_000 + b"}", 422, "invalid_number", "number"),
        (b'{"tenant_id": -' + b"7" * 200 + b"}", 422, "invalid_number", "number"),
        (b'{"tenant_id": 1' + b"0" * 400 + b".5}", 422, "invalid_number", "number"),
        (b'{"tenant_id": 1e999}', 422, "invalid_number", "number"),
    ],
    ids=["10000_deep", "one_too_deep", "5000_digits", "negative_200", "long_float", "overflow"],
)
def test_deep_nesting_and_huge_numbers_are_a_4xx_naming_the_problem_on_every_json_route(
    platform: Platform, body: bytes, status: int, error: str, named: str
) -> None:
    tenant = platform.onboarded()
    admin = {"X-Admin-Key": ADMIN_KEY}
    calls = [
        post_raw(platform, "onboard", "/", body, **admin),
        post_raw(platform, "admin", f"/tenants/{tenant['tenant_id']}/suspend", body, **admin),
        post_raw(platform, "admin", f"/tenants/{tenant['tenant_id']}/plan", body, **admin),
        post_raw(platform, "credentials", "/", body, **{"X-API-Key": tenant["api_key"]}),
    ]

    for response in calls:
        assert named in assert_json_error(response, status, error)["detail"]
    [profile] = central_rows(platform.deps, "tenant_profiles", tenant["tenant_id"])
    assert (profile["status"], profile["status_reason"]) == ("TRIALING", None)


def test_json_nested_to_the_limit_is_still_parsed() -> None:
    from shared.http import parse_json_bytes

    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json_bytes(nested) is not None
    assert parse_json_bytes(b'{"a": "[[[[{{{{' + b"[" * 500 + b'"}') == {
        "a": "[[[[{{{{" + "[" * 500
    }
    assert parse_json_bytes(b"1" * MAX_NUMBER_CHARS) == int("1" * MAX_NUMBER_CHARS)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_with_422_and_never_stored(
    platform: Platform, constant: str
) -> None:
    tenant = platform.onboarded()
    body = json.dumps(create_body("GCP", metadata={"team": "finops", "ratio": 0.5}))
    hostile = body.replace("0.5", constant).encode()

    response = post_raw(platform, "credentials", "/", hostile, **{"X-API-Key": tenant["api_key"]})

    detail = assert_json_error(response, 422, "invalid_number")["detail"]
    assert constant.lstrip("-") in detail
    assert rows(platform, tenant["tenant_id"]) == []


def test_no_response_ever_holds_nan_or_infinity() -> None:
    from shared.http import dumps

    text = dumps({"a": float("nan"), "b": [float("inf"), 1.5], "c": {"d": float("-inf")}})

    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"emitted {c}")) == {
        "a": None,
        "b": [None, 1.5],
        "c": {"d": None},
    }


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85"])
def test_control_characters_are_refused_with_422_naming_the_field(
    platform: Platform, char: str
) -> None:
    tenant = platform.onboarded()
    tenant_id = tenant["tenant_id"]
    admin = {"X-Admin-Key": ADMIN_KEY}

    suspend = platform.admin(
        "POST", f"/tenants/{tenant_id}/suspend", json={"reason": f"fraud{char}review"}
    )
    new_id = new_tenant_id()
    onboard = platform.client("onboard").post(
        "/", json=onboarding_payload(new_id, company_name=f"Acme{char} Corp"), headers=admin
    )
    credential = platform.client("credentials").post(
        "/",
        json=create_body("GCP", metadata={"team": {"note": f"a{char}b"}}),
        headers={"X-API-Key": tenant["api_key"]},
    )

    assert assert_json_error(suspend, 422, "control_characters")["field"] == "reason"
    assert assert_json_error(onboard, 422, "control_characters")["field"] == "company_name"
    assert assert_json_error(credential, 422, "control_characters")["field"] == "metadata.team.note"
    assert central_rows(platform.deps, "tenant_profiles", tenant_id)[0]["status"] == "TRIALING"
    assert central_rows(platform.deps, "tenant_profiles", new_id) == []
    assert rows(platform, tenant_id) == []


def test_tabs_and_newlines_stay_allowed_in_free_text(platform: Platform) -> None:
    tenant = platform.onboarded()

    response = platform.admin(
        "POST", f"/tenants/{tenant['tenant_id']}/suspend", json={"reason": "fraud\nreview\tnow"}
    )

    assert response.status_code == 200, response.get_json()


def test_control_characters_in_query_filters_are_refused_with_422(platform: Platform) -> None:
    tenant = platform.onboarded()

    response = platform.tenant_call(
        "pipelines", "GET", "/runs?pipeline=daily%00load", tenant["api_key"]
    )

    assert assert_json_error(response, 422, "control_characters")["field"] == "pipeline"

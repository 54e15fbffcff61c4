"""The HTTP layer: bad input is a clear 4xx JSON error, never a 500 or a stack trace."""

from __future__ import annotations

import datetime as dt
import decimal
import io
from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
from pydantic import BaseModel, ConfigDict, Field

from shared.deps import Deps, use_deps
from shared.http import (
    MAX_JSON_DEPTH,
    MAX_NUMBER_CHARS,
    ApiRequest,
    Reply,
    Routes,
    _json_depth,
    client_address,
    parse_json_bytes,
    refuse_control_characters,
    require_admin,
    serve,
    trace_id,
)
from shared.platform.errors import ApiError
from shared.platform.secrets import ADMIN_API_KEY, StaticSecrets
from tests.conftest import make_settings


class Widget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    size: int


routes = Routes()


@routes.route("/widgets", methods=["POST"])
def create_widget(request: ApiRequest) -> Reply:
    widget = request.model(Widget)
    return Reply({"name": widget.name, "size": widget.size}, status=201)


@routes.route("/widgets/<widget_id>", methods=["GET"])
def get_widget(request: ApiRequest) -> Reply:
    return Reply({"id": request.args["widget_id"]})


@routes.route("/typed", methods=["GET"])
def typed(request: ApiRequest) -> Reply:
    return Reply(
        {
            "at": dt.datetime(2026, 11, 22, 4, 30, tzinfo=dt.UTC),
            "day": dt.date(2026, 11, 22),
            "cost": decimal.Decimal("0.000000001"),
        }
    )


@routes.route("/boom", methods=["GET"])
def boom(request: ApiRequest) -> Reply:
    raise RuntimeError("internal detail /srv/secret/path")


@routes.route("/limited", methods=["GET"])
def limited(request: ApiRequest) -> Reply:
    raise ApiError(429, "quota_exceeded", "daily limit reached", headers={"Retry-After": "60"})


@routes.route("/admin-only", methods=["POST"])
def admin_only(request: ApiRequest) -> Reply:
    require_admin(request)
    return Reply({"ok": True})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[flask.testing.FlaskClient]:
    settings = make_settings(
        tmp_path, frontend_origins=("https://app.example.com",), max_body_bytes=1024
    )
    use_deps(Deps(settings=settings, secrets=StaticSecrets({ADMIN_API_KEY: "adm_right"})))
    app = flask.Flask("test")
    app.add_url_rule(
        "/<path:path>",
        view_func=lambda path: serve(flask.request, routes, "test"),
        methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
    )
    yield app.test_client()
    use_deps(None)


def test_a_valid_json_body_reaches_the_handler(client: flask.testing.FlaskClient) -> None:
    response = client.post("/widgets", json={"name": "w", "size": 2})

    assert response.status_code == 201
    assert response.get_json() == {"name": "w", "size": 2}


def test_malformed_json_is_a_400_naming_the_problem(client: flask.testing.FlaskClient) -> None:
    response = client.post("/widgets", data="{bad", content_type="application/json")

    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_json"
    assert "line 1" in body["detail"]


@pytest.mark.parametrize("data", ["[1, 2]", '"text"', "", "   "])
def test_a_body_that_is_not_a_json_object_is_a_400(
    client: flask.testing.FlaskClient, data: str
) -> None:
    response = client.post("/widgets", data=data, content_type="application/json")

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"


def test_a_wrong_content_type_is_a_415(client: flask.testing.FlaskClient) -> None:
    response = client.post("/widgets", data="name=w", content_type="text/plain")

    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"


def test_a_body_over_the_limit_is_a_413(client: flask.testing.FlaskClient) -> None:
    response = client.post("/widgets", data="x" * 2048, content_type="application/json")

    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


def test_a_chunked_body_over_the_limit_is_a_413_without_content_length(
    client: flask.testing.FlaskClient,
) -> None:
    # A chunked upload: no Content-Length, the server reads until the stream ends.
    response = client.post(
        "/widgets",
        input_stream=io.BytesIO(b"x" * 4096),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert response.status_code == 413


def test_validation_errors_name_every_bad_field(client: flask.testing.FlaskClient) -> None:
    response = client.post("/widgets", json={"name": "", "size": "big", "color": "red"})

    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validation_failed"
    assert {f["field"] for f in body["fields"]} == {"name", "size", "color"}
    assert body["field"] in body["detail"]


def test_validation_errors_never_echo_the_input(client: flask.testing.FlaskClient) -> None:
    response = client.post("/widgets", json={"name": "w", "size": "s3cr3t-value"})

    assert response.status_code == 422
    assert "s3cr3t-value" not in response.get_data(as_text=True)


def test_an_unexpected_error_is_a_503_json_without_internals(
    client: flask.testing.FlaskClient,
) -> None:
    response = client.get("/boom")

    assert response.status_code == 503
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert "/srv/secret/path" not in text
    assert response.get_json()["request_id"] == response.headers["X-Request-Id"]


def test_unknown_route_is_404_and_wrong_method_is_405(client: flask.testing.FlaskClient) -> None:
    assert client.get("/nowhere").status_code == 404
    response = client.delete("/widgets")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


def test_a_path_with_repeated_slashes_is_a_json_404_not_a_redirect_or_5xx(
    client: flask.testing.FlaskClient,
) -> None:
    # Found by the hostile-request property test: an encoded slash in a path
    # argument (0%2F) decodes to "//", which werkzeug answers with a redirect
    # that the router did not expect (a 503).
    for path in ("/widgets/w-1%2F%2F", "/widgets/w%2F%2F1", "/widgets%2F%2Fw-1"):
        response = client.get(path)
        assert response.status_code == 404, (path, response.get_data()[:200])
        assert response.get_json()["error"] == "not_found"


def test_path_arguments_reach_the_handler(client: flask.testing.FlaskClient) -> None:
    assert client.get("/widgets/w-1").get_json() == {"id": "w-1"}


def test_a_429_carries_retry_after(client: flask.testing.FlaskClient) -> None:
    response = client.get("/limited")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"


def test_cors_preflight_answers_configured_origins_only(
    client: flask.testing.FlaskClient,
) -> None:
    allowed = client.options("/widgets", headers={"Origin": "https://app.example.com"})
    other = client.options("/widgets", headers={"Origin": "https://evil.example.com"})

    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "X-API-Key" in allowed.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_headers_are_set_on_normal_responses_for_allowed_origins(
    client: flask.testing.FlaskClient,
) -> None:
    response = client.get("/widgets/1", headers={"Origin": "https://app.example.com"})

    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response.headers["Vary"] == "Origin"
    assert response.headers.get("Access-Control-Allow-Origin") != "*"


def test_admin_routes_refuse_a_missing_or_wrong_admin_key(
    client: flask.testing.FlaskClient,
) -> None:
    assert client.post("/admin-only").status_code == 401
    assert client.post("/admin-only", headers={"X-Admin-Key": "adm_wrong"}).status_code == 401
    assert client.post("/admin-only", headers={"X-Admin-Key": "adm_right"}).status_code == 200


def test_a_safe_request_id_is_echoed_and_an_unsafe_one_replaced(
    client: flask.testing.FlaskClient,
) -> None:
    kept = client.get("/widgets/1", headers={"X-Request-Id": "abc-123"})
    replaced = client.get("/widgets/1", headers={"X-Request-Id": "<script>"})

    assert kept.headers["X-Request-Id"] == "abc-123"
    assert replaced.headers["X-Request-Id"] != "<script>"


def test_dates_are_iso_8601_and_money_stays_exact(client: flask.testing.FlaskClient) -> None:
    assert client.get("/typed").get_json() == {
        "at": "2026-11-22T04:30:00+00:00",
        "day": "2026-11-22",
        "cost": "0.000000001",
    }


# --------------------------------------------------------------- hostile JSON (issue 9)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[{{{{"}', 1),
        ('{"a": "\\"[[[["}', 1),
        ('{"a": "unterminated [[[[', 1),
        ("[" * 10_000, 10_000),
        ("42", 0),
    ],
)
def test_the_depth_scan_counts_brackets_outside_strings_only(text: str, depth: int) -> None:
    assert _json_depth(text) == depth


def test_a_body_of_escaped_quotes_in_an_unterminated_string_is_refused() -> None:
    # The scan used to backtrack from every quote to the end: about 35 minutes
    # of CPU for this body (the suite's 300 s timeout stands guard).
    body = b'{"name": "' + b'\\"' * (512 * 1024)

    with pytest.raises(ApiError) as caught:
        parse_json_bytes(body)

    assert (caught.value.status, caught.value.code) == (400, "invalid_json")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_body_not_in_utf8_is_400_before_any_depth_or_type_check(encoding: str) -> None:
    # U+2200 encodes with a 0x22 byte in UTF-16: a bytes-level scan saw a
    # string start there and missed the brackets after it, and json.loads
    # (which guesses UTF-16/32 from bytes) then parsed 900 levels. Without a
    # BOM the bytes may even be valid UTF-8 (NULs between the characters):
    # then the parser refuses the NULs. Either way, a 400.
    nested = '{"a": "\u2200", "p": ' + "[" * 900 + "]" * 900 + ', "b": "c"}'

    with pytest.raises(ApiError) as caught:
        parse_json_bytes(nested.encode(encoding))

    assert (caught.value.status, caught.value.code) == (400, "invalid_json")


def test_the_bounded_parser_refuses_depth_long_numbers_and_non_finite_values() -> None:
    cases = {
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1): (400, "invalid_json"),
        b"1" * (MAX_NUMBER_CHARS + 1): (422, "invalid_number"),
        b"1e400": (422, "invalid_number"),
        b"[NaN]": (422, "invalid_number"),
        b"-Infinity": (422, "invalid_number"),
        b"\xff": (400, "invalid_json"),
    }
    for text, (status, code) in cases.items():
        with pytest.raises(ApiError) as caught:
            parse_json_bytes(text)
        assert (caught.value.status, caught.value.code) == (status, code), text[:20]
    assert parse_json_bytes(b"[1.5, -2, 1e10]") == [1.5, -2, 1e10]


def test_control_characters_are_found_at_any_depth_and_in_field_names() -> None:
    refuse_control_characters({"a": ["tab\tand\nnewline\r"], "b": {"c": "plain"}})
    for value, field in [
        ({"a": "x\x00"}, "a"),
        ({"a": [{"b": "\x1b[31m"}]}, "a[0].b"),
        ({"a": {"b\x00": 1}}, "a"),
        ({"a": "\x9b"}, "a"),
    ]:
        with pytest.raises(ApiError) as caught:
            refuse_control_characters(value)
        assert caught.value.extra["field"] == field


def test_the_client_address_is_the_last_forwarded_hop() -> None:
    app = flask.Flask(__name__)
    with app.test_request_context(
        "/",
        headers={"X-Forwarded-For": "1.1.1.1, 203.0.113.9"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    ):
        assert client_address(flask.request) == "203.0.113.9"
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "10.0.0.1"}):
        assert client_address(flask.request) == "10.0.0.1"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("105445aa7843bc8bf206b12000100000/1;o=1", "105445aa7843bc8bf206b12000100000"),
        ("105445aa7843bc8bf206b12000100000", "105445aa7843bc8bf206b12000100000"),
        (None, None),
        ("", None),
        ("not-a-trace/1", None),
        ("105445AA7843BC8BF206B12000100000/1", None),
        ("x" * 5000, None),
        ('105445aa7843bc8bf206b12000100000", "severity": "EMERGENCY', None),
    ],
)
def test_only_a_well_formed_trace_id_reaches_the_logs(
    header: str | None, expected: str | None
) -> None:
    assert trace_id(header) == expected

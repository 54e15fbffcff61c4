"""The e2e response check refuses what the OpenAPI document does not allow."""

from __future__ import annotations

import pytest

from tests.e2e.contract import ContractBroken, check_response

BASE = "http://127.0.0.1:8080"
ERROR = {"error": "not_found", "detail": "no such config", "request_id": "r1"}


def test_a_documented_error_with_the_error_body_passes() -> None:
    check_response("GET", f"{BASE}/pipelines/configs/cfg_1", 404, {}, ERROR)


def test_an_undocumented_status_is_refused() -> None:
    with pytest.raises(ContractBroken, match="status not in the document"):
        check_response("GET", f"{BASE}/pipelines/configs/cfg_1", 418, {}, ERROR)


def test_an_error_body_without_its_code_is_refused() -> None:
    with pytest.raises(ContractBroken, match="'error' is a required property"):
        check_response("GET", f"{BASE}/pipelines/configs", 401, {}, {"detail": "x"})


def test_a_429_without_retry_after_is_refused() -> None:
    with pytest.raises(ContractBroken, match="Retry-After"):
        check_response("GET", f"{BASE}/quota", 429, {}, ERROR)
    check_response("GET", f"{BASE}/quota", 429, {"retry-after": "3"}, ERROR)


def test_a_success_body_is_checked_against_its_response_model() -> None:
    with pytest.raises(ContractBroken, match="'api_key' is a required property"):
        check_response("POST", f"{BASE}/onboard", 201, {}, {"tenant_id": "acme"})


def test_an_unmodelled_success_body_must_still_be_a_json_object() -> None:
    check_response("POST", f"{BASE}/pipelines/configs", 201, {}, {"config_id": "cfg_1"})
    with pytest.raises(ContractBroken, match="is not of type 'object'"):
        check_response("POST", f"{BASE}/pipelines/configs", 201, {}, ["not", "an", "object"])


def test_paths_no_function_serves_are_left_to_the_gateway() -> None:
    check_response("GET", f"{BASE}/healthz", 503, {}, {"status": "starting"})
    check_response("GET", f"{BASE}/nothing/here", 404, {}, ERROR)

"""The OpenAPI contract, from the route tables: no route escapes it, none is invented."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from openapi_spec_validator import validate
from werkzeug.test import Client

from local.gateway import build_gateway, openapi_document
from main import FUNCTION_NAMES
from shared.deps import Deps, use_deps
from shared.http import ApiRequest, Reply, Routes
from shared.platform.openapi import build_document, error_statuses, function_document
from shared.platform.secrets import StaticSecrets
from tests.conftest import make_settings

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")
METHODS = ("get", "post", "put", "patch", "delete")


def served_operations() -> set[tuple[str, str]]:
    """(gateway path, method) of every rule every function's route table answers."""
    served = set()
    for name in FUNCTION_NAMES:
        routes: Routes = importlib.import_module(f"functions.{name}").routes
        for rule in routes.map.iter_rules():
            path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule).rstrip("/")
            for method in rule.methods or ():
                if method not in ("HEAD", "OPTIONS"):
                    served.add((f"/{name}{path}", method.lower()))
    return served


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def test_the_merged_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()

    validate(document)  # openapi-spec-validator: raises on any violation of the 3.1 schema

    assert document["openapi"] == "3.1.0"


def test_every_route_a_function_answers_is_documented_and_nothing_else_is() -> None:
    documented = documented_operations(openapi_document())
    served = served_operations()

    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert documented - served == set(), "documented operations no function serves"


def test_every_documented_operation_resolves_to_the_handler_it_names() -> None:
    # A placeholder fills each path id, as a client would: the route table must send
    # the request to the handler the document's operationId names.
    for path, item in openapi_document()["paths"].items():
        function, _, rest = path.lstrip("/").partition("/")
        routes: Routes = importlib.import_module(f"functions.{function}").routes
        concrete = re.sub(r"{[^}]+}", "x_placeholder_1", "/" + rest)
        for method, operation in item.items():
            handler, _ = routes.match(concrete, method.upper())
            assert operation["operationId"] == f"{function}.{handler.__name__}", path


def test_every_route_declares_who_may_call_it() -> None:
    undeclared = [
        f"{name} {rule.rule}"
        for name in FUNCTION_NAMES
        for rule in importlib.import_module(f"functions.{name}").routes.map.iter_rules()
        if importlib.import_module(f"functions.{name}").routes.contracts[str(rule.endpoint)].auth
        is None
    ]

    assert undeclared == [], "declare auth= on these routes (shared/http.py Contract)"


def test_authenticated_operations_document_401_and_429_with_retry_after_and_the_error_body() -> (
    None
):
    document = openapi_document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for status, response in responses.items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
            # Stripe's signature failures are 400, as Stripe's own libraries answer them.
            if operation["security"] and operation["security"] != [{"StripeSignature": []}]:
                assert {"401", "429"} <= set(responses), (method, path)
                assert responses["429"]["headers"]["Retry-After"]["required"] is True
            assert "Retry-After" in responses["503"]["headers"], (method, path)
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "detail", "request_id"]


def test_ids_bodies_and_tenant_keys_bring_their_errors() -> None:
    document = openapi_document()
    get_config = document["paths"]["/pipelines/configs/{config_id}"]["get"]["responses"]
    create = document["paths"]["/pipelines/configs"]["post"]
    onboard = document["paths"]["/onboard"]["post"]

    assert {"401", "403", "404", "429"} <= set(get_config)
    assert {"400", "409", "413", "415", "422"} <= set(create["responses"])
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PipelineConfigRequest"
    }
    assert "Idempotency-Key" in [p["name"] for p in create["parameters"]]
    assert onboard["security"] == [{"AdminKey": []}]
    assert "403" not in onboard["responses"]  # admin keys name no tenant to forbid


def test_request_schemas_come_from_the_pydantic_models() -> None:
    from shared.tenancy.onboarding import OnboardRequest

    schemas = openapi_document()["components"]["schemas"]

    assert schemas["OnboardRequest"]["properties"]["tenant_id"]["pattern"] == (
        OnboardRequest.model_fields["tenant_id"].metadata[0].pattern
    )
    assert schemas["OnboardRequest"]["additionalProperties"] is False


def test_query_models_become_query_parameters() -> None:
    runs = openapi_document()["paths"]["/pipelines/runs"]["get"]
    query = {p["name"] for p in runs["parameters"] if p["in"] == "query"}

    from shared.scheduling.history import RunFilters

    assert query == {(field.alias or name) for name, field in RunFilters.model_fields.items()}


def test_a_new_route_appears_in_the_document_without_being_listed_anywhere() -> None:
    routes = Routes()

    @routes.route("/things/<thing_id>", methods=["DELETE"], auth="tenant", errors=(409,))
    def delete_thing(request: ApiRequest) -> Reply:
        return Reply({})

    document = build_document({"things": routes}, prefixed=True)
    responses = document["paths"]["/things/things/{thing_id}"]["delete"]["responses"]

    assert set(responses) == {"200", "401", "403", "404", "409", "422", "429", "503"}


def test_error_statuses_follow_what_the_route_takes() -> None:
    routes = Routes()

    @routes.route("/tick", methods=["POST"], auth="scheduler")
    def tick(request: ApiRequest) -> Reply:
        return Reply({})

    contract = routes.contracts["tick:/tick"]

    assert error_statuses(contract, []) == [401, 429, 503]
    assert function_document("t", routes)["paths"]["/tick"]["post"]["security"] == [
        {"AdminKey": []},
        {"SchedulerToken": []},
    ]


@pytest.fixture
def unit_deps(tmp_path: Path) -> Iterator[None]:
    use_deps(Deps(settings=make_settings(tmp_path), secrets=StaticSecrets({})))
    yield
    use_deps(None)


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_each_function_serves_its_own_document_at_openapi_json(name: str, unit_deps: None) -> None:
    client = functions_framework.create_app(target=name, source=MAIN).test_client()

    response = client.get("/openapi.json")

    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    routes = importlib.import_module(f"functions.{name}").routes
    assert document == function_document(name, routes)
    assert "/openapi.json" in document["paths"]


def test_the_gateway_serves_the_merged_document(unit_deps: None) -> None:
    client = Client(build_gateway())

    response = client.get("/openapi.json")

    assert response.status_code == 200
    assert response.json == openapi_document()
    assert "/credentials/{credential_id}" in response.json["paths"]


def test_the_quota_report_model_describes_exactly_the_body_the_report_builds() -> None:
    import datetime as dt

    from shared.tenancy.quota import QuotaReport, quota_report

    now = dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)
    snapshot = {
        "plan": "STARTER",
        "daily_run_limit": 6,
        "monthly_run_limit": 100,
        "concurrent_run_limit": 2,
        "daily_runs": 5,
        "usage_date": now.date(),
        "monthly_runs": 5,
        "usage_month": now.date().replace(day=1),
        "running": 1,
    }
    body = {"tenant_id": "acme", **quota_report(snapshot, now)}

    parsed = QuotaReport.model_validate(body)

    assert parsed.model_dump(mode="json") == body


def test_the_document_names_no_source_file_module_or_engine() -> None:
    from tests.e2e.contract import INTERNALS

    text = json.dumps(openapi_document())

    assert [m.group(0) for m in INTERNALS.finditer(text)] == []

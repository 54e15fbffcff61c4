"""Isolation audit: tenant A calls every operation that takes an id with tenant B's ids.

The operations come from the OpenAPI document the stack serves, so a new route
that takes an id is audited without being listed here: it fails until this file
knows how to make B's value for its path parameter (and a valid body, if it
takes one), so the audit can never be passed by a 422 before the ownership check.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shared.tenancy.members import owner_member_id
from tests.e2e.stack import RunningStack, call, call_json, start_stack

# Bodies that pass validation, so the answer is about ownership, not shape.
PIPELINE_CONFIG = {"name": "audit", "pipeline": "dryrun", "schedule_cron": "0 4 * * *"}
PROVIDER_CONFIG = {"currency": "USD"}
BUDGET = {"name": "audit", "amount": "100", "currency": "USD"}
VALID_BODIES: dict[str, dict[str, Any]] = {
    "credentials.rotate_credential": {"credentials": {"api_key": "sk-" + "a" * 48}},
    "credentials.replace_provider_config": PROVIDER_CONFIG,
    "pipelines.replace_config": PIPELINE_CONFIG,
    "pipelines.patch_config": {"is_active": False},
    "costs.replace_budget": BUDGET,
    "costs.patch_budget": {"amount": "1"},
    "members.change_role": {"role": "VIEWER"},
}


@dataclass
class Tenants:
    stack: RunningStack
    key_a: str
    key_b: str
    ids_b: dict[str, str]  # "<path parameter>" or "<function>.<path parameter>" -> B's value


def onboard(stack: RunningStack, prefix: str) -> dict[str, Any]:
    tenant_id = f"{prefix}_{uuid.uuid4().hex[:8]}"
    status, _, body = call_json(
        "POST",
        f"{stack.url}/onboard/",
        {"tenant_id": tenant_id, "company_name": "Audit Co", "admin_email": "ops@audit.example"},
        {"X-Admin-Key": stack.admin_key()},
    )
    assert status == 201, body
    return dict(body)


def created(stack: RunningStack, key: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    status, _, body = call_json("POST", f"{stack.url}{path}", payload, {"X-API-Key": key})
    assert status in (200, 201, 202), (path, body)
    return dict(body)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    stack = start_stack(tmp_path_factory.mktemp("isolation") / "data", timeout=240)
    a, b = onboard(stack, "iso_a"), onboard(stack, "iso_b")
    key_b = b["api_key"]
    credential = created(
        stack,
        key_b,
        "/credentials/",
        {
            "provider": "OPENAI",
            "credential_type": "API_KEY",
            "credential_name": "b spend",
            "credentials": {"api_key": "sk-" + uuid.uuid4().hex * 2},
        },
    )
    provider_config = created(
        stack, key_b, "/credentials/provider-configs", {"provider": "OPENAI", **PROVIDER_CONFIG}
    )
    pipeline_config = created(stack, key_b, "/pipelines/configs", PIPELINE_CONFIG)
    run = created(stack, key_b, "/pipelines/runs", {"config_id": pipeline_config["config_id"]})
    budget = created(stack, key_b, "/costs/budgets", BUDGET)
    # An IP literal that is global: registration checks it without DNS and never calls it.
    webhook = created(stack, key_b, "/notifications/webhooks", {"url": "https://8.8.8.8/audit"})
    invitation = created(
        stack, key_b, "/members/invitations", {"email": "viewer@audit.example", "role": "VIEWER"}
    )
    yield Tenants(
        stack,
        a["api_key"],
        key_b,
        {
            "tenant_id": b["tenant_id"],
            "credential_id": credential["credential_id"],
            "credentials.config_id": provider_config["config_id"],
            "pipelines.config_id": pipeline_config["config_id"],
            "run_id": run["run_ids"][0],
            "key_id": b["api_key_id"],
            "budget_id": budget["budget_id"],
            "webhook_id": webhook["webhook_id"],
            "invitation_id": invitation["invitation_id"],
            "member_id": owner_member_id(b["tenant_id"]),
        },
    )
    assert stack.stop() == 0


def operations_taking_ids(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if any(p["in"] == "path" for p in operation.get("parameters", []))
    ]


def b_value(tenants: Tenants, function: str, parameter: str, admin_only: bool) -> str:
    for name in (f"{function}.{parameter}", parameter):
        if name in tenants.ids_b:
            return tenants.ids_b[name]
    if admin_only:
        return "cs_audit_1"  # a tenant key is refused before any id is read
    raise AssertionError(
        f"{function} takes {{{parameter}}}: add how tenant B gets one to the audit's fixture"
    )


def test_tenant_a_gets_404_or_403_for_every_operation_on_tenant_b_ids(tenants: Tenants) -> None:
    status, _, document = call("GET", f"{tenants.stack.url}/openapi.json")
    assert status == 200
    audited = operations_taking_ids(document)
    answers = {}

    for path, method, operation in audited:
        function = path.strip("/").split("/", 1)[0]
        url = tenants.stack.url + path
        admin_only = {"AdminKey": []} in operation["security"]
        for parameter in (p["name"] for p in operation["parameters"] if p["in"] == "path"):
            value = b_value(tenants, function, parameter, admin_only)
            url = url.replace(f"{{{parameter}}}", value)
        body = None
        if "requestBody" in operation:
            body = VALID_BODIES.get(operation["operationId"], {} if admin_only else None)
            assert body is not None or not operation["requestBody"]["required"], (
                f"{operation['operationId']}: add a valid body to VALID_BODIES"
            )
        # Both headers: A's key as a tenant, and as a (wrong) admin key.
        headers = {"X-API-Key": tenants.key_a, "X-Admin-Key": tenants.key_a}
        status, _, answer = call_json(method.upper(), url, body, headers)
        answers[f"{method.upper()} {path}"] = status
        if admin_only:
            assert status == 401, (path, answer)  # a tenant's key is never an admin key
        else:
            assert status in (403, 404), (method, path, status, answer)

    assert len(audited) >= 15, answers  # the document lists the id-taking routes


def test_b_still_owns_everything_after_the_audit(tenants: Tenants) -> None:
    # Runs after the audit (file order): A's deletes, rotations and cancels changed nothing.
    stack, ids, key_b = tenants.stack, tenants.ids_b, {"X-API-Key": tenants.key_b}
    for path in (
        f"/credentials/{ids['credential_id']}",
        f"/credentials/provider-configs/{ids['credentials.config_id']}",
        f"/pipelines/configs/{ids['pipelines.config_id']}",
        f"/pipelines/runs/{ids['run_id']}",
        f"/costs/budgets/{ids['budget_id']}",
    ):
        status, _, body = call("GET", stack.url + path, headers=key_b)
        assert status == 200, (path, body)
    status, _, config = call(
        "GET", f"{stack.url}/pipelines/configs/{ids['pipelines.config_id']}", headers=key_b
    )
    assert config["is_active"] is True  # A's PATCH {"is_active": false} did not land
    status, _, listed = call("GET", f"{stack.url}/pipelines/configs", headers=key_b)
    assert ids["pipelines.config_id"] in str(listed)
    status, _, hooks = call("GET", f"{stack.url}/notifications/webhooks", headers=key_b)
    assert ids["webhook_id"] in str(hooks)  # A's DELETE did not land
    status, _, team = call("GET", f"{stack.url}/members/", headers=key_b)
    assert ids["invitation_id"] in str(team["invitations"]), team
    roles = {m["member_id"]: m["role"] for m in team["members"]}
    assert roles[ids["member_id"]] == "OWNER", team  # A's role change and removal did not land

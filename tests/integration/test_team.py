"""Members, roles, invitations and the audit trail against the emulator (issue 21)."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import main
from shared.deps import Deps, use_deps
from shared.tenancy.roles import RANK, Role
from tests.counting import CallCounter
from tests.credential_samples import create_body
from tests.integration.conftest import Platform


def _tenant_functions() -> dict[str, Any]:
    """Every function with a tenant route, from main's list: a new one joins the matrix."""
    found = {}
    for name in main.FUNCTION_NAMES:
        routes = importlib.import_module(f"functions.{name}").routes
        if any(contract.auth == "tenant" for contract in routes.contracts.values()):
            found[name] = routes
    return found


TENANT_FUNCTIONS = _tenant_functions()
# Routes that take no X-API-Key: the invitee has no key yet.
PUBLIC_ROUTES = {("members", "accept_invitation")}


def _invite(platform: Platform, key: str, email: str, role: str, **kw: Any) -> Any:
    return platform.tenant_call(
        "members", "POST", "/invitations", key, json={"email": email, "role": role}, **kw
    )


def _member_key(platform: Platform, tenant_id: str, owner_key: str, role: str, email: str) -> str:
    invited = _invite(platform, owner_key, email, role)
    assert invited.status_code == 201, invited.get_json()
    accepted = platform.client("members").post(
        "/invitations/accept", json={"tenant_id": tenant_id, "token": invited.get_json()["token"]}
    )
    assert accepted.status_code == 201, accepted.get_json()
    return str(accepted.get_json()["api_key"])


@pytest.fixture
def team(platform: Platform) -> dict[str, Any]:
    """A SCALE tenant (11 seats) with one member of every role."""
    tenant = platform.onboarded(subscription_plan="SCALE")
    tid, owner = tenant["tenant_id"], tenant["api_key"]
    keys = {"OWNER": owner}
    for role in ("ADMIN", "EDITOR", "VIEWER"):
        keys[role] = _member_key(platform, tid, owner, role, f"{role.lower()}@acme.example")
    return {"tenant_id": tid, "keys": keys}


def _sample_path(rule: str) -> str:
    path = (
        rule.replace("<credential_id>", "cred_" + "0" * 32)
        .replace("<config_id>", "cfg_unknown")
        .replace("<run_id>", "run_unknown")
        .replace("<member_id>", "mem_unknown")
        .replace("<invitation_id>", "inv_" + "0" * 32)
        .replace("<tenant_id>", "TENANT")
    )
    # Any other id (budgets, webhooks, ...): an unknown one, never another tenant's.
    return re.sub(r"<([a-z_]+)>", r"\1_unknown", path)


def _every_route() -> list[tuple[str, str, str, str, Role | None]]:
    found = []
    for name, routes in TENANT_FUNCTIONS.items():
        for rule in routes.map.iter_rules():
            handler = routes.handlers[str(rule.endpoint)]
            if routes.contracts[str(rule.endpoint)].auth != "tenant":
                continue  # /openapi.json, accepting an invitation: no X-API-Key
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((name, handler.__name__, method, rule.rule, routes.roles[handler]))
    return found


def test_every_tenant_route_names_its_role_in_the_route_table() -> None:
    unnamed = [
        (name, handler)
        for name, handler, _, _, role in _every_route()
        if role is None and (name, handler) not in PUBLIC_ROUTES
    ]
    assert unnamed == []


def test_every_route_admits_exactly_the_roles_at_or_above_its_own(
    platform: Platform, team: dict[str, Any]
) -> None:
    tid = team["tenant_id"]
    checked = 0
    for name, handler, method, rule, required in _every_route():
        if required is None:
            continue
        path = _sample_path(rule).replace("TENANT", tid)
        for role in Role:
            response = platform.tenant_call(
                name, method, path, team["keys"][role.value], json={} if method != "GET" else None
            )
            body = response.get_json()
            if RANK[role] >= RANK[required]:
                # Allowed: whatever the handler says about the sample ids, never the role 403.
                assert not (response.status_code == 403 and body.get("required_role")), (
                    name,
                    handler,
                    role,
                    body,
                )
            else:
                assert response.status_code == 403, (name, handler, role, body)
                assert body["error"] == "forbidden"
                assert body["required_role"] == required.value
                assert required.value in body["detail"]
            checked += 1
    assert checked >= 4 * 25


def test_a_viewer_changes_nothing_on_any_mutating_route(
    platform: Platform, team: dict[str, Any]
) -> None:
    viewer = team["keys"]["VIEWER"]
    owner = team["keys"]["OWNER"]
    before = platform.tenant_call("members", "GET", "/", owner).get_json()
    for name, handler, method, rule, required in _every_route():
        if method == "GET" or required is None:
            continue
        path = _sample_path(rule).replace("TENANT", team["tenant_id"])
        response = platform.tenant_call(name, method, path, viewer, json={"role": "OWNER"})
        assert response.status_code == 403, (name, handler)
        assert response.get_json()["required_role"] == required.value
    after = platform.tenant_call("members", "GET", "/", owner).get_json()
    assert before == after
    assert platform.tenant_call("credentials", "GET", "/", owner).get_json()["credentials"] == []


def test_exactly_the_free_seats_are_taken_by_twenty_concurrent_invitations(
    platform: Platform,
) -> None:
    tenant = platform.onboarded(subscription_plan="STARTER")  # 2 seats, the owner holds one
    key = tenant["api_key"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(
            pool.map(lambda i: _invite(platform, key, f"p{i}@acme.example", "VIEWER"), range(20))
        )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [429] * 19
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.get_json()["detail"].startswith("Team member limit reached. 2/2 team members")
    assert int(refused.headers["Retry-After"]) >= 1
    listed = platform.tenant_call("members", "GET", "/", key).get_json()
    assert len(listed["members"]) + len(listed["invitations"]) == 2


def test_a_downgrade_below_the_team_refuses_invitations_and_removes_nobody(
    platform: Platform, team: dict[str, Any]
) -> None:
    owner = team["keys"]["OWNER"]
    platform.tenant_call("quota", "GET", "/", owner)
    assert (
        platform.admin(
            "POST", f"/tenants/{team['tenant_id']}/plan", json={"plan": "STARTER"}
        ).status_code
        == 200
    )

    refused = _invite(platform, owner, "late@acme.example", "VIEWER")

    assert refused.status_code == 429
    assert refused.get_json()["detail"].startswith("Team member limit reached. 2/2")
    assert len(platform.tenant_call("members", "GET", "/", owner).get_json()["members"]) == 4
    for key in team["keys"].values():
        assert platform.tenant_call("quota", "GET", "/", key).status_code == 200


def test_an_invitation_token_works_once_and_never_for_another_tenant(
    platform: Platform,
) -> None:
    a = platform.onboarded()
    b = platform.onboarded()
    token = _invite(platform, a["api_key"], "x@acme.example", "EDITOR").get_json()["token"]
    accept = platform.client("members").post

    foreign = accept("/invitations/accept", json={"tenant_id": b["tenant_id"], "token": token})
    first = accept("/invitations/accept", json={"tenant_id": a["tenant_id"], "token": token})
    replay = accept("/invitations/accept", json={"tenant_id": a["tenant_id"], "token": token})

    assert foreign.status_code == 404
    assert first.status_code == 201
    assert first.get_json()["api_key"].startswith(a["tenant_id"] + "_api_")
    assert replay.status_code == 409 and replay.get_json()["error"] == "invitation_used"
    assert "api_key" not in replay.get_json()


def test_an_expired_invitation_is_refused(platform: Platform) -> None:
    tenant = platform.onboarded()
    token = _invite(platform, tenant["api_key"], "x@acme.example", "EDITOR").get_json()["token"]
    platform.travel_to(dt.datetime.now(dt.UTC) + dt.timedelta(days=7, minutes=1))

    late = platform.client("members").post(
        "/invitations/accept", json={"tenant_id": tenant["tenant_id"], "token": token}
    )

    assert late.status_code == 409 and late.get_json()["error"] == "invitation_expired"


def test_a_member_of_one_tenant_cannot_touch_another_tenants_members(
    platform: Platform, team: dict[str, Any]
) -> None:
    other = platform.onboarded()
    their_member = platform.tenant_call("members", "GET", "/", other["api_key"]).get_json()
    their_id = their_member["members"][0]["member_id"]
    admin = team["keys"]["ADMIN"]

    removed = platform.tenant_call("members", "DELETE", f"/{their_id}", admin)
    promoted = platform.tenant_call(
        "members", "PUT", f"/{their_id}/role", admin, json={"role": "VIEWER"}
    )
    quota = platform.tenant_call("quota", "GET", f"/{other['tenant_id']}", admin)

    assert (removed.status_code, promoted.status_code, quota.status_code) == (404, 404, 403)
    still = platform.tenant_call("members", "GET", "/", other["api_key"]).get_json()
    assert still == their_member


def test_a_removed_member_is_refused_on_its_next_request_inside_the_cache_ttl(
    platform: Platform, team: dict[str, Any]
) -> None:
    editor = team["keys"]["EDITOR"]
    assert platform.tenant_call("quota", "GET", "/", editor).status_code == 200  # cached now
    members = platform.tenant_call("members", "GET", "/", team["keys"]["OWNER"]).get_json()
    editor_id = next(m["member_id"] for m in members["members"] if m["role"] == "EDITOR")

    removed = platform.tenant_call("members", "DELETE", f"/{editor_id}", team["keys"]["ADMIN"])

    assert removed.status_code == 200
    assert platform.tenant_call("quota", "GET", "/", editor).status_code == 401


def test_a_lowered_role_applies_on_the_next_request(
    platform: Platform, team: dict[str, Any]
) -> None:
    admin = team["keys"]["ADMIN"]
    owner = team["keys"]["OWNER"]
    body = create_body("OPENAI")
    assert platform.tenant_call("credentials", "GET", "/", admin).status_code == 200
    members = platform.tenant_call("members", "GET", "/", owner).get_json()
    admin_id = next(m["member_id"] for m in members["members"] if m["role"] == "ADMIN")

    lowered = platform.tenant_call(
        "members", "PUT", f"/{admin_id}/role", owner, json={"role": "VIEWER"}
    )
    create = platform.tenant_call("credentials", "POST", "/", admin, json=body)

    assert lowered.status_code == 200 and lowered.get_json()["role"] == "VIEWER"
    assert create.status_code == 403 and create.get_json()["required_role"] == "ADMIN"


def _instances(platform: Platform) -> tuple[Deps, Deps]:
    """Two function instances (two Cloud Run services): each its own auth cache and client."""
    return tuple(  # type: ignore[return-value]
        Deps(
            settings=platform.deps.settings,
            secrets=platform.deps.secrets,
            _crypto=platform.deps.crypto,
        )
        for _ in range(2)
    )


def _member_id(platform: Platform, owner: str, role: str) -> str:
    members = platform.tenant_call("members", "GET", "/", owner).get_json()["members"]
    return str(next(m["member_id"] for m in members if m["role"] == role))


def test_a_removal_on_one_instance_refuses_the_member_on_another_instances_next_request(
    platform: Platform, team: dict[str, Any]
) -> None:
    editor, owner = team["keys"]["EDITOR"], team["keys"]["OWNER"]
    editor_id = _member_id(platform, owner, "EDITOR")
    members_instance, quota_instance = _instances(platform)
    use_deps(quota_instance)
    assert platform.tenant_call("quota", "GET", "/", editor).status_code == 200  # cached there

    use_deps(members_instance)
    removed = platform.tenant_call("members", "DELETE", f"/{editor_id}", team["keys"]["ADMIN"])
    use_deps(quota_instance)
    after = platform.tenant_call("quota", "GET", "/", editor)

    assert removed.status_code == 200
    assert after.status_code == 401  # not 30 s later: on its very next request
    assert platform.tenant_call("quota", "GET", "/", owner).status_code == 200  # others unaffected


def test_a_lowered_role_on_one_instance_applies_on_another_instances_next_request(
    platform: Platform, team: dict[str, Any]
) -> None:
    admin, owner = team["keys"]["ADMIN"], team["keys"]["OWNER"]
    admin_id = _member_id(platform, owner, "ADMIN")
    members_instance, credentials_instance = _instances(platform)
    use_deps(credentials_instance)
    assert platform.tenant_call("credentials", "GET", "/", admin).status_code == 200

    use_deps(members_instance)
    lowered = platform.tenant_call(
        "members", "PUT", f"/{admin_id}/role", owner, json={"role": "VIEWER"}
    )
    use_deps(credentials_instance)
    create = platform.tenant_call("credentials", "POST", "/", admin, json=create_body("OPENAI"))

    assert lowered.status_code == 200
    assert create.status_code == 403 and create.get_json()["role"] == "VIEWER"


def test_a_suspension_on_one_instance_refuses_every_member_on_another(
    platform: Platform, team: dict[str, Any]
) -> None:
    admin_instance, quota_instance = _instances(platform)
    use_deps(quota_instance)
    for key in team["keys"].values():
        assert platform.tenant_call("quota", "GET", "/", key).status_code == 200

    use_deps(admin_instance)
    assert platform.admin("POST", f"/tenants/{team['tenant_id']}/suspend").status_code == 200
    use_deps(quota_instance)

    for key in team["keys"].values():
        assert platform.tenant_call("quota", "GET", "/", key).status_code == 403


def test_a_warm_key_is_trusted_only_after_one_tabledata_list_and_no_job(
    platform: Platform, team: dict[str, Any]
) -> None:
    counter = CallCounter()
    instance = Deps(
        settings=platform.deps.settings,
        secrets=platform.deps.secrets,
        client_factory=counter.client_factory(),
        _crypto=platform.deps.crypto,
    )
    use_deps(instance)
    viewer = team["keys"]["VIEWER"]
    assert platform.tenant_call("quota", "GET", "/", viewer).status_code == 200
    cold = counter.snapshot()
    counter.reset()

    assert platform.tenant_call("quota", "GET", "/", viewer).status_code == 200

    # Cold: the epoch, the key lookup, the quota read. Warm: the epoch and the quota read.
    assert cold == {"tabledata.list": 1, "jobs.query": 2}
    assert counter.snapshot() == {"tabledata.list": 1, "jobs.query": 1}


def test_ownership_transfers_and_there_is_always_exactly_one_owner(
    platform: Platform, team: dict[str, Any]
) -> None:
    owner = team["keys"]["OWNER"]
    listed = platform.tenant_call("members", "GET", "/", owner).get_json()["members"]
    admin_id = next(m["member_id"] for m in listed if m["role"] == "ADMIN")
    owner_id = next(m["member_id"] for m in listed if m["role"] == "OWNER")

    by_admin = platform.tenant_call("members", "DELETE", f"/{owner_id}", team["keys"]["ADMIN"])
    transfer = platform.tenant_call(
        "members", "PUT", f"/{admin_id}/role", owner, json={"role": "OWNER"}
    )

    assert by_admin.status_code == 403 and by_admin.get_json()["required_role"] == "OWNER"
    assert transfer.status_code == 200
    roles = {
        m["member_id"]: m["role"]
        for m in platform.tenant_call("members", "GET", "/", owner).get_json()["members"]
    }
    assert list(roles.values()).count("OWNER") == 1
    assert roles[admin_id] == "OWNER" and roles[owner_id] == "ADMIN"


def test_a_suspended_tenant_refuses_every_member(platform: Platform, team: dict[str, Any]) -> None:
    assert platform.admin("POST", f"/tenants/{team['tenant_id']}/suspend").status_code == 200
    for key in team["keys"].values():
        assert platform.tenant_call("quota", "GET", "/", key).status_code == 403


def test_mutations_are_audited_with_member_and_outcome_and_no_secret(
    platform: Platform, team: dict[str, Any]
) -> None:
    admin = team["keys"]["ADMIN"]
    body = create_body("OPENAI")
    created = platform.tenant_call("credentials", "POST", "/", admin, json=body)
    assert created.status_code == 201, created.get_json()
    refused = platform.tenant_call("credentials", "POST", "/", team["keys"]["VIEWER"], json=body)
    assert refused.status_code == 403
    invited = _invite(platform, admin, "audited@acme.example", "VIEWER").get_json()

    first = platform.tenant_call("audit", "GET", "/?limit=2", admin)
    assert first.status_code == 200, first.get_json()
    page = first.get_json()
    rest = platform.tenant_call("audit", "GET", f"/?limit=200&cursor={page['next_cursor']}", admin)
    entries = page["entries"] + rest.get_json()["entries"]
    text = json.dumps(entries)

    actions = [(e["action"], e["outcome"], e["role"]) for e in entries]
    assert ("credentials.create_credential", "ok", "ADMIN") in actions
    assert ("credentials.create_credential", "forbidden", "VIEWER") in actions
    assert ("members.invite", "ok", "ADMIN") in actions
    assert created.get_json()["credential_id"] in text
    assert invited["token"] not in text
    for key in team["keys"].values():
        assert key not in text
    for value in json.dumps(body).split('"'):
        if len(value) > 12:
            assert value not in text  # no part of the secret body
    assert len({e["audit_id"] for e in entries}) == len(entries)  # pages never overlap


def test_the_audit_trail_is_for_owners_and_admins_and_filters(
    platform: Platform, team: dict[str, Any]
) -> None:
    admin = team["keys"]["ADMIN"]
    _invite(platform, admin, "f@acme.example", "VIEWER")

    editor = platform.tenant_call("audit", "GET", "/", team["keys"]["EDITOR"])
    filtered = platform.tenant_call("audit", "GET", "/?action=members.invite", admin).get_json()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat().replace("+", "%2B")
    empty = platform.tenant_call("audit", "GET", f"/?from={future}", admin).get_json()
    bad = platform.tenant_call("audit", "GET", "/?cursor=zzz", admin)

    assert editor.status_code == 403 and editor.get_json()["required_role"] == "ADMIN"
    assert filtered["entries"] and {e["action"] for e in filtered["entries"]} == {"members.invite"}
    assert empty["entries"] == []
    assert bad.status_code == 422


def test_a_key_from_before_members_is_the_owners_and_the_owner_is_migrated(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]

    listed = platform.tenant_call("members", "GET", "/", key)

    assert listed.status_code == 200
    [owner] = listed.get_json()["members"]
    assert owner["role"] == "OWNER" and owner["member_id"] == f"mem_{tenant['tenant_id']}_0"
    assert owner["email"] == "finops@acme.example"

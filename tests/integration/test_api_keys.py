"""API-key authentication against the emulator: lookup, cache, rotation, revocation, isolation."""

from __future__ import annotations

from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from shared.deps import Deps, use_deps
from shared.platform.settings import Settings
from shared.tenancy.api_keys import AuthCache
from tests.integration.conftest import Platform


class CountingClient(bigquery.Client):
    """The real client, counting the query jobs it starts."""

    jobs = 0

    def query(self, *args: Any, **kwargs: Any) -> Any:
        CountingClient.jobs += 1
        return super().query(*args, **kwargs)

    def query_and_wait(self, *args: Any, **kwargs: Any) -> Any:
        CountingClient.jobs += 1
        return super().query_and_wait(*args, **kwargs)


def counting_client(settings: Settings) -> bigquery.Client:
    return CountingClient(
        project=settings.gcp_project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=settings.bigquery_emulator_host),
    )


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def other_process(platform: Platform, clock: FakeMonotonic | None = None) -> Deps:
    """Another function instance: same warehouse, its own auth cache."""
    deps = Deps(
        settings=platform.deps.settings,
        secrets=platform.deps.secrets,
        client_factory=counting_client,
        _crypto=platform.deps.crypto,
        _auth_cache=AuthCache(
            platform.deps.settings.auth_cache_ttl_seconds, clock or FakeMonotonic()
        ),
    )
    return deps


def quota_status(platform: Platform, key: str, path: str = "/") -> int:
    return int(platform.tenant_call("quota", "GET", path, key).status_code)


def test_a_valid_key_reads_its_own_quota(platform: Platform) -> None:
    tenant = platform.onboarded()

    response = platform.tenant_call("quota", "GET", "/", tenant["api_key"])

    assert response.status_code == 200
    body = response.get_json()
    assert body["tenant_id"] == tenant["tenant_id"]
    assert {k: body["daily"][k] for k in ("used", "limit", "remaining")} == {
        "used": 0,
        "limit": 25,
        "remaining": 25,
    }
    assert body["running"] == 0
    assert body["concurrent"]["limit"] == 5


def test_a_missing_or_unknown_key_is_401(platform: Platform) -> None:
    tenant = platform.onboarded()
    forged = tenant["api_key"][:-4] + "AAAA"

    assert platform.client("quota").get("/").status_code == 401
    assert quota_status(platform, forged) == 401
    assert quota_status(platform, "x" * 500) == 401


def test_an_unknown_key_costs_the_same_lookup_whether_or_not_its_tenant_exists(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    deps = other_process(platform)
    use_deps(deps)
    unknown_of_real_tenant = f"{tenant['tenant_id']}_api_{'A' * 43}"
    unknown_of_no_tenant = f"nosuchtenant_api_{'A' * 43}"
    costs = []
    for key in (unknown_of_real_tenant, unknown_of_no_tenant):
        before = CountingClient.jobs
        assert quota_status(platform, key) == 401
        costs.append(CountingClient.jobs - before)

    assert costs == [1, 1]


def test_a_warm_request_runs_no_authentication_job(platform: Platform) -> None:
    tenant = platform.onboarded()
    use_deps(other_process(platform))
    platform.tenant_call("quota", "GET", "/", tenant["api_key"])
    before = CountingClient.jobs

    response = platform.tenant_call("quota", "GET", "/", tenant["api_key"])

    assert response.status_code == 200
    # Only the quota read itself (one statement), no key lookup.
    assert CountingClient.jobs - before == 1


def test_tenant_a_key_is_refused_on_tenant_b(platform: Platform) -> None:
    a = platform.onboarded()
    b = platform.onboarded()

    assert quota_status(platform, a["api_key"], f"/{b['tenant_id']}") == 403
    assert quota_status(platform, a["api_key"], f"/{a['tenant_id']}") == 200


def test_a_suspended_tenant_gets_403_and_a_reactivated_one_gets_in(platform: Platform) -> None:
    tenant = platform.onboarded()
    quota_status(platform, tenant["api_key"])  # warm the cache

    platform.admin("POST", f"/tenants/{tenant['tenant_id']}/suspend", json={"reason": "abuse"})
    suspended = platform.tenant_call("quota", "GET", "/", tenant["api_key"])
    platform.admin("POST", f"/tenants/{tenant['tenant_id']}/reactivate")
    reactivated = quota_status(platform, tenant["api_key"])

    assert suspended.status_code == 403
    assert suspended.get_json()["detail"] == "tenant is suspended"
    assert reactivated == 200


def test_rotation_returns_a_new_key_and_the_old_one_works_during_the_overlap(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()

    rotated = platform.admin(
        "POST", f"/tenants/{tenant['tenant_id']}/keys/rotate", json={"overlap_seconds": 3600}
    )

    assert rotated.status_code == 201
    new_key = rotated.get_json()["api_key"]
    assert new_key != tenant["api_key"]
    assert quota_status(platform, new_key) == 200
    assert quota_status(platform, tenant["api_key"]) == 200


def test_rotation_without_overlap_ends_the_old_key_at_once(platform: Platform) -> None:
    tenant = platform.onboarded()
    quota_status(platform, tenant["api_key"])  # cached as valid

    rotated = platform.admin(
        "POST", f"/tenants/{tenant['tenant_id']}/keys/rotate", json={"overlap_seconds": 0}
    )

    assert quota_status(platform, rotated.get_json()["api_key"]) == 200
    assert quota_status(platform, tenant["api_key"]) == 401


def test_revocation_is_immediate_here_and_within_the_ttl_elsewhere(platform: Platform) -> None:
    tenant = platform.onboarded()
    clock = FakeMonotonic()
    elsewhere = other_process(platform, clock)
    use_deps(elsewhere)
    assert quota_status(platform, tenant["api_key"]) == 200  # cached in the other process
    use_deps(platform.deps)
    assert quota_status(platform, tenant["api_key"]) == 200

    revoked = platform.admin(
        "POST", f"/tenants/{tenant['tenant_id']}/keys/{tenant['api_key_id']}/revoke"
    )

    assert revoked.get_json()["revoked"] is True
    assert quota_status(platform, tenant["api_key"]) == 401
    use_deps(elsewhere)
    assert quota_status(platform, tenant["api_key"]) == 200  # still inside its TTL
    clock.now += platform.deps.settings.auth_cache_ttl_seconds + 0.001
    assert quota_status(platform, tenant["api_key"]) == 401


def test_the_auth_cache_ttl_is_at_most_sixty_seconds(platform: Platform) -> None:
    assert 0 < platform.deps.settings.auth_cache_ttl_seconds <= 60

"""API-key authentication against the emulator: lookup, cache, rotation, revocation, isolation."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from google.cloud import bigquery

from shared.deps import Deps, use_deps
from shared.platform.secrets import API_KEY_PEPPER, require
from shared.tenancy import api_keys
from shared.tenancy.api_keys import AuthCache
from tests.conftest import ADMIN_KEY
from tests.integration.conftest import (
    Platform,
    emulator_deps,
    new_tenant_id,
    onboarding_payload,
)


class CountingClient(bigquery.Client):
    """The real client, counting the query jobs it starts."""

    jobs = 0

    def query(self, *args: Any, **kwargs: Any) -> Any:
        CountingClient.jobs += 1
        return super().query(*args, **kwargs)

    def query_and_wait(self, *args: Any, **kwargs: Any) -> Any:
        CountingClient.jobs += 1
        return super().query_and_wait(*args, **kwargs)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def other_process(platform: Platform, clock: FakeMonotonic | None = None) -> Deps:
    """Another function instance: same warehouse, its own auth cache."""
    return emulator_deps(
        platform,
        CountingClient,
        _auth_cache=AuthCache(
            platform.deps.settings.auth_cache_ttl_seconds, clock or FakeMonotonic()
        ),
    )


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
    # Well-formed keys with a valid checksum that were never issued.
    pepper = require(platform.deps.secrets, API_KEY_PEPPER)
    unknown_of_real_tenant = api_keys.generate_key(tenant["tenant_id"], pepper)
    unknown_of_no_tenant = api_keys.generate_key("nosuchtenant", pepper)
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


def test_revocation_is_immediate_here_and_on_the_next_request_elsewhere(
    platform: Platform,
) -> None:
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
    # Inside its cache TTL, but the revocation moved the tenant's access epoch.
    assert quota_status(platform, tenant["api_key"]) == 401


def test_the_auth_cache_ttl_is_at_most_sixty_seconds(platform: Platform) -> None:
    assert 0 < platform.deps.settings.auth_cache_ttl_seconds <= 60


# ------------------------------------------------------------- issue 9: expiry and cost


class WallClock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


class RecordingClient(CountingClient):
    """Counts jobs and keeps each job's byte cap, by the job's component label."""

    caps: ClassVar[list[tuple[str, int | None]]] = []

    def query(self, *args: Any, **kwargs: Any) -> Any:
        config = kwargs.get("job_config")
        if config is not None:
            component = (config.labels or {}).get("component", "")
            RecordingClient.caps.append((component, config.maximum_bytes_billed))
        return super().query(*args, **kwargs)

    def query_and_wait(self, *args: Any, **kwargs: Any) -> Any:
        # The warehouse's path (jobs.query): record it the same way.
        config = kwargs.get("job_config")
        if config is not None:
            component = (config.labels or {}).get("component", "")
            RecordingClient.caps.append((component, config.maximum_bytes_billed))
        return super().query_and_wait(*args, **kwargs)


def recording_process(platform: Platform, wall: WallClock | None = None) -> Deps:
    return emulator_deps(
        platform,
        RecordingClient,
        clock=wall or (lambda: dt.datetime.now(dt.UTC)),
        _auth_cache=AuthCache(platform.deps.settings.auth_cache_ttl_seconds, FakeMonotonic()),
    )


def test_a_cached_key_stops_working_when_its_rotation_overlap_ends(platform: Platform) -> None:
    tenant = platform.onboarded()
    platform.admin(
        "POST", f"/tenants/{tenant['tenant_id']}/keys/rotate", json={"overlap_seconds": 30}
    )
    wall = WallClock()
    use_deps(recording_process(platform, wall))
    assert quota_status(platform, tenant["api_key"]) == 200  # cached, monotonic time frozen

    wall.now += dt.timedelta(seconds=31)

    assert quota_status(platform, tenant["api_key"]) == 401


def wrong_checksum(key: str) -> str:
    last = key[-1]
    return key[:-1] + ("A" if last != "A" else "B")


def test_a_key_of_the_wrong_shape_or_checksum_is_401_without_a_warehouse_job(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    tenant_id = tenant["tenant_id"]
    use_deps(recording_process(platform))
    made_up = [
        "not-a-key",
        f"{tenant_id}_api_" + "A" * 43,  # the old shape: 43 random characters
        wrong_checksum(tenant["api_key"]),
        f"{tenant_id}_api_" + "x" * 40,
        "x" * 199,
        tenant["api_key"] + "\x00",
    ]
    CountingClient.jobs = 0

    statuses = [quota_status(platform, key) for key in made_up]

    assert statuses == [401] * len(made_up)
    assert CountingClient.jobs == 0
    assert quota_status(platform, tenant["api_key"]) == 200


def test_keys_are_self_checking_with_at_least_128_random_bits() -> None:
    pepper = "pepper-for-this-test"
    key = api_keys.generate_key("acme_corp", pepper)
    match = api_keys.KEY_RE.match(key)

    assert match is not None and match.group(1) == "acme_corp"
    assert api_keys.well_formed(key, pepper)
    assert not api_keys.well_formed(wrong_checksum(key), pepper)
    assert not api_keys.well_formed(key, "another-pepper")
    assert not api_keys.well_formed(key.replace("acme_corp", "acme_corq", 1), pepper)
    assert api_keys.RANDOM_BITS >= 128
    assert len({api_keys.generate_key("acme_corp", pepper) for _ in range(200)}) == 200


def test_the_auth_cache_evicts_least_recently_used_entries_and_caches_misses_briefly() -> None:
    clock = FakeMonotonic()
    cache = AuthCache(60, clock, max_entries=3, miss_ttl_seconds=5)
    now = dt.datetime.now(dt.UTC)
    principals = {h: api_keys.Principal("t_" + h, "key_" + h, "ACTIVE") for h in "abcd"}
    for key_hash in "abc":
        cache.put(key_hash, principals[key_hash])
    assert cache.get("a", now) == (True, principals["a"])  # a is now the most recent

    cache.put("d", principals["d"])

    assert cache.get("b", now) == (False, None)  # least recently used: evicted alone
    assert [cache.get(h, now)[0] for h in "acd"] == [True, True, True]
    cache.put("miss", None)
    assert cache.get("miss", now) == (True, None)
    clock.now += 5.001
    assert cache.get("miss", now) == (False, None)
    assert cache.get("d", now) == (True, principals["d"])  # a principal outlives a miss


def test_every_key_lookup_carries_maximum_bytes_billed(platform: Platform) -> None:
    tenant = platform.onboarded()
    use_deps(recording_process(platform))
    RecordingClient.caps = []

    quota_status(platform, tenant["api_key"])
    rotated = platform.admin(
        "POST", f"/tenants/{tenant['tenant_id']}/keys/rotate", json={"overlap_seconds": 0}
    )
    quota_status(platform, tenant["api_key"])  # a well-formed key that is no longer valid

    auth_caps = [cap for component, cap in RecordingClient.caps if component == "auth"]
    assert len(auth_caps) == 2, RecordingClient.caps
    assert all(cap is not None and 0 < cap <= api_keys.LOOKUP_MAX_BYTES for cap in auth_caps)
    assert rotated.status_code == 201


def test_repeated_failed_authentications_from_one_client_get_429_with_retry_after(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    use_deps(recording_process(platform))
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    neighbour = {"X-Forwarded-For": "198.51.100.7"}

    def call(key: str, headers: dict[str, str]) -> Any:
        return platform.tenant_call("quota", "GET", "/", key, headers=headers)

    answers = [call(f"guess-{i}", attacker) for i in range(api_keys.FAILED_AUTH_LIMIT + 3)]

    statuses = [a.status_code for a in answers]
    assert statuses[: api_keys.FAILED_AUTH_LIMIT] == [401] * api_keys.FAILED_AUTH_LIMIT
    assert statuses[api_keys.FAILED_AUTH_LIMIT :] == [429] * 3
    limited = answers[-1]
    assert limited.get_json()["error"] == "too_many_requests"
    assert 0 < int(limited.headers["Retry-After"]) <= api_keys.FAILED_AUTH_WINDOW_SECONDS
    assert call("guess", neighbour).status_code == 401
    # Keys without a tenant prefix count per client; a tenant's key has its own budget.
    assert call(tenant["api_key"], attacker).status_code == 200
    assert call(tenant["api_key"], neighbour).status_code == 200


def test_repeated_wrong_admin_keys_from_one_client_get_429_even_with_the_right_key(
    platform: Platform,
) -> None:
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    neighbour = {"X-Forwarded-For": "198.51.100.7"}

    def tenant_status(key: str, client: dict[str, str]) -> int:
        headers = {"X-Admin-Key": key, **client}
        response = platform.client("admin").get("/tenants/nosuchtenant", headers=headers)
        return int(response.status_code)

    limit = api_keys.FAILED_AUTH_LIMIT
    statuses = [tenant_status(f"adm_guess_{i}", attacker) for i in range(limit + 2)]

    assert statuses == [401] * limit + [429] * 2
    assert tenant_status(ADMIN_KEY, attacker) == 429
    # The other admin-keyed function shares the limit: guessing moves nowhere.
    refused = platform.onboard(onboarding_payload(new_tenant_id()), **attacker)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= api_keys.FAILED_AUTH_WINDOW_SECONDS
    # A tenant key from the same client is refused as well (one budget per client).
    assert platform.tenant_call("quota", "GET", "/", "guess", headers=attacker).status_code == 429
    assert tenant_status(ADMIN_KEY, neighbour) == 404


def _forged(tenant_id: str, index: int) -> str:
    """A key of the right shape for `tenant_id` whose checksum is wrong (refused offline)."""
    return f"{tenant_id}_api_{index:032d}" + "AAAAAAAA"


def test_wrong_keys_for_one_tenant_never_lock_out_another_tenant_behind_the_same_proxy(
    platform: Platform,
) -> None:
    victim, neighbour = platform.onboarded(), platform.onboarded()
    use_deps(recording_process(platform))
    # Production: every tenant call arrives from the frontend's backend, one address.
    frontend = {"X-Forwarded-For": "10.8.0.2"}

    def call(key: str) -> int:
        response = platform.tenant_call("quota", "GET", "/", key, headers=frontend)
        return int(response.status_code)

    assert call(victim["api_key"]) == 200  # the victim's own caller, now known to this instance
    jobs_before = CountingClient.jobs
    guesses = [call(_forged(victim["tenant_id"], i)) for i in range(api_keys.FAILED_AUTH_LIMIT + 2)]
    garbage = [call(f"not-a-key-{i}") for i in range(api_keys.FAILED_AUTH_LIMIT + 2)]
    jobs_after = CountingClient.jobs

    limit = api_keys.FAILED_AUTH_LIMIT
    assert guesses == [401] * limit + [429] * 2
    assert garbage == [401] * limit + [429] * 2
    assert jobs_after == jobs_before  # the checksum refused them all offline
    # The other tenant's callers, cold (no cache entry) and warm, are served...
    assert call(neighbour["api_key"]) == 200
    assert call(neighbour["api_key"]) == 200
    # ...and their own mistakes are counted on their own budget.
    assert call(_forged(neighbour["tenant_id"], 1)) == 401
    # A valid key already known to this instance is served even while its tenant's
    # budget is spent by someone guessing with its prefix.
    assert call(victim["api_key"]) == 200

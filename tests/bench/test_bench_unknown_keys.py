"""Figures for the README: what a flood of made-up API keys costs in BigQuery jobs.

Run with `make bench`. 10,000 random well-formed keys (right shape, wrong
checksum) and 10,000 random strings go to the real quota function; every
query job the real client starts is counted. Goal: 0 jobs. No timing asserts.

Each request comes from its own X-Forwarded-For address so that the failed-
authentication limiter (429) doesn't hide what the key check alone costs; the
limiter's own effect is measured separately.
"""

from __future__ import annotations

import random
import secrets
import string
import time
from typing import Any

from google.cloud import bigquery

from shared.deps import Deps, use_deps
from shared.tenancy import api_keys
from shared.tenancy.api_keys import AuthCache
from tests.integration.conftest import Platform, emulator_deps

REQUESTS = 10_000


class JobCounter(bigquery.Client):
    """The real client, counting every query job it starts."""

    jobs = 0
    auth_jobs = 0

    def query(self, *args: Any, **kwargs: Any) -> Any:
        JobCounter.jobs += 1
        config = kwargs.get("job_config")
        if config is not None and (config.labels or {}).get("component") == "auth":
            JobCounter.auth_jobs += 1
        return super().query(*args, **kwargs)

    def query_and_wait(self, *args: Any, **kwargs: Any) -> Any:
        # The warehouse's path (jobs.query): count it the same way.
        JobCounter.jobs += 1
        config = kwargs.get("job_config")
        if config is not None and (config.labels or {}).get("component") == "auth":
            JobCounter.auth_jobs += 1
        return super().query_and_wait(*args, **kwargs)


def counting_deps(platform: Platform) -> Deps:
    return emulator_deps(
        platform,
        JobCounter,
        _auth_cache=AuthCache(platform.deps.settings.auth_cache_ttl_seconds),
    )


def well_formed_guess(tenant_id: str) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return f"{tenant_id}_api_" + "".join(random.choices(alphabet, k=40))


def random_string() -> str:
    return "".join(random.choices(string.printable.strip(), k=random.randint(1, 200)))


def flood(platform: Platform, label: str, keys: list[str], spread: bool) -> dict[str, int]:
    client = platform.client("quota")
    before = JobCounter.jobs
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    for i, key in enumerate(keys):
        headers = {"X-API-Key": key}
        if spread:
            headers["X-Forwarded-For"] = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
        status = client.get("/", headers=headers).status_code
        statuses[status] = statuses.get(status, 0) + 1
    seconds = time.perf_counter() - started
    jobs = JobCounter.jobs - before
    answered = dict(sorted(statuses.items()))
    print(
        f"BENCH {label:<38} n={len(keys):<6} jobs={jobs:<3} statuses={answered}"
        f"  {len(keys) / seconds:6.0f} req/s"
    )
    return {"jobs": jobs, **{str(k): v for k, v in statuses.items()}}


def test_bench_a_flood_of_made_up_keys_costs_no_bigquery_job(platform: Platform) -> None:
    tenant = platform.onboarded()
    use_deps(counting_deps(platform))
    client = platform.client("quota")
    assert client.get("/", headers={"X-API-Key": tenant["api_key"]}).status_code == 200  # warm

    guesses = flood(
        platform,
        "well-formed keys, wrong checksum",
        [well_formed_guess(tenant["tenant_id"]) for _ in range(REQUESTS)],
        spread=True,
    )
    strings = flood(
        platform, "random strings", [random_string() for _ in range(REQUESTS)], spread=True
    )
    one_client = flood(
        platform,
        "random strings, one client (limiter)",
        [random_string() for _ in range(1_000)],
        spread=False,
    )
    before = JobCounter.auth_jobs
    warm = client.get("/", headers={"X-API-Key": tenant["api_key"], "X-Forwarded-For": "192.0.2.1"})
    auth_jobs_after = JobCounter.auth_jobs - before
    print(f"BENCH valid key afterwards: status={warm.status_code} auth jobs={auth_jobs_after}")

    assert (guesses["jobs"], strings["jobs"], one_client["jobs"]) == (0, 0, 0)
    assert guesses["401"] == strings["401"] == REQUESTS
    assert one_client["429"] == 1_000 - api_keys.FAILED_AUTH_LIMIT
    assert (warm.status_code, auth_jobs_after) == (200, 0)


def test_bench_issued_keys_are_distinct(platform: Platform) -> None:
    pepper = secrets.token_hex(16)
    keys = {api_keys.generate_key("bench_tenant", pepper) for _ in range(REQUESTS)}
    assert len(keys) == REQUESTS
    assert all(api_keys.well_formed(k, pepper) for k in keys)

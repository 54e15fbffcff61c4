"""Figures for the README: bootstrap, onboarding and authenticated request latency on the emulator.

Run with `make bench`. Nothing here asserts a duration: timings vary by machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from shared.deps import Deps, use_deps
from shared.platform.bootstrap import bootstrap_central
from shared.platform.secrets import API_KEY_PEPPER, require
from shared.tenancy import api_keys
from tests.integration.conftest import Platform


def measure(label: str, runs: int, action: Callable[[], object]) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    print(
        f"BENCH {label:<42} n={runs:<4} median={statistics.median(timings):8.1f} ms"
        f"  p95={p95:8.1f} ms"
    )
    return timings


def test_bench_bootstrap_of_an_existing_central_dataset(platform: Platform) -> None:
    measure(
        "bootstrap (all tables exist)",
        5,
        lambda: bootstrap_central(platform.deps.warehouse, platform.deps.catalog),
    )


def test_bench_onboarding(platform: Platform) -> None:
    statuses = []
    measure(
        "onboard a tenant (dataset, tables, views, key)",
        5,
        lambda: statuses.append(platform.onboarded()),
    )

    assert len(statuses) == 5


def test_bench_authenticated_request_cold_and_warm(platform: Platform) -> None:
    tenant = platform.onboarded()

    def cold() -> None:
        # A fresh process: empty auth cache, so the key lookup runs a query.
        use_deps(
            Deps(
                settings=platform.deps.settings,
                secrets=platform.deps.secrets,
                _crypto=platform.deps.crypto,
            )
        )
        response = platform.tenant_call("quota", "GET", "/", tenant["api_key"])
        assert response.status_code == 200

    def warm() -> None:
        response = platform.tenant_call("quota", "GET", "/", tenant["api_key"])
        assert response.status_code == 200

    measure("GET /quota/ cold auth (key lookup query)", 20, cold)
    measure("GET /quota/ warm auth (cached key)", 50, warm)


def test_bench_rejected_unknown_key(platform: Platform) -> None:
    # A checksum-valid key that was never issued: the one kind that costs a lookup.
    bogus = api_keys.generate_key("nosuchtenant", require(platform.deps.secrets, API_KEY_PEPPER))
    made_up = "nosuchtenant_api_" + "A" * 40  # fails the checksum: refused offline

    def unknown(key: str) -> Callable[[], None]:
        def call() -> None:
            use_deps(Deps(settings=platform.deps.settings, secrets=platform.deps.secrets))
            assert platform.tenant_call("quota", "GET", "/", key).status_code == 401

        return call

    measure("GET /quota/ unknown key (401, lookup)", 20, unknown(bogus))
    measure("GET /quota/ made-up key (401, offline)", 20, unknown(made_up))

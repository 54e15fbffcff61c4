"""BigQuery round trips per request, counted exactly, beside the figures of issue 13.

Every REST call the real client makes is counted (tests/counting.py wraps its
HTTP session; the calls still reach the emulator), so the REST and job columns
are exact and the same on every machine; only the milliseconds vary. The
"before" columns are the landed code's figures as issue 13 measured them.

Run with `make bench`. The assertions are on counts only, never on time.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from shared.deps import Deps, use_deps
from tests.conftest import ADMIN_KEY
from tests.counting import CallCounter
from tests.credential_samples import create_body
from tests.integration.conftest import Platform, new_tenant_id, onboarding_payload
from tests.integration.test_round_trips import counted, counter, fresh_instance


@dataclass(frozen=True)
class Before:
    """A row of issue 13's table (landed code, measured through a counting proxy)."""

    rest: int
    jobs: int
    ms: str


BEFORE = {
    "GET /quota/, warm key": Before(6, 2, "~115"),
    "GET /quota/, cold key": Before(9, 3, "~190"),
    "GET /admin/tenants/{id}": Before(12, 4, "~225"),
    "POST /credentials/": Before(10, 4, "~320-360"),
    "POST /onboard/": Before(36, 11, "~1250"),
    "POST /admin/bootstrap, nothing to do": Before(15, 0, "~110"),
}

# The goals of issue 13, as (max REST calls, max jobs) per row; REST calls are
# also held to at most half of today's.
GOALS = {
    "GET /quota/, warm key": (2, 1),
    "GET /quota/, cold key": (3, 2),
    "GET /admin/tenants/{id}": (6, 2),
    "POST /credentials/": (5, 2),
    "POST /onboard/": (19, 7),  # + the welcome message (issue 20)
    "POST /admin/bootstrap, nothing to do": (7, 1),
}


@dataclass
class Row:
    request: str
    rest: int
    jobs: int
    calls: dict[str, int]
    median_ms: float
    deterministic: bool


ROWS: dict[str, Row] = {}

__all__ = ["counted", "counter"]  # fixtures shared with tests/integration/test_round_trips.py


def measure(label: str, counter: CallCounter, runs: int, action: Callable[[], Any]) -> Row:
    """Runs `action` `runs` times; counts each run's calls and keeps the median time."""
    timings, counts = [], []
    for _ in range(runs):
        counter.reset()
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
        counts.append(counter.snapshot())
    first = counts[0]
    row = Row(
        request=label,
        rest=sum(first.values()),
        jobs=sum(n for k, n in first.items() if k in ("jobs.query", "jobs.insert")),
        calls=first,
        median_ms=statistics.median(timings),
        deterministic=all(c == first for c in counts),
    )
    ROWS[label] = row
    before = BEFORE.get(label)
    was_rest, was_jobs = (before.rest, before.jobs) if before else ("-", "-")
    print(
        f"BENCH {label:<40} REST {row.rest:>3} (was {was_rest:>2})  "
        f"jobs {row.jobs:>2} (was {was_jobs:>2})  median {row.median_ms:7.1f} ms  "
        f"{dict(sorted(first.items()))}"
    )
    return row


def check_goal(row: Row) -> None:
    max_rest, max_jobs = GOALS[row.request]
    assert row.deterministic, f"{row.request}: call counts vary between runs"
    assert row.rest <= max_rest and row.rest * 2 <= BEFORE[row.request].rest, row
    assert row.jobs <= max_jobs, row


def test_bench_quota_warm_and_cold_key(counted: Platform, counter: CallCounter) -> None:
    tenant = counted.onboarded()
    key = tenant["api_key"]

    def warm() -> None:
        assert counted.tenant_call("quota", "GET", "/", key).status_code == 200

    def cold() -> None:
        # A fresh instance: empty auth cache, so the key lookup runs a query.
        fresh_instance(counted, counter)
        warm()

    warm()
    check_goal(measure("GET /quota/, warm key", counter, 20, warm))
    check_goal(measure("GET /quota/, cold key", counter, 10, cold))


def test_bench_admin_tenant_status(counted: Platform, counter: CallCounter) -> None:
    tenant_id = counted.onboarded()["tenant_id"]

    def status() -> None:
        assert counted.admin("GET", f"/tenants/{tenant_id}").status_code == 200

    check_goal(measure("GET /admin/tenants/{id}", counter, 10, status))


def test_bench_credential_create(counted: Platform, counter: CallCounter) -> None:
    tenant = counted.onboarded()
    key = tenant["api_key"]
    assert counted.tenant_call("quota", "GET", "/", key).status_code == 200  # warm the key

    def create() -> None:
        response = counted.tenant_call("credentials", "POST", "/", key, json=create_body("OPENAI"))
        assert response.status_code == 201, response.get_json()

    check_goal(measure("POST /credentials/", counter, 8, create))


def test_bench_onboarding(counted: Platform, counter: CallCounter) -> None:
    def onboard() -> None:
        response = counted.onboard(onboarding_payload(new_tenant_id()))
        assert response.status_code == 201, response.get_json()

    check_goal(measure("POST /onboard/", counter, 5, onboard))


def test_bench_bootstrap_with_nothing_to_do(counted: Platform, counter: CallCounter) -> None:
    def bootstrap() -> None:
        response = counted.admin("POST", "/bootstrap")
        assert response.status_code == 200 and response.get_json()["created"] == []

    check_goal(measure("POST /admin/bootstrap, nothing to do", counter, 10, bootstrap))


def _config(platform: Platform, key: str) -> dict[str, Any]:
    body = {
        "name": "bench",
        "pipeline": "dryrun",
        "schedule_cron": "0 3 * * *",
        "timezone": "UTC",
    }
    response = platform.tenant_call("pipelines", "POST", "/configs", key, json=body)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def test_bench_run_api(counted: Platform, counter: CallCounter) -> None:
    key = counted.onboarded()["api_key"]
    config = _config(counted, key)
    dates = iter(f"2026-06-{day:02d}" for day in range(1, 29))
    started: list[str] = []

    def start_run() -> None:
        body = {"config_id": config["config_id"], "run_date": next(dates)}
        response = counted.tenant_call("pipelines", "POST", "/runs", key, json=body)
        assert response.status_code == 202, response.get_json()
        started.append(response.get_json()["run_ids"][0])

    def get_run() -> None:
        response = counted.tenant_call("pipelines", "GET", f"/runs/{started[0]}", key)
        assert response.status_code == 200, response.get_json()

    # Within the plan's concurrency (PROFESSIONAL: 5): every start is admitted.
    measure("POST /pipelines/runs (manual run)", counter, 4, start_run)
    measure("GET /pipelines/runs/{id}", counter, 10, get_run)


def test_bench_trigger_tick(counted: Platform, counter: CallCounter) -> None:
    def travel_to(when: dt.datetime) -> None:
        # Platform.travel_to would build an uncounted client: keep the counter attached.
        use_deps(
            Deps(
                settings=counted.deps.settings,
                secrets=counted.deps.secrets,
                clock=lambda: when,
                client_factory=counter.client_factory(),
                _crypto=counted.deps.crypto,
            )
        )

    tenants = [counted.onboarded() for _ in range(3)]
    travel_to(dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC))
    for tenant in tenants:
        for _ in range(2):
            _config(counted, tenant["api_key"])
    ticks = iter(dt.datetime(2026, 7, day, 3, 1, tzinfo=dt.UTC) for day in range(2, 20))

    def tick() -> None:
        travel_to(next(ticks))
        response = counted.client("trigger").post("/", headers={"X-Admin-Key": ADMIN_KEY})
        assert response.status_code == 200, response.get_json()
        report = response.get_json()
        assert report["due"] == 6, report

    measure("trigger tick, 6 configs of 3 tenants due", counter, 3, tick)


def test_bench_print_the_table() -> None:
    """The table of issue 13 with today's rows beside the new ones (runs last in this file)."""
    if not ROWS:
        pytest.skip("no rows measured")
    print()
    print("BigQuery per request (before = landed code, issue 13; after = this branch):")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    print("| request | REST calls before | after | jobs before | after | ms before | median ms |")
    print("|---|---|---|---|---|---|---|")
    for label, row in ROWS.items():
        before = BEFORE.get(label) or Before("-", "-", "-")  # type: ignore[arg-type]
        print(
            f"| `{label}` | {before.rest} | {row.rest} | {before.jobs} | {row.jobs} "
            f"| {before.ms} | {row.median_ms:.0f} |"
        )
    print("(rows without a 'before' landed after issue 13 was measured)")

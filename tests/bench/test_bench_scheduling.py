"""Figures for the README: a trigger tick at 100 and 1,000 due configs; a manual run's latency.

Run with `make bench`. Nothing here asserts a duration.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path

from google.cloud import bigquery

from jobs.pipeline_runner import execute_run
from shared.deps import Deps, deps, use_deps
from shared.scheduling.trigger import tick
from tests.conftest import ADMIN_KEY
from tests.counting import CallCounter
from tests.e2e.stack import call, call_json, start_stack
from tests.integration.conftest import Platform

NOW = dt.datetime(2026, 7, 2, 3, 0, 30, tzinfo=dt.UTC)


def seed(platform: Platform, tenants: int, configs: int) -> None:
    """Tenants, plans and due configs in bulk (onboarding 200 tenants would take minutes)."""
    wh = platform.deps.warehouse
    ids = ["b" + uuid.uuid4().hex[:12] for _ in range(tenants)]
    param = bigquery.ArrayQueryParameter("ids", "STRING", ids)
    common = {"now": NOW - dt.timedelta(days=1)}
    wh.execute(
        f"INSERT INTO {wh.central('tenant_profiles')} (tenant_id, company_name, admin_email, "
        "status, onboarding_state, dataset_id, created_at, updated_at) SELECT t, 'Bench', "
        "'b@bench.example', 'ACTIVE', 'COMPLETE', t, @now, @now FROM UNNEST(@ids) AS t",
        {"ids": param, **common},
    )
    wh.execute(
        f"INSERT INTO {wh.central('tenant_subscriptions')} (tenant_id, plan, status, "
        "daily_run_limit, monthly_run_limit, concurrent_run_limit, team_member_limit, "
        "provider_limit, created_at) SELECT t, 'SCALE', 'active', 100, 3000, 10, 11, 10, @now "
        "FROM UNNEST(@ids) AS t",
        {"ids": param, **common},
    )
    wh.execute(
        f"INSERT INTO {wh.central('tenant_usage_quotas')} (tenant_id, usage_date, daily_runs, "
        "usage_month, monthly_runs, running_runs, created_at) SELECT t, DATE(@now), 0, "
        "DATE_TRUNC(DATE(@now), MONTH), 0, 0, @now FROM UNNEST(@ids) AS t",
        {"ids": param, **common},
    )
    wh.execute(
        f"INSERT INTO {wh.central('tenant_pipeline_configs')} (config_id, tenant_id, name, "
        "pipeline, schedule_cron, timezone, is_active, parameters_json, next_run_at, status, "
        "created_at, updated_at) SELECT CONCAT('pcf_', TO_HEX(MD5(CONCAT(t, CAST(n AS STRING))))), "
        "t, 'bench', 'dryrun', '0 3 * * *', 'UTC', TRUE, '{}', @due, 'ACTIVE', @now, @now "
        "FROM UNNEST(@ids) AS t, UNNEST(GENERATE_ARRAY(1, @per)) AS n",
        {"ids": param, "per": configs // tenants, "due": NOW - dt.timedelta(seconds=30), **common},
    )


def counted_tick(platform: Platform) -> tuple[dict[str, int], int, float]:
    current = Deps(
        settings=platform.deps.settings, secrets=platform.deps.secrets, clock=lambda: NOW
    )
    use_deps(current)
    # Count REST job starts on the client's session: the warehouse runs
    # statements through query_and_wait (jobs.query), not query().
    counter = CallCounter()
    counter.attach(current.warehouse.client)
    started = time.perf_counter()
    report = tick(current).as_dict()
    return report, counter.jobs, time.perf_counter() - started


def test_bench_one_tick_at_100_and_1000_due_configs(platform: Platform) -> None:
    for tenants, configs in ((20, 100), (200, 1000)):
        seed(platform, tenants, configs)
        report, jobs, seconds = counted_tick(platform)
        print(
            f"BENCH trigger tick: {configs:>5} due configs / {tenants:>3} tenants: "
            f"{jobs} BigQuery jobs, {seconds:6.2f} s, report {report}"
        )
        # Next round starts from a clean slate of due configs.
        wh = platform.deps.warehouse
        wh.execute(
            f"UPDATE {wh.central('tenant_pipeline_configs')} SET is_active = FALSE WHERE is_active"
        )


def test_bench_manual_dryrun_from_post_to_completed(platform: Platform) -> None:
    tenant = platform.onboarded()
    config = platform.tenant_call(
        "pipelines",
        "POST",
        "/configs",
        tenant["api_key"],
        json={"name": "b", "pipeline": "dryrun", "schedule_cron": "0 3 * * *"},
    ).get_json()
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        response = platform.tenant_call(
            "pipelines", "POST", "/runs", tenant["api_key"], json={"config_id": config["config_id"]}
        )
        [run_id] = response.get_json()["run_ids"]
        execute_run(deps(), run_id)  # in-process: what the dispatched job does
        timings.append(time.perf_counter() - started)
    timings.sort()
    print(
        f"BENCH POST /pipelines/runs (dryrun) to SUCCEEDED, in-process runner: "
        f"median {timings[2]:.2f} s (admin key {ADMIN_KEY[:4]}...)"
    )


def test_bench_manual_dryrun_on_the_local_stack(tmp_path: Path) -> None:
    """POST /pipelines/runs to SUCCEEDED through the real dispatcher and runner subprocess."""
    stack = start_stack(tmp_path / "data", env={"SCHEDULER_TICK_SECONDS": "3600"})
    try:
        admin = {"X-Admin-Key": stack.admin_key()}
        _, _, tenant = call_json(
            "POST",
            f"{stack.url}/onboard/",
            {
                "tenant_id": "bench_" + uuid.uuid4().hex[:6],
                "company_name": "Bench",
                "admin_email": "b@bench.example",
                "subscription_plan": "SCALE",
            },
            admin,
        )
        key = {"X-API-Key": tenant["api_key"]}
        _, _, config = call_json(
            "POST",
            f"{stack.url}/pipelines/configs",
            {"name": "b", "pipeline": "dryrun", "schedule_cron": "0 3 * * *"},
            key,
        )
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            _, _, run = call_json(
                "POST", f"{stack.url}/pipelines/runs", {"config_id": config["config_id"]}, key
            )
            while True:
                _, _, got = call(
                    "GET", f"{stack.url}/pipelines/runs/{run['run_ids'][0]}", headers=key
                )
                if got["state"] in ("SUCCEEDED", "FAILED"):
                    break
                time.sleep(0.1)
            timings.append(time.perf_counter() - started)
        timings.sort()
        print(
            f"BENCH local stack: POST /pipelines/runs (dryrun) to {got['state']}: "
            f"median {timings[2]:.2f} s, max {timings[-1]:.2f} s"
        )
    finally:
        stack.stop()

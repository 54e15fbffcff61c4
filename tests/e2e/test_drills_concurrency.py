"""Failure drills 3, 4 and 6 (issue 17) against the running local stack: duplicated and
concurrent deliveries of tasks, ticks and Stripe events lose nothing and apply nothing twice.

The stack's dispatcher holds every task (LOCAL_RUNNER_CONCURRENCY=0): each drill is
the Cloud Tasks / Scheduler / Stripe side itself and delivers as those may. These run
in `make test` at a reduced size; `make drills` runs them at full size
(DRILL_SCALE=full) and prints their figures (docs/drills.md).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.drills.harness import (
    Figures,
    create_config,
    deliver,
    onboard,
    query,
    quota,
    record,
    run_view,
    set_limits,
    start_manual_run,
    table,
    take_tasks,
)
from tests.e2e.stack import RunningStack, call_json, start_stack

FULL = os.environ.get("DRILL_SCALE") == "full"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("drills") / "data",
        # No ticker and no dispatcher of its own: the drills tick and deliver.
        env={"SCHEDULER_TICK_SECONDS": "86400", "LOCAL_RUNNER_CONCURRENCY": "0"},
    )
    yield running
    assert running.stop() == 0


# ------------------------------------------------------- drill 6: a task delivered twice


def test_drill_6_a_task_delivered_twice_at_once_executes_once(stack: RunningStack) -> None:
    started = time.monotonic()
    tenant = onboard(stack)
    key = tenant["api_key"]
    pairs = 5 if FULL else 2
    # One config per run: runs of one config wait for each other's turn anyway.
    run_ids = [
        start_manual_run(stack, key, create_config(stack, key, f"twice-{i}")) for i in range(pairs)
    ]
    take_tasks(stack, run_ids)

    # Both deliveries of every run start together, as two Cloud Run executions would.
    runners = [
        (run_id, deliver(stack, run_id, f"{run_id}-{copy}"))
        for run_id in run_ids
        for copy in (1, 2)
    ]
    codes = [process.wait(timeout=300) for _, process in runners]

    assert codes == [0] * len(runners)
    # Of each pair, exactly one runner found the run already claimed and stood down.
    for run_id in run_ids:
        logs = [(stack.data_dir / "drill-runs" / f"{run_id}-{c}.log").read_text() for c in (1, 2)]
        assert sum("run not claimable" in text for text in logs) == 1, logs
    steps = query(
        stack,
        f"SELECT run_id, COUNT(*) AS n FROM {table(stack, 'tenant_step_logs')} "
        "WHERE run_id IN UNNEST(@ids) GROUP BY run_id",
        ids=("STRING", run_ids),
    )
    # dryrun has two steps: a second execution would log four.
    assert {r["run_id"]: r["n"] for r in steps} == dict.fromkeys(run_ids, 2)
    for run_id in run_ids:
        run = run_view(stack, key, run_id)
        assert run["state"] == "SUCCEEDED", run
        assert [s["step_name"] for s in run["steps"]] == ["check_dataset", "check_credential"]
    used = quota(stack, key)
    assert used["daily"]["used"] == pairs and used["running"] == 0, used
    record(
        Figures(
            "6. task delivered twice at once",
            requests=2 * pairs,
            faults=f"{pairs} runs x 2 simultaneous runner executions",
            checked="one execution per run (step logs), quota counted once, slot freed",
            seconds=time.monotonic() - started,
        )
    )


# ------------------------------------------- drill 4: two ticks at once, again and again


def _tick_twice_at_once(stack: RunningStack) -> list[tuple[int, Any]]:
    barrier = threading.Barrier(2)
    answers: list[tuple[int, Any]] = []

    def tick() -> None:
        barrier.wait()
        status, _, body = call_json(
            "POST", f"{stack.url}/trigger/", {}, {"X-Admin-Key": stack.admin_key()}
        )
        answers.append((status, body))

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_drill_4_two_concurrent_ticks_never_give_a_config_two_runs_for_one_time(
    stack: RunningStack,
) -> None:
    started = time.monotonic()
    tenant = onboard(stack)
    key, tenant_id = tenant["api_key"], tenant["tenant_id"]
    # Every run is admitted, so a run created twice would also be counted twice.
    set_limits(
        stack,
        tenant_id,
        daily_run_limit=100_000,
        monthly_run_limit=1_000_000,
        concurrent_run_limit=100_000,
    )
    configs = [create_config(stack, key, f"ticked-{i}") for i in range(3)]
    rounds = 100 if FULL else 3
    first = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(
        minutes=rounds + 1
    )
    answers: list[tuple[int, Any]] = []
    for i in range(rounds):
        # Each round makes every config due at a new instant; then two ticks race for it.
        query(
            stack,
            f"UPDATE {table(stack, 'tenant_pipeline_configs')} SET next_run_at = @due "
            "WHERE config_id IN UNNEST(@ids)",
            due=("TIMESTAMP", first + dt.timedelta(minutes=i)),
            ids=("STRING", configs),
        )
        answers += _tick_twice_at_once(stack)

    assert [status for status, _ in answers] == [200] * (2 * rounds), [
        a for a in answers if a[0] != 200
    ]
    runs = query(
        stack,
        "SELECT config_id, scheduled_for, COUNT(*) AS rows_, COUNT(DISTINCT run_id) AS ids, "
        "LOGICAL_AND(state != 'SKIPPED') AS admitted "
        f"FROM {table(stack, 'tenant_pipeline_runs')} WHERE tenant_id = @t "
        "GROUP BY config_id, scheduled_for",
        t=tenant_id,
    )
    expected = {
        (config, first + dt.timedelta(minutes=i)) for config in configs for i in range(rounds)
    }
    assert {(r["config_id"], r["scheduled_for"]) for r in runs} == expected
    doubled = [r for r in runs if r["rows_"] != 1 or r["ids"] != 1]
    assert doubled == []
    assert all(r["admitted"] for r in runs)
    # The usage counter agrees with the run table: each run admitted (and counted) once.
    assert quota(stack, key)["daily"]["used"] == len(expected)
    record(
        Figures(
            "4. two trigger ticks at once",
            requests=2 * rounds,
            faults=f"{rounds} rounds x 2 concurrent ticks over {len(configs)} due configs",
            checked="one run per config and scheduled time; daily usage = admitted runs",
            seconds=time.monotonic() - started,
        )
    )

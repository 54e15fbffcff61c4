"""Drill 1 (issue 17): kill -9 the whole local stack while 20 runs are queued or running, restart
it on the same data dir: every run reaches a terminal state, none executes twice, and the
usage counters equal what the run table says. Only in `make drills` (minutes long)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.drills.harness import (
    Figures,
    create_config,
    kill_group,
    onboard,
    query,
    quota,
    record,
    set_limits,
    start_manual_run,
    start_stack_group,
    table,
    task_queue,
)
from tests.e2e.stack import RunningStack

RUNS = 20
STARTERS = 5
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED")
# Short enough that the reaper fails the runs the kill orphaned within the drill.
ENV = {
    "SCHEDULER_TICK_SECONDS": "3",
    "LOCAL_RUNNER_CONCURRENCY": "2",
    "RUN_HEARTBEAT_SECONDS": "5",
    "RUN_STALE_AFTER_SECONDS": "60",
}


def _states(stack: RunningStack, tenant_id: str) -> dict[str, str]:
    runs = table(stack, "tenant_pipeline_runs")
    rows = query(stack, f"SELECT run_id, state FROM {runs} WHERE tenant_id = @t", t=tenant_id)
    return {r["run_id"]: r["state"] for r in rows}


def _counts(states: dict[str, str]) -> dict[str, int]:
    return {s: sum(v == s for v in states.values()) for s in sorted(set(states.values()))}


@pytest.mark.timeout(1800)
def test_drill_1_kill_9_of_the_whole_stack_loses_no_run_and_runs_none_twice(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    data_dir = tmp_path / "data"
    stack = start_stack_group(data_dir, ENV)
    try:
        tenant = onboard(stack)
        key, tenant_id = tenant["api_key"], tenant["tenant_id"]
        set_limits(stack, tenant_id, daily_run_limit=1000, concurrent_run_limit=100)
        configs = [create_config(stack, key, f"kill-{i}") for i in range(RUNS)]
        # Concurrent starts, so the kill finds most runs queued or running. Not all 20 at once:
        # at this machine's load one of 20 simultaneous starts took longer than the client's
        # 60 s (seen once); 5 senders still start runs faster than 2 runners finish them.
        with ThreadPoolExecutor(STARTERS) as pool:
            run_ids = list(pool.map(lambda c: start_manual_run(stack, key, c), configs))
        requests = 2 + 2 * RUNS
        # Strike once runners are at work and most runs still wait.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if any(t["state"] == "running" for t in task_queue(stack).all()):
                break
            time.sleep(0.2)
        at_kill = _states(stack, tenant_id)
    finally:
        kill_group(stack)
    assert len(at_kill) == RUNS
    unfinished = sum(state not in TERMINAL for state in at_kill.values())
    assert unfinished > 0, at_kill

    stack = start_stack_group(data_dir, ENV)
    try:
        deadline = time.monotonic() + 900
        states = _states(stack, tenant_id)
        while time.monotonic() < deadline and any(s not in TERMINAL for s in states.values()):
            time.sleep(2)
            states = _states(stack, tenant_id)
        assert sorted(states) == sorted(run_ids)
        assert all(s in TERMINAL for s in states.values()), states

        steps = query(
            stack,
            f"SELECT run_id, COUNT(*) AS n FROM {table(stack, 'tenant_step_logs')} "
            "WHERE tenant_id = @t GROUP BY run_id",
            t=tenant_id,
        )
        executions = {r["run_id"]: r["n"] for r in steps}
        # dryrun logs two steps per execution: four would be a run executed twice.
        assert all(n == 2 for n in executions.values()), executions
        assert all(executions.get(r) == 2 for r, s in states.items() if s == "SUCCEEDED")
        used = quota(stack, key)
        admitted = sum(s != "SKIPPED" for s in states.values())
        assert used["daily"]["used"] == admitted and used["running"] == 0, used
        record(
            Figures(
                "1. kill -9 of the whole stack",
                requests=requests,
                faults=f"SIGKILL of the stack's process group with {unfinished} of {RUNS} runs "
                f"queued or running {_counts(at_kill)}; restart on the same data dir",
                checked=f"all {RUNS} runs terminal {_counts(states)}; none executed twice; "
                f"daily usage "
                f"{used['daily']['used']} = {admitted} admitted runs; 0 running",
                seconds=time.monotonic() - started,
            )
        )
    finally:
        stack.stop()

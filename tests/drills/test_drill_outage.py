"""Drill 2 (issue 17): the warehouse is unreachable for 10 s (the stack's emulator stopped, then
started again on the same port and data): requests in that window answer 503 JSON with
Retry-After, promptly; runs queued before it finish after it returns. `make drills` only."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from local.emulator import Emulator
from tests.drills.harness import (
    Figures,
    create_config,
    onboard,
    query,
    quota,
    record,
    runner_environment,
    start_manual_run,
    start_stack_group,
    table,
)

OUTAGE_SECONDS = 10.0
ENV = {"SCHEDULER_TICK_SECONDS": "3", "LOCAL_RUNNER_CONCURRENCY": "2"}


def _get(url: str, key: str) -> tuple[int, dict[str, str], Any, float]:
    """One request; status 0 if nothing came back within 30 s (a hang, not an answer)."""
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        status, headers, raw = err.code, dict(err.headers), err.read()
    except (TimeoutError, urllib.error.URLError):
        return 0, {}, None, time.monotonic() - started
    return status, headers, json.loads(raw) if raw else None, time.monotonic() - started


def _counts(states: dict[str, str]) -> dict[str, int]:
    return {s: sum(v == s for v in states.values()) for s in sorted(set(states.values()))}


@pytest.mark.timeout(1800)
def test_drill_2_a_warehouse_outage_answers_503_with_retry_after_and_queued_runs_resume(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    data_dir = tmp_path / "data"
    stack = start_stack_group(data_dir, ENV)
    restarted: Emulator | None = None
    try:
        tenant = onboard(stack)
        key, tenant_id = tenant["api_key"], tenant["tenant_id"]
        quota(stack, key)  # the key is warm: the outage meets the quota read itself
        run_ids = [
            start_manual_run(stack, key, create_config(stack, key, f"outage-{i}")) for i in range(3)
        ]
        endpoints, env = stack.endpoints(), runner_environment(stack)
        runs = table(stack, "tenant_pipeline_runs")
        # Strike while a run executes (its step meets the outage) and others still queue.
        deadline, at_outage = time.monotonic() + 300, {}
        while time.monotonic() < deadline and "RUNNING" not in at_outage.values():
            rows = query(
                stack, f"SELECT run_id, state FROM {runs} WHERE tenant_id = @t", t=tenant_id
            )
            at_outage = {r["run_id"]: r["state"] for r in rows}
        assert "RUNNING" in at_outage.values(), at_outage

        os.kill(int(endpoints["emulator_pid"]), signal.SIGTERM)
        while Path(f"/proc/{endpoints['emulator_pid']}").exists():
            status_line = Path(f"/proc/{endpoints['emulator_pid']}/stat").read_text().split()
            if status_line[2] == "Z":
                break
            time.sleep(0.1)
        down_at = time.monotonic()
        answers = []
        while time.monotonic() - down_at < OUTAGE_SECONDS:
            answers.append(_get(f"{stack.url}/quota/", key))
        restarted = Emulator(
            data_dir / "bigquery",
            str(endpoints["project"]),
            rest_port=int(env["BQ_EMULATOR_PORT"]),
            grpc_port=int(env["BQ_EMULATOR_GRPC_PORT"]),
            log_path=data_dir / "emulator-restarted.log",
        )
        restarted.start()
        outage = time.monotonic() - down_at

        refused = [a for a in answers if a[0] != 503]
        assert answers and refused == [], refused
        for _, headers, body, _ in answers:
            assert int(headers["Retry-After"]) > 0 and body["error"] == "unavailable", body
        # Answers, not hangs: each within a few seconds of asking.
        slowest = max(a[3] for a in answers)
        assert slowest < OUTAGE_SECONDS

        deadline, states = time.monotonic() + 600, {}
        while time.monotonic() < deadline:
            rows = query(
                stack, f"SELECT run_id, state FROM {runs} WHERE tenant_id = @t", t=tenant_id
            )
            states = {r["run_id"]: r["state"] for r in rows}
            if all(s == "SUCCEEDED" for s in states.values()):
                break
            time.sleep(2)
        assert states == dict.fromkeys(run_ids, "SUCCEEDED")
        assert quota(stack, key)["daily"]["used"] == len(run_ids)
        record(
            Figures(
                "2. warehouse unreachable",
                requests=len(answers) + 2 * len(run_ids) + 3,
                faults=f"emulator stopped for {outage:.0f} s with {len(run_ids)} runs "
                f"{_counts(at_outage)}",
                checked=f"{len(answers)} requests in the outage all 503 JSON + Retry-After "
                f"(slowest {slowest:.1f} s); all runs SUCCEEDED after; usage counted once",
                seconds=time.monotonic() - started,
            )
        )
    finally:
        stack.stop()
        if restarted is not None:
            restarted.stop()

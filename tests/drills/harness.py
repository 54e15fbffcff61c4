"""What every failure drill needs: the stack's warehouse, its task queue, a runner delivery,
and the drill figures that `make drills` prints as the README table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from shared.platform.settings import REPO_ROOT
from shared.scheduling.dispatch import LocalTask, LocalTaskQueue
from tests.e2e.stack import RunningStack, call, call_json, start_stack
from tests.e2e.stack import onboard as onboard_tenant


@dataclass
class Figures:
    """One drill's line in the README table: what it sent, what it broke, what was lost."""

    drill: str
    requests: int = 0
    faults: str = ""
    checked: str = ""
    lost: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# Filled by each drill as it runs; tests/drills/figures.py prints it after the session.
FIGURES: list[Figures] = []


def record(figures: Figures) -> None:
    FIGURES.append(figures)


def as_rows() -> list[dict[str, Any]]:
    return [asdict(f) for f in FIGURES]


def warehouse_client(stack: RunningStack) -> bigquery.Client:
    """The real BigQuery client on the stack's emulator: the drills read the truth there."""
    endpoints = stack.endpoints()
    return bigquery.Client(
        project=endpoints["project"],
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoints["emulator_url"]),
    )


def table(stack: RunningStack, name: str) -> str:
    endpoints = stack.endpoints()
    return f"`{endpoints['project']}.{endpoints['central_dataset']}.{name}`"


def query(stack: RunningStack, sql: str, **params: Any) -> list[dict[str, Any]]:
    """A parameterised query; a param is a value (typed by Python type) or (type, value)."""
    parameters: list[Any] = []
    for name, value in params.items():
        if isinstance(value, tuple):
            kind, raw = value
            if isinstance(raw, list):
                parameters.append(bigquery.ArrayQueryParameter(name, kind, raw))
            else:
                parameters.append(bigquery.ScalarQueryParameter(name, kind, raw))
        else:
            kind = {bool: "BOOL", int: "INT64", str: "STRING"}[type(value)]
            parameters.append(bigquery.ScalarQueryParameter(name, kind, value))
    job = warehouse_client(stack).query(
        sql, job_config=bigquery.QueryJobConfig(query_parameters=parameters)
    )
    return [dict(row.items()) for row in job.result()]


def onboard(stack: RunningStack, plan: str = "SCALE") -> dict[str, Any]:
    return onboard_tenant(stack, "drill", plan)


def set_limits(stack: RunningStack, tenant_id: str, **limits: int) -> None:
    """Raises the tenant's plan limits in place: the drills load more than a plan allows."""
    assignments = ", ".join(f"{name} = @{name}" for name in limits)
    query(
        stack,
        f"UPDATE {table(stack, 'tenant_subscriptions')} SET {assignments} WHERE tenant_id = @t",
        t=tenant_id,
        **limits,
    )


def create_config(stack: RunningStack, key: str, name: str, pipeline: str = "dryrun") -> str:
    status, _, config = call_json(
        "POST",
        f"{stack.url}/pipelines/configs",
        {"name": name, "pipeline": pipeline, "schedule_cron": "0 4 * * *"},
        {"X-API-Key": key},
    )
    if status != 201:
        raise RuntimeError(f"config create answered {status}: {config}")
    return str(config["config_id"])


def start_manual_run(stack: RunningStack, key: str, config_id: str) -> str:
    status, _, started = call_json(
        "POST", f"{stack.url}/pipelines/runs", {"config_id": config_id}, {"X-API-Key": key}
    )
    if status != 202:
        raise RuntimeError(f"manual run answered {status}: {started}")
    return str(started["run_ids"][0])


def task_queue(stack: RunningStack) -> LocalTaskQueue:
    return LocalTaskQueue(stack.data_dir / "tasks.sqlite")


def take_tasks(stack: RunningStack, run_ids: list[str], timeout: float = 30) -> list[LocalTask]:
    """Takes these runs' tasks off the stack's queue, as the dispatcher would (it holds them)."""
    queue = task_queue(stack)
    wanted, taken = set(run_ids), []
    deadline = time.monotonic() + timeout
    while wanted and time.monotonic() < deadline:
        for task in queue.take(1000):
            if task.run_id not in wanted:
                raise AssertionError(f"an unexpected task was queued: {task}")
            wanted.discard(task.run_id)
            taken.append(task)
        time.sleep(0.2)
    if wanted:
        raise AssertionError(f"no pending task for {sorted(wanted)}: {queue.all()}")
    return taken


def runner_environment(stack: RunningStack) -> dict[str, str]:
    """The environment the stack's dispatcher gives its runners (local/stack.py writes it)."""
    return dict(json.loads((stack.data_dir / "runner_env.json").read_text()))


def deliver(stack: RunningStack, run_id: str, log_name: str) -> subprocess.Popen[bytes]:
    """One delivery of a run's task: the runner job, started exactly as the dispatcher starts it."""
    log_dir = stack.data_dir / "drill-runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{log_name}.log", "wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.pipeline_runner", "--run-id", run_id],
            cwd=REPO_ROOT,
            env=runner_environment(stack),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def run_view(stack: RunningStack, key: str, run_id: str) -> dict[str, Any]:
    status, _, run = call("GET", f"{stack.url}/pipelines/runs/{run_id}", headers={"X-API-Key": key})
    if status != 200:
        raise RuntimeError(f"run {run_id} answered {status}: {run}")
    return dict(run)


def quota(stack: RunningStack, key: str) -> dict[str, Any]:
    status, _, body = call("GET", f"{stack.url}/quota/", headers={"X-API-Key": key})
    if status != 200:
        raise RuntimeError(f"quota answered {status}: {body}")
    return dict(body)


def start_stack_group(
    data_dir: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> RunningStack:
    """`python -m local.stack` as the leader of its own process group, as a shell's `make run`
    is: a drill can kill -9 the whole group (the stack, its dispatcher's runners) at once."""
    return start_stack(data_dir, env, timeout, new_session=True)


def kill_group(stack: RunningStack, timeout: float = 60) -> list[int]:
    """kill -9 of the stack's process group; waits until its stand-ins (which get SIGTERM when
    their parent dies) are gone too, so a restart finds its data dir free. Returns their pids."""
    children = [
        int(pid)
        for name, pid in stack.endpoints().items()
        if name.endswith("_pid") and isinstance(pid, int)
    ]
    os.killpg(stack.process.pid, signal.SIGKILL)
    stack.process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    for pid in children:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            raise AssertionError(f"stand-in {pid} outlived the stack")
    return children


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not reaped by its dead parent's reaper yet) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False

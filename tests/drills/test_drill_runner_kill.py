"""Drill 5 (issue 17): a runner SIGKILLed in the middle of its FOCUS step (`convert` of
gcp_cost_billing): the reaper fails the run and frees its slot; the retry of the run writes
exactly the FOCUS rows a clean run of another tenant on the same export writes (same rows,
same sums). `make drills` only (the reaper waits out the stale threshold)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local import billing_export
from tests.drills.harness import (
    Figures,
    deliver,
    onboard,
    query,
    quota,
    record,
    run_view,
    set_limits,
    start_stack_group,
    take_tasks,
    warehouse_client,
)
from tests.e2e.stack import RunningStack, call_json

DAYS, ROWS_PER_DAY = 3, 400
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED")
# The dispatcher holds every task (the drill delivers them, so it holds the runner's pid);
# the ticker runs the reaper every 3 s; a runner silent for 60 s is stale.
ENV = {
    "SCHEDULER_TICK_SECONDS": "3",
    "LOCAL_RUNNER_CONCURRENCY": "0",
    "RUN_HEARTBEAT_SECONDS": "5",
    "RUN_STALE_AFTER_SECONDS": "60",
}
# Lineage that names the tenant, its config or the run: everything else must be equal.
RUN_COLUMNS = {"x_tenant_id", "x_pipeline_id", "x_credential_id", "x_run_id", "x_ingested_at"}


def _post(stack: RunningStack, path: str, body: Any, key: str, wanted: int) -> Any:
    status, _, answer = call_json("POST", f"{stack.url}{path}", body, {"X-API-Key": key})
    if status != wanted:
        raise RuntimeError(f"POST {path} answered {status}: {answer}")
    return answer


def _tenant_with_pipeline(
    stack: RunningStack, export: tuple[str, str, str]
) -> tuple[dict[str, Any], str]:
    """A tenant with a credential, a provider config on the seeded export and an inactive
    gcp_cost_billing config (the drill starts its runs by hand)."""
    project, dataset, export_table = export
    tenant = onboard(stack, plan="PROFESSIONAL")
    key = tenant["api_key"]
    credential = _post(
        stack,
        "/credentials/",
        {
            "provider": "GCP",
            "credential_type": "WORKLOAD_IDENTITY",
            "credential_name": "billing export reader",
            "metadata": {"granted_to": "platform service account"},
        },
        key,
        201,
    )
    provider = _post(
        stack,
        "/credentials/provider-configs",
        {
            "provider": "GCP",
            "source_project_id": project,
            "billing_export_dataset": dataset,
            "billing_export_table": export_table,
            "currency": "USD",
            "credential_id": credential["credential_id"],
        },
        key,
        201,
    )
    config = _post(
        stack,
        "/pipelines/configs",
        {
            "name": "daily GCP costs",
            "pipeline": "gcp_cost_billing",
            "provider_config_id": provider["config_id"],
            "credential_id": credential["credential_id"],
            "schedule_cron": "0 6 * * *",
            "timezone": "UTC",
            "is_active": False,
            "parameters": {},
        },
        key,
        201,
    )
    return tenant, str(config["config_id"])


def _start(stack: RunningStack, key: str, config_id: str, run_date: dt.date) -> str:
    started = _post(
        stack,
        "/pipelines/runs",
        {"config_id": config_id, "run_date": run_date.isoformat()},
        key,
        202,
    )
    return str(started["run_ids"][0])


def _wait_state(stack: RunningStack, key: str, run_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run = run_view(stack, key, run_id)
    while run["state"] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(2)
        run = run_view(stack, key, run_id)
    return run


def _run_to_end(stack: RunningStack, key: str, run_id: str, name: str) -> dict[str, Any]:
    take_tasks(stack, [run_id])
    runner = deliver(stack, run_id, name)
    assert runner.wait(900) == 0
    return _wait_state(stack, key, run_id, 60)


def _focus_rows(stack: RunningStack, dataset: str) -> list[str]:
    """The tenant's FOCUS rows without their run lineage, each as canonical JSON, sorted."""
    rows = query(stack, f"SELECT * FROM `{stack.endpoints()['project']}.{dataset}.focus_cost`")
    return sorted(
        json.dumps(
            {k: v for k, v in row.items() if k not in RUN_COLUMNS}, sort_keys=True, default=str
        )
        for row in rows
    )


def _sums(stack: RunningStack, dataset: str) -> dict[str, Any]:
    (row,) = query(
        stack,
        "SELECT COUNT(*) AS row_count, SUM(BilledCost) AS billed, SUM(ListCost) AS list_cost, "
        "SUM(EffectiveCost) AS effective "
        f"FROM `{stack.endpoints()['project']}.{dataset}.focus_cost`",
    )
    return row


def _raw_rows(stack: RunningStack, dataset: str) -> int:
    (row,) = query(
        stack,
        f"SELECT COUNT(*) AS n FROM `{stack.endpoints()['project']}.{dataset}.gcp_billing_raw`",
    )
    return int(row["n"])


@pytest.mark.timeout(1800)
def test_drill_5_a_runner_killed_mid_focus_step_is_reaped_and_its_retry_equals_a_clean_run(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    stack = start_stack_group(tmp_path / "data", ENV)
    try:
        project = stack.endpoints()["project"]
        run_date = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        export = (project, "billing_export", f"gcp_billing_export_v1_drill_{uuid.uuid4().hex[:6]}")
        rows = billing_export.ExportGenerator(seed=11).rows(
            run_date - dt.timedelta(days=DAYS - 2), DAYS, ROWS_PER_DAY
        )
        seeded = billing_export.seed_export(warehouse_client(stack), ".".join(export), rows)

        clean, clean_config = _tenant_with_pipeline(stack, export)
        killed, killed_config = _tenant_with_pipeline(stack, export)
        # One slot: the retry is admitted only if the reaper freed the killed run's.
        set_limits(stack, killed["tenant_id"], concurrent_run_limit=1)

        clean_run = _start(stack, clean["api_key"], clean_config, run_date)
        assert _run_to_end(stack, clean["api_key"], clean_run, "clean")["state"] == "SUCCEEDED"

        key = killed["api_key"]
        doomed = _start(stack, key, killed_config, run_date)
        take_tasks(stack, [doomed])
        runner = deliver(stack, doomed, "doomed")
        # `extract` writes the raw copy in one job and `convert` starts right after it:
        # strike as soon as the raw rows are there.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and runner.poll() is None:
            if _raw_rows(stack, killed["dataset_id"]) > 0:
                break
            time.sleep(0.2)
        assert runner.poll() is None, "the runner ended before the kill"
        runner.send_signal(signal.SIGKILL)
        runner.wait(60)
        at_kill = run_view(stack, key, doomed)
        focus_at_kill = _sums(stack, killed["dataset_id"])["row_count"]
        assert at_kill["state"] == "RUNNING", at_kill
        assert quota(stack, key)["running"] == 1

        reaped = _wait_state(stack, key, doomed, 600)
        assert (reaped["state"], reaped["error_code"]) == ("FAILED", "lost_heartbeat"), reaped
        assert quota(stack, key)["running"] == 0

        retried = _post(stack, f"/pipelines/runs/{doomed}/retry", {}, key, 202)
        retry_id = str(retried.get("run_id") or retried["run_ids"][0])
        retry = _run_to_end(stack, key, retry_id, "retry")
        assert retry["state"] == "SUCCEEDED", retry

        clean_sums = _sums(stack, clean["dataset_id"])
        retry_sums = _sums(stack, killed["dataset_id"])
        assert clean_sums["row_count"] > 0
        assert retry_sums == clean_sums
        assert isinstance(retry_sums["billed"], Decimal)
        assert _focus_rows(stack, killed["dataset_id"]) == _focus_rows(stack, clean["dataset_id"])
        used = quota(stack, key)
        assert used["running"] == 0, used
        record(
            Figures(
                "5. runner SIGKILLed mid-FOCUS step",
                requests=14,
                faults=f"SIGKILL of the runner once its raw copy held "
                f"{_raw_rows(stack, killed['dataset_id'])} rows ({focus_at_kill} FOCUS rows "
                f"written at the kill), {seeded} export rows",
                checked=f"reaped FAILED lost_heartbeat, slot freed (limit 1, retry admitted); "
                f"retry SUCCEEDED with {retry_sums['row_count']} FOCUS rows equal to a clean "
                f"run's, BilledCost {retry_sums['billed']} = {clean_sums['billed']}",
                seconds=time.monotonic() - started,
            )
        )
    finally:
        stack.stop()

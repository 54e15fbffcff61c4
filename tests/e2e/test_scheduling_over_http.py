"""Scheduling through the running local stack: its scheduler ticks, its dispatcher runs the job."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from tests.e2e.stack import RunningStack, call, call_json, onboard, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("scheduling") / "data", env={"SCHEDULER_TICK_SECONDS": "2"}
    )
    yield running
    assert running.stop() == 0


def wait_for_run(stack: RunningStack, key: str, run_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, run = call(
            "GET", f"{stack.url}/pipelines/runs/{run_id}", headers={"X-API-Key": key}
        )
        if status == 200 and run["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return dict(run)
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s:\n{stack.output()[-3000:]}")


def test_a_scheduled_dryrun_is_ticked_dispatched_and_completed_with_its_step_log(
    stack: RunningStack,
) -> None:
    tenant = onboard(stack)
    key = tenant["api_key"]
    status, _, config = call_json(
        "POST",
        f"{stack.url}/pipelines/configs",
        {
            "name": "check",
            "pipeline": "dryrun",
            "schedule_cron": "*/5 * * * *",
            "timezone": "Europe/Berlin",
        },
        {"X-API-Key": key},
    )
    assert status == 201, config
    # Bring the schedule's next fire time to now, instead of waiting up to 5 minutes.
    endpoints = stack.endpoints()
    client = bigquery.Client(
        project=endpoints["project"],
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoints["emulator_url"]),
    )
    due = dt.datetime.now(dt.UTC).replace(microsecond=0)
    client.query(
        f"UPDATE `{endpoints['project']}.{endpoints['central_dataset']}.tenant_pipeline_configs` "
        "SET next_run_at = @due WHERE config_id = @c",
        job_config=bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("due", "TIMESTAMP", due),
                bigquery.ScalarQueryParameter("c", "STRING", config["config_id"]),
            ]
        ),
    ).result()

    run_id = None
    deadline = time.monotonic() + 30
    while run_id is None and time.monotonic() < deadline:
        _, _, page = call("GET", f"{stack.url}/pipelines/runs", headers={"X-API-Key": key})
        run_id = page["runs"][0]["run_id"] if page["runs"] else None
        time.sleep(0.5)
    assert run_id is not None, stack.output()[-3000:]
    run = wait_for_run(stack, key, run_id)

    assert run["state"] == "SUCCEEDED", run
    assert run["trigger"] == "SCHEDULE"
    assert [s["step_name"] for s in run["steps"]] == ["check_dataset", "check_credential"]
    _, _, quota = call("GET", f"{stack.url}/quota/", headers={"X-API-Key": key})
    assert quota["daily"]["used"] == 1 and quota["running"] == 0


def test_a_manual_run_is_dispatched_and_completed(stack: RunningStack) -> None:
    tenant = onboard(stack)
    key = tenant["api_key"]
    _, _, config = call_json(
        "POST",
        f"{stack.url}/pipelines/configs",
        {"name": "check", "pipeline": "dryrun", "schedule_cron": "0 4 * * *"},
        {"X-API-Key": key},
    )

    status, _, started = call_json(
        "POST",
        f"{stack.url}/pipelines/runs",
        {"config_id": config["config_id"]},
        {"X-API-Key": key},
    )

    assert status == 202, started
    run = wait_for_run(stack, key, started["run_ids"][0])
    assert run["state"] == "SUCCEEDED" and run["trigger"] == "MANUAL"


def test_a_month_of_backfill_on_starter_is_one_request_one_run_one_quota_unit(
    stack: RunningStack,
) -> None:
    tenant = onboard(stack, plan="STARTER")
    key = tenant["api_key"]
    _, _, config = call_json(
        "POST",
        f"{stack.url}/pipelines/configs",
        {"name": "history", "pipeline": "dryrun", "schedule_cron": "0 4 * * *"},
        {"X-API-Key": key},
    )

    status, _, started = call_json(
        "POST",
        f"{stack.url}/pipelines/runs",
        {"config_id": config["config_id"], "date_from": "2026-05-01", "date_to": "2026-05-31"},
        {"X-API-Key": key},
    )

    assert status == 202, started
    [run_id] = started["run_ids"]
    run = wait_for_run(stack, key, run_id)
    assert run["state"] == "SUCCEEDED", run
    assert (run["date_from"], run["date_to"]) == ("2026-05-01", "2026-05-31")
    _, _, page = call("GET", f"{stack.url}/pipelines/runs", headers={"X-API-Key": key})
    assert [r["run_id"] for r in page["runs"]] == [run_id]
    _, _, quota = call("GET", f"{stack.url}/quota/", headers={"X-API-Key": key})
    assert quota["daily"]["used"] == 1 and quota["monthly"]["used"] == 1

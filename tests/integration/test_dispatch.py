"""Dispatch adapters: the real Cloud Tasks client against a fake gRPC server; the local queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.cloud import tasks_v2

from shared.platform.settings import Settings
from shared.scheduling.dispatch import CloudTasksQueue, LocalTaskQueue
from tests.fakes.cloud_tasks import FakeCloudTasks

RUN_ID = "run_" + "ab" * 16


@pytest.fixture
def fake_tasks() -> Iterator[FakeCloudTasks]:
    fake = FakeCloudTasks()
    yield fake
    fake.stop()


def cloud_queue(fake: FakeCloudTasks) -> CloudTasksQueue:
    settings = Settings(  # type: ignore[call-arg]
        environment="test",
        gcp_project="acme-platform",
        CLOUD_REGION="europe-west1",
        TASKS_QUEUE="pipeline-runs",
        RUNNER_JOB="pipeline-runner",
        TASKS_INVOKER_SA="tasks-invoker@acme-platform.iam.gserviceaccount.com",
    )
    return CloudTasksQueue(fake.client(), settings)


def test_a_run_becomes_a_task_that_runs_the_cloud_run_job_with_its_id(
    fake_tasks: FakeCloudTasks,
) -> None:
    assert cloud_queue(fake_tasks).enqueue_run(RUN_ID) is True

    queue = "projects/acme-platform/locations/europe-west1/queues/pipeline-runs"
    [(name, task)] = fake_tasks.tasks.items()
    assert fake_tasks.parents == [queue]
    assert name == f"{queue}/tasks/run-{RUN_ID}"
    request = task.http_request
    assert request.http_method == tasks_v2.HttpMethod.POST
    assert request.url == (
        "https://run.googleapis.com/v2/projects/acme-platform/locations/europe-west1"
        "/jobs/pipeline-runner:run"
    )
    assert request.oauth_token.service_account_email == (
        "tasks-invoker@acme-platform.iam.gserviceaccount.com"
    )
    assert request.oauth_token.scope == "https://www.googleapis.com/auth/cloud-platform"
    assert json.loads(request.body) == {
        "overrides": {"containerOverrides": [{"args": ["--run-id", RUN_ID]}]}
    }


def test_a_second_enqueue_of_a_run_is_refused_by_name(fake_tasks: FakeCloudTasks) -> None:
    queue = cloud_queue(fake_tasks)

    assert queue.enqueue_run(RUN_ID) is True
    assert queue.enqueue_run(RUN_ID) is False
    assert len(fake_tasks.tasks) == 1


def test_a_transient_error_is_retried_and_the_task_created_once(
    fake_tasks: FakeCloudTasks,
) -> None:
    fake_tasks.fail_next = [grpc.StatusCode.UNAVAILABLE]

    assert cloud_queue(fake_tasks).enqueue_run(RUN_ID) is True
    assert len(fake_tasks.tasks) == 1


def test_the_local_queue_refuses_duplicates_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite"
    queue = LocalTaskQueue(path)

    assert queue.enqueue_run(RUN_ID) is True
    assert queue.enqueue_run(RUN_ID) is False
    [taken] = queue.take(5)
    assert queue.take(5) == []  # a taken task is not handed out twice

    reopened = LocalTaskQueue(path)  # the stack restarted while the task ran
    assert reopened.recover() == 1
    [again] = reopened.take(5)
    assert (again.run_id, again.attempts) == (RUN_ID, 2)
    reopened.done(again)
    assert reopened.enqueue_run(RUN_ID) is False  # names are never reused
    assert [t["state"] for t in reopened.all()] == ["done"]
    assert taken.run_id == RUN_ID


def test_the_local_queue_retries_with_backoff_then_gives_up(tmp_path: Path) -> None:
    queue = LocalTaskQueue(tmp_path / "tasks.sqlite", max_attempts=2)
    queue.enqueue_run(RUN_ID)

    [first] = queue.take(1)
    assert queue.failed(first, "exit 1") is True
    assert queue.take(1) == []  # backing off
    with queue._connect() as db:
        db.execute("UPDATE tasks SET not_before = '2000-01-01T00:00:00+00:00'")
    [second] = queue.take(1)
    assert queue.failed(second, "exit 1") is False
    assert [t["state"] for t in queue.all()] == ["failed"]

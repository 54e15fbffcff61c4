"""The task-queue port: one task per admitted run, named after the run so duplicates are refused.

Production: a Cloud Tasks HTTP task that calls the Cloud Run Admin API
`jobs/<job>:run` with an OAuth token and container overrides carrying the run
id. Local: a durable SQLite queue in the data dir, drained by
`local/dispatcher.py`, which starts `python -m jobs.pipeline_runner` itself.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from google.api_core import exceptions as api_errors
from google.api_core.retry import Retry, if_transient_error

from shared.platform.errors import unavailable

if TYPE_CHECKING:
    from google.cloud import tasks_v2

    from shared.platform.settings import Settings

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Concurrency, attempts and backoff of the queue (the Terraform queue has the
# same, a test checks it; its dispatch rate is a Terraform variable kept under
# the Cloud Run Admin API's job-run quota). Enough attempts to ride out a short
# outage; the runner's claim makes a redelivery harmless.
QUEUE_MAX_CONCURRENT_DISPATCHES = 10
QUEUE_MAX_ATTEMPTS = 10
QUEUE_MIN_BACKOFF_SECONDS = 10
QUEUE_MAX_BACKOFF_SECONDS = 600


def task_id(run_id: str) -> str:
    """The task's name within its queue: deterministic, so a second enqueue is refused."""
    return f"run-{run_id}"


class TaskQueue(Protocol):
    def enqueue_run(self, run_id: str) -> bool:
        """True if a task was created; False if one with this run's name already exists."""
        ...


_ENQUEUE_RETRY = Retry(predicate=if_transient_error, initial=0.2, maximum=5.0, timeout=30.0)


class CloudTasksQueue:
    """Cloud Tasks -> Cloud Run Admin API `jobs.run`, with the run id as container args."""

    def __init__(self, client: tasks_v2.CloudTasksClient, settings: Settings) -> None:
        self.client = client
        self.project = settings.gcp_project
        self.region = settings.cloud_region
        self.queue = settings.tasks_queue
        self.job = settings.runner_job
        self.invoker = settings.tasks_invoker_sa

    @property
    def queue_path(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/queues/{self.queue}"

    @property
    def job_run_url(self) -> str:
        return (
            f"https://run.googleapis.com/v2/projects/{self.project}/locations/{self.region}"
            f"/jobs/{self.job}:run"
        )

    def enqueue_run(self, run_id: str) -> bool:
        from google.cloud import tasks_v2

        if not self.invoker:
            raise unavailable("dispatch is not configured (TASKS_INVOKER_SA missing)")
        body = {"overrides": {"containerOverrides": [{"args": ["--run-id", run_id]}]}}
        task = tasks_v2.Task(
            name=f"{self.queue_path}/tasks/{task_id(run_id)}",
            http_request=tasks_v2.HttpRequest(
                http_method=tasks_v2.HttpMethod.POST,
                url=self.job_run_url,
                headers={"Content-Type": "application/json"},
                body=json.dumps(body).encode(),
                oauth_token=tasks_v2.OAuthToken(
                    service_account_email=self.invoker, scope=CLOUD_PLATFORM_SCOPE
                ),
            ),
        )
        try:
            self.client.create_task(
                parent=self.queue_path, task=task, retry=_ENQUEUE_RETRY, timeout=10.0
            )
        except api_errors.AlreadyExists:
            return False
        return True


@dataclass(frozen=True)
class LocalTask:
    name: str
    run_id: str
    attempts: int


class LocalTaskQueue:
    """A durable queue in one SQLite file: survives restarts, refuses duplicate names.

    Like Cloud Tasks, a task name is never reused: a finished task's row stays
    as its tombstone.
    """

    def __init__(self, path: Path, max_attempts: int = QUEUE_MAX_ATTEMPTS) -> None:
        self.path = path
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            # WAL is kept by the database file itself: set once, not per connection.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS tasks (name TEXT PRIMARY KEY, run_id TEXT NOT NULL, "
                "state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
                "not_before TEXT NOT NULL, last_error TEXT, created_at TEXT NOT NULL)"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per call: the gateway, the dispatcher and tests share
        # the file across threads and processes; SQLite serialises writers.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def enqueue_run(self, run_id: str) -> bool:
        now = _now()
        with self._connect() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO tasks (name, run_id, state, not_before, created_at) "
                "VALUES (?, ?, 'pending', ?, ?)",
                (task_id(run_id), run_id, now, now),
            )
            return cursor.rowcount == 1

    def take(self, limit: int) -> list[LocalTask]:
        """Due pending tasks, marked running (one taker wins each)."""
        with self._lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(
                "SELECT name, run_id, attempts FROM tasks WHERE state = 'pending' "
                "AND not_before <= ? ORDER BY created_at, name LIMIT ?",
                (_now(), limit),
            ).fetchall()
            for name, _, _ in rows:
                db.execute(
                    "UPDATE tasks SET state = 'running', attempts = attempts + 1 WHERE name = ?",
                    (name,),
                )
            db.execute("COMMIT")
        return [LocalTask(name, run_id, attempts + 1) for name, run_id, attempts in rows]

    def done(self, task: LocalTask) -> None:
        with self._connect() as db:
            db.execute("UPDATE tasks SET state = 'done' WHERE name = ?", (task.name,))

    def failed(self, task: LocalTask, error: str) -> bool:
        """Schedules a retry with exponential backoff; False once attempts are spent."""
        retry = task.attempts < self.max_attempts
        delay = min(QUEUE_MAX_BACKOFF_SECONDS, QUEUE_MIN_BACKOFF_SECONDS * 2 ** (task.attempts - 1))
        not_before = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)).isoformat()
        with self._connect() as db:
            db.execute(
                "UPDATE tasks SET state = ?, not_before = ?, last_error = ? WHERE name = ?",
                ("pending" if retry else "failed", not_before, error[:500], task.name),
            )
        return retry

    def recover(self) -> int:
        """After a restart, tasks that were running (their process died with us) run again."""
        with self._connect() as db:
            return db.execute("UPDATE tasks SET state = 'pending' WHERE state = 'running'").rowcount

    def all(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT name, run_id, state, attempts, last_error FROM tasks ORDER BY created_at"
            ).fetchall()
        keys = ("name", "run_id", "state", "attempts", "last_error")
        return [dict(zip(keys, row, strict=True)) for row in rows]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def task_queue_from(settings: Settings) -> TaskQueue:
    """The adapter the settings ask for; the Cloud Tasks client loads only when used."""
    if settings.dispatch_backend == "cloud_tasks":
        from google.cloud import tasks_v2

        return CloudTasksQueue(tasks_v2.CloudTasksClient(), settings)
    return LocalTaskQueue(settings.local_data_dir / "tasks.sqlite")

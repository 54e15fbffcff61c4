"""The local stand-ins for Cloud Tasks + Cloud Run jobs and for Cloud Scheduler.

The dispatcher drains the durable local task queue and starts
`python -m jobs.pipeline_runner --run-id ...` subprocesses, at most
`LOCAL_RUNNER_CONCURRENCY` at once, retrying a failed one with backoff as
Cloud Tasks would. The ticker calls the trigger function every
`SCHEDULER_TICK_SECONDS`, as Cloud Scheduler does in production.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from shared.platform.settings import REPO_ROOT
from shared.scheduling.dispatch import LocalTask, LocalTaskQueue

log = logging.getLogger("local.dispatcher")

# Settings for the functions only: a request must answer soon in a warehouse outage, while
# the runner job rides it out (the client's own retry), as in production's Terraform.
FUNCTION_ONLY_SETTINGS = ("BQ_UNREACHABLE_SECONDS",)


def runner_environment() -> dict[str, str]:
    """The environment a runner subprocess gets: the stack's, less the functions' own settings."""
    return {k: v for k, v in os.environ.items() if k not in FUNCTION_ONLY_SETTINGS}


class Dispatcher(threading.Thread):
    def __init__(
        self,
        queue: LocalTaskQueue,
        concurrency: int,
        log_dir: Path,
        stop: threading.Event,
        poll_seconds: float = 0.5,
    ) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self.queue = queue
        self.concurrency = concurrency
        self.log_dir = log_dir
        self.stop = stop
        self.poll_seconds = poll_seconds
        self.running: dict[str, tuple[LocalTask, subprocess.Popen[bytes]]] = {}

    def _start(self, task: LocalTask) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{task.run_id}.log", "ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "jobs.pipeline_runner", "--run-id", task.run_id],
                cwd=REPO_ROOT,
                env=runner_environment(),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.running[task.name] = (task, process)

    def _reap_children(self) -> None:
        for name, (task, process) in list(self.running.items()):
            code = process.poll()
            if code is None:
                continue
            del self.running[name]
            if code == 0:
                self.queue.done(task)
            elif not self.queue.failed(task, f"runner exited with {code}"):
                log.warning("task gave up", extra={"task": name, "exit_code": code})

    def run(self) -> None:
        self.queue.recover()
        while not self.stop.is_set():
            try:
                self._reap_children()
                free = self.concurrency - len(self.running)
                if free > 0:
                    for task in self.queue.take(free):
                        self._start(task)
            except Exception:
                log.exception("dispatcher step failed")
            self.stop.wait(self.poll_seconds)
        for _, process in self.running.values():
            process.terminate()


class Ticker(threading.Thread):
    """POSTs the trigger every `every_seconds`, like Cloud Scheduler."""

    def __init__(self, url: str, admin_key: str, every_seconds: float, stop: threading.Event):
        super().__init__(name="scheduler", daemon=True)
        self.url, self.admin_key, self.every, self.stop = url, admin_key, every_seconds, stop

    def run(self) -> None:
        while not self.stop.wait(self.every):
            request = urllib.request.Request(
                self.url,
                data=b"{}",
                method="POST",
                headers={"X-Admin-Key": self.admin_key, "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    report = json.loads(response.read())
                if any(report.get(k) for k in ("due", "enqueued", "reaped")):
                    log.info("tick", extra=report)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                log.warning("tick failed: %s", exc)
            self._send_notifications()

    def _send_notifications(self) -> None:
        """The outbox sender pass, after each tick (a second Scheduler job in production)."""
        request = urllib.request.Request(
            self.url.rstrip("/") + "/notifications",
            data=b"{}",
            method="POST",
            headers={"X-Admin-Key": self.admin_key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                report = json.loads(response.read())
            if report.get("claimed"):
                log.info("notifications", extra=report)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("notification pass failed: %s", exc)

"""Runs a pipeline's DAG of steps for one run and reports its outcome; the runner calls `execute`.

Semantics (see also docs/decisions.md, "Pipelines"):

- A step starts when all its dependencies SUCCEEDED; independent steps run
  concurrently on a small thread pool (`max_parallel` of the definition, 2 by
  default: the job's BigQuery work is remote, the threads mostly wait).
- A step whose dependency did not succeed is logged SKIPPED and never runs.
- `on_failure: stop` (default): the step's failure fails the run; no further
  step starts (those not started are logged SKIPPED), running ones finish.
  `on_failure: continue`: the failure is logged but doesn't fail the run; its
  dependents are SKIPPED, independent steps go on.
- Retries: `retries` extra attempts, only for transient errors (StepError with
  transient=True, retryable google.api_core/BigQuery errors per
  `shared.platform.warehouse.is_retryable`, connection errors), after
  exponential backoff `retry_backoff_seconds * 2**(attempt-1)` (capped at 60 s).
  Permanent errors and timeouts (a non-transient StepError) are never retried,
  unless the warehouse was unreachable (below).
- A warehouse outage is not the step's fault: an attempt that timed out or
  failed transiently while the warehouse did not answer (a connection to it
  failed during the attempt, `Warehouse.connection_failures`, or
  `Warehouse.reachable` probed right after says no) is tried again once the
  abandoned attempt has ended and the warehouse answers again, up to
  OUTAGE_RETRIES times per step, on top of the step's own `retries`. The
  attempts never overlap: if the timed-out one does not end within
  OUTAGE_WAIT_SECONDS the step fails with its `timeout`.
- Timeouts are per attempt. A Python thread can't be killed, so each attempt
  runs in its own daemon thread; if it outlives `timeout_seconds` the step is
  FAILED with code `timeout`, its stop event is set (`step_query` then cancels
  its BigQuery job at its next poll) and the executor moves on without it.
- A stop request (the runner sets `stop` on cancel) is checked at every step
  boundary: no new step starts, running steps see their stop event (their
  BigQuery job is cancelled), those not started are logged CANCELLED and the run
  ends CANCELLED. A running step that ignores its stop event is abandoned after
  `CANCEL_GRACE_SECONDS`.
- A step that returns any DqResult with status FAIL is FAILED (`dq_failed`);
  its results are reported either way. WARN results don't fail it. A step may
  also raise a StepError that carries `dq_results` (a list of DqResult): the
  step fails with the error's code and those results are reported too.
- The executor never writes logs or DQ rows itself: it returns them in the
  outcome and the runner writes them in one batch each.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as gexc
from pydantic import ValidationError

from shared.deps import Deps
from shared.pipelines.context import (
    DqResult,
    PipelineOutcome,
    RunContext,
    StepContext,
    StepError,
    StepFn,
    StepLog,
    StepResult,
    StepStatus,
)
from shared.pipelines.definitions import (
    DefinitionError,
    PipelineDef,
    ResolvedStep,
    load_template,
    resolve,
    template_ids,
)
from shared.pipelines.registry import StepType, StepTypeUnavailable
from shared.platform.warehouse import is_retryable

log = logging.getLogger(__name__)

# The templates this executor knows (the YAML files under templates/); the
# scheduling API refuses any other id.
BUILT_IN_PIPELINES: tuple[str, ...] = template_ids()

MAX_BACKOFF_SECONDS = 60.0
# An outage (docs/drills.md, drill 2): how many attempts it may cost a step, how
# long to wait for the warehouse to return, and each probe's bound.
OUTAGE_RETRIES = 5
OUTAGE_WAIT_SECONDS = 15 * 60.0
PROBE_SECONDS = 5.0
CANCEL_GRACE_SECONDS = 10.0
_TICK = 0.05


def is_transient(exc: BaseException) -> bool:
    """Errors worth another attempt: the step said so, or BigQuery/the network did."""
    if isinstance(exc, StepError):
        return exc.transient
    return is_retryable(exc) or isinstance(exc, ConnectionError)


@dataclass
class _StepOutcome:
    log: StepLog
    dq_results: list[DqResult] = field(default_factory=list)


def execute(
    deps: Deps,
    run: RunContext,
    stop: threading.Event,
    *,
    definition: PipelineDef | None = None,
    registry: dict[str, StepType] | None = None,
) -> PipelineOutcome:
    """Runs `run.pipeline` (or `definition`) to a terminal outcome; never raises for a step."""
    try:
        pipeline = definition if definition is not None else load_template(run.pipeline)
        steps = resolve(pipeline, run.parameters, registry)
        functions = {s.spec.name: s.kind.function() for s in steps}
    except (DefinitionError, StepTypeUnavailable) as exc:
        known = definition is not None or run.pipeline in BUILT_IN_PIPELINES
        code = "invalid_pipeline" if known else "unknown_pipeline"
        return PipelineOutcome("FAILED", error_code=code, error_message=str(exc))
    return _Execution(
        deps=deps, run=run, stop=stop, pipeline=pipeline, steps=steps, functions=functions
    ).run()


class _Execution:
    def __init__(
        self,
        *,
        deps: Deps,
        run: RunContext,
        stop: threading.Event,
        pipeline: PipelineDef,
        steps: list[ResolvedStep],
        functions: dict[str, StepFn],
    ) -> None:
        self.deps = deps
        self.run_ctx = run
        self.stop = stop
        self.pipeline = pipeline
        self.steps = {s.spec.name: s for s in steps}
        self.order = [s.spec.name for s in steps]
        self.functions = functions
        self.step_stops = {name: threading.Event() for name in self.order}
        self.outcomes: dict[str, _StepOutcome] = {}
        # DqResults riding on a step's last error (see `_carried_dq_results`).
        self._carried_dq: dict[str, list[DqResult]] = {}
        # The thread of a step's attempt that timed out and was left running.
        self._abandoned: dict[str, threading.Thread] = {}

    # -- scheduling -------------------------------------------------------
    def run(self) -> PipelineOutcome:
        pending = list(self.order)
        running: dict[str, Future[_StepOutcome]] = {}
        failed_stop: str | None = None  # first step whose failure stops the run
        with ThreadPoolExecutor(
            max_workers=self.pipeline.max_parallel, thread_name_prefix="step"
        ) as pool:
            while pending or running:
                if self.stop.is_set():
                    for name in running:
                        self.step_stops[name].set()
                if self.stop.is_set() or failed_stop:
                    for name in pending:
                        self._not_run(name, failed_stop)
                    pending = []
                else:
                    pending = self._launch_ready(pending, running, pool)
                if not running:
                    if pending and not self._any_ready(pending):
                        # Unreachable for a validated DAG; never spin forever.
                        for name in pending:
                            self._not_run(name, None, "not run: unsatisfiable dependencies")
                        pending = []
                    continue
                done, _ = wait(list(running.values()), timeout=_TICK, return_when=FIRST_COMPLETED)
                for name, future in list(running.items()):
                    if future in done:
                        del running[name]
                        self.outcomes[name] = future.result()
                        if (
                            self.outcomes[name].log.status == "FAILED"
                            and self.steps[name].spec.on_failure == "stop"
                            and failed_stop is None
                        ):
                            failed_stop = name
        return self._outcome(failed_stop)

    def _status(self, name: str) -> StepStatus | None:
        outcome = self.outcomes.get(name)
        return outcome.log.status if outcome else None

    def _any_ready(self, pending: list[str]) -> bool:
        return any(
            all(self._status(d) is not None for d in self.steps[n].spec.depends_on) for n in pending
        )

    def _launch_ready(
        self,
        pending: list[str],
        running: dict[str, Future[_StepOutcome]],
        pool: ThreadPoolExecutor,
    ) -> list[str]:
        still: list[str] = []
        for name in pending:
            deps_status = {d: self._status(d) for d in self.steps[name].spec.depends_on}
            blocked = [d for d, s in deps_status.items() if s is not None and s != "SUCCEEDED"]
            if blocked:
                now = self.deps.clock()
                self.outcomes[name] = _StepOutcome(
                    StepLog(
                        name,
                        "SKIPPED",
                        now,
                        now,
                        f"skipped: dependency {blocked[0]} {deps_status[blocked[0]]}",
                    )
                )
            elif all(s == "SUCCEEDED" for s in deps_status.values()) and (
                len(running) < self.pipeline.max_parallel
            ):
                running[name] = pool.submit(self._run_step_safely, name)
            else:
                still.append(name)
        return still

    def _not_run(self, name: str, failed_step: str | None, reason: str | None = None) -> None:
        now = self.deps.clock()
        if reason is not None:
            entry = StepLog(name, "SKIPPED", now, now, reason)
        elif failed_step is None:
            entry = StepLog(name, "CANCELLED", now, now, "not run: the run was cancelled")
        else:
            entry = StepLog(name, "SKIPPED", now, now, f"not run: step {failed_step} failed")
        self.outcomes[name] = _StepOutcome(entry)

    def _outcome(self, failed_stop: str | None) -> PipelineOutcome:
        logs = [self.outcomes[n].log for n in self.order if n in self.outcomes]
        dq = [r for n in self.order if n in self.outcomes for r in self.outcomes[n].dq_results]
        rows = sum(
            entry.rows_processed or 0
            for entry in logs
            if entry.status == "SUCCEEDED" and self.steps[entry.step_name].kind.writes
        )
        outcome = PipelineOutcome("SUCCEEDED", logs, dq, rows)
        if failed_stop is not None:
            failed = self.outcomes[failed_stop].log
            outcome.state = "FAILED"
            outcome.error_code = failed.error_code
            outcome.error_message = f"step {failed_stop}: {failed.message}"
        elif any(entry.status == "CANCELLED" for entry in logs):
            outcome.state, outcome.error_code = "CANCELLED", "cancelled"
            outcome.error_message = "the run was cancelled"
        return outcome

    # -- one step -----------------------------------------------------------
    def _run_step_safely(self, name: str) -> _StepOutcome:
        """A bug in the executor itself fails the step, never the whole run loop."""
        started = self.deps.clock()
        try:
            return self._run_step(name)
        except Exception as exc:
            log.error("executor error in step %s: %s", name, type(exc).__name__)
            return self._ended(
                name,
                status="FAILED",
                started=started,
                attempts=1,
                message=f"internal error ({type(exc).__name__})",
                code="internal_error",
            )

    def _run_step(self, name: str) -> _StepOutcome:
        step = self.steps[name]
        spec = step.spec
        step_stop = self.step_stops[name]
        ctx = StepContext(self.deps, self.run_ctx, name, dict(step.params), step_stop)
        started = self.deps.clock()
        attempt = outages = 0
        while True:
            attempt += 1
            failures_before = self.deps.warehouse.connection_failures.count
            result, error = self._attempt(name, ctx, spec.timeout_seconds)
            if error is None:
                if result is not None:
                    return self._succeeded(name, started, attempt, result)
                error = StepError("no_result", "the step returned no result")
            code, message = _describe(error)
            self._carried_dq[name] = _carried_dq_results(error)
            if self.stop.is_set() and (code == "cancelled" or step_stop.is_set()):
                return self._ended(
                    name,
                    status="CANCELLED",
                    started=started,
                    attempts=attempt,
                    message=message,
                    code="cancelled",
                )
            if outages < OUTAGE_RETRIES and self._outage(code, error, failures_before):
                outages += 1
                log.warning(
                    "step %s attempt %d failed (%s) while the warehouse was unreachable; "
                    "retrying once it is back",
                    name,
                    attempt,
                    code,
                )
                recovery = self._await_recovery(name, ctx)
                if recovery == "ready":
                    continue
                if recovery == "cancelled":
                    return self._ended(
                        name,
                        status="CANCELLED",
                        started=started,
                        attempts=attempt,
                        message=message,
                        code="cancelled",
                    )
            elif is_transient(error) and attempt <= spec.retries:
                delay = min(spec.retry_backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
                log.warning(
                    "step %s attempt %d failed transiently (%s); retrying in %.1fs",
                    name,
                    attempt,
                    code,
                    delay,
                )
                if step_stop.wait(delay):
                    return self._ended(
                        name,
                        status="CANCELLED",
                        started=started,
                        attempts=attempt,
                        message=message,
                        code="cancelled",
                    )
                continue
            return self._ended(
                name, status="FAILED", started=started, attempts=attempt, message=message, code=code
            )

    def _attempt(
        self, name: str, ctx: StepContext, timeout: float
    ) -> tuple[StepResult | None, BaseException | None]:
        """One call of the step function in its own thread, bounded by `timeout`."""
        box: dict[str, Any] = {}
        fn = self.functions[name]

        def target() -> None:
            try:
                box["result"] = fn(ctx)
            except BaseException as exc:  # reported as the step's failure
                box["error"] = exc

        worker = threading.Thread(target=target, name=f"step-{name}", daemon=True)
        worker.start()
        deadline = time.monotonic() + timeout
        grace_end: float | None = None
        while worker.is_alive():
            now = time.monotonic()
            if now >= deadline:
                # The thread can't be killed: signal it (its query is cancelled)
                # and leave it behind.
                ctx.stop.set()
                self._abandoned[name] = worker
                return None, StepError("timeout", f"the step ran longer than {timeout:g}s")
            if ctx.stop.is_set() and grace_end is None:
                grace_end = now + CANCEL_GRACE_SECONDS
            if grace_end is not None and now >= grace_end:
                return None, StepError("cancelled", "the step did not stop in time; abandoned")
            worker.join(min(_TICK * 2, max(deadline - now, 0.0)))
        if "error" in box:
            return None, box["error"]
        result = box.get("result")
        if not isinstance(result, StepResult):
            return None, StepError("internal_error", "the step returned no StepResult")
        return result, None

    def _outage(self, code: str, error: BaseException, failures_before: int) -> bool:
        """The attempt timed out or failed transiently, and a connection to the warehouse
        failed while it ran or the warehouse does not answer now."""
        if code != "timeout" and not (is_transient(error) or isinstance(error, gexc.RetryError)):
            return False
        # A call may still sleep in the client's retry backoff after the warehouse is
        # back (drill 2): the probe alone would call that attempt merely slow.
        if self.deps.warehouse.connection_failures.count > failures_before:
            return True
        return not self.deps.warehouse.reachable(PROBE_SECONDS)

    def _await_recovery(self, name: str, ctx: StepContext) -> str:
        """Waits for the abandoned attempt to end and the warehouse to answer again:
        "ready" (the next attempt may start), "cancelled" (the run was stopped), "gave_up"."""
        deadline = time.monotonic() + OUTAGE_WAIT_SECONDS
        worker = self._abandoned.pop(name, None)
        while worker is not None and worker.is_alive():
            # It rides the outage out on the client's retry, then sees its stop event.
            if self.stop.is_set():
                return "cancelled"
            if time.monotonic() >= deadline:
                return "gave_up"
            worker.join(1.0)
        delay = 1.0
        while not self.deps.warehouse.reachable(PROBE_SECONDS):
            if time.monotonic() >= deadline:
                return "gave_up"
            if self.stop.wait(delay):
                return "cancelled"
            delay = min(delay * 2, 30.0)
        if self.stop.is_set():
            return "cancelled"
        ctx.stop.clear()  # the timed-out attempt was told to stop; the next one must not be
        return "ready"

    def _succeeded(
        self, name: str, started: Any, attempts: int, result: StepResult
    ) -> _StepOutcome:
        failed = [r for r in result.dq_results if r.status == "FAIL"]
        status: StepStatus = "FAILED" if failed else "SUCCEEDED"
        message = result.message
        if failed:
            message = f"{len(failed)} data-quality check(s) failed: " + ", ".join(
                r.check_name for r in failed[:5]
            )
        entry = StepLog(
            name,
            status,
            started,
            self.deps.clock(),
            message,
            result.rows_processed,
            result.bytes_billed,
            attempts,
            "dq_failed" if failed else None,
        )
        return _StepOutcome(entry, list(result.dq_results))

    def _ended(
        self,
        name: str,
        *,
        status: StepStatus,
        started: Any,
        attempts: int,
        message: str,
        code: str,
    ) -> _StepOutcome:
        entry = StepLog(name, status, started, self.deps.clock(), message, attempts=attempts)
        entry.error_code = code
        return _StepOutcome(entry, self._carried_dq.pop(name, []))


def _carried_dq_results(error: BaseException) -> list[DqResult]:
    """DqResults a failing step attached to its error (e.g. focus.check's DqFailed)."""
    carried = getattr(error, "dq_results", None)
    if isinstance(carried, list) and all(isinstance(r, DqResult) for r in carried):
        return list(carried)
    return []


def _describe(error: BaseException) -> tuple[str, str]:
    """A stable code and a message fit for the tenant's step log (no internals)."""
    if isinstance(error, StepError):
        return error.code, str(error)
    if isinstance(error, ValidationError):
        return "invalid_params", f"invalid step parameters ({error.error_count()} problem(s))"
    if isinstance(error, gexc.GoogleAPICallError):
        return "bigquery_error", f"BigQuery: {error.message}"[:1000]
    if isinstance(error, ConnectionError):
        return "connection_error", "a connection failed"
    # Unexpected: only the type reaches logs, the message might hold anything.
    log.error("step failed with an unexpected %s", type(error).__name__)
    return "internal_error", f"internal error ({type(error).__name__})"

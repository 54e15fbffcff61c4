"""The contract between the runner job and the pipeline executor: a run in, an outcome out."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from shared.deps import Deps

StepStatus = Literal["SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"]
DqStatus = Literal["PASS", "WARN", "FAIL"]
RunState = Literal["SUCCEEDED", "FAILED", "CANCELLED"]


@dataclass(frozen=True)
class RunContext:
    """Everything a pipeline needs to know about the run it executes; built by the runner."""

    run_id: str
    tenant_id: str
    config_id: str
    pipeline: str  # the built-in template id, e.g. "dryrun", "gcp_cost_billing"
    run_date: dt.date
    dataset_id: str  # the tenant's own dataset
    parameters: dict[str, Any] = field(default_factory=dict)
    provider_config_id: str | None = None
    credential_id: str | None = None
    # Every query job of the run is capped at this many billed bytes (the plan's limit).
    max_bytes_billed: int | None = None
    attempt: int = 1
    # A backfill's first data date; None: the run covers run_date alone. run_date is
    # always the last data date, so a run covers date_from..run_date.
    date_from: dt.date | None = None

    @property
    def first_date(self) -> dt.date:
        """The first data date the run covers (its run_date unless it is a backfill)."""
        return self.date_from or self.run_date


@dataclass
class StepLog:
    """One step's record in the central step log (`tenant_step_logs`)."""

    step_name: str
    status: StepStatus
    started_at: dt.datetime
    finished_at: dt.datetime
    message: str | None = None
    rows_processed: int | None = None
    bytes_billed: int | None = None
    attempts: int = 1
    error_code: str | None = None

    @property
    def duration_ms(self) -> int:
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


@dataclass
class DqResult:
    """One data-quality expectation's result (`tenant_dq_results`)."""

    step_name: str
    check_name: str
    status: DqStatus
    checked_at: dt.datetime
    expected: str | None = None
    actual: str | None = None
    detail: str | None = None


@dataclass
class PipelineOutcome:
    """What the executor hands back; the runner writes it in one batch and finishes the run."""

    state: RunState
    steps: list[StepLog] = field(default_factory=list)
    dq_results: list[DqResult] = field(default_factory=list)
    rows_written: int = 0
    error_code: str | None = None
    error_message: str | None = None


class StepError(Exception):
    """A step's failure with a stable code; `transient` ones are retried with backoff."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


@dataclass(frozen=True)
class StepContext:
    """What one step gets: the run, its own name and parameters, and the run's stop signal."""

    deps: Deps
    run: RunContext
    step_name: str
    params: dict[str, Any]
    stop: threading.Event


@dataclass
class StepResult:
    """What a step reports back to the executor for its step log."""

    rows_processed: int | None = None
    bytes_billed: int | None = None
    message: str | None = None
    dq_results: list[DqResult] = field(default_factory=list)


# A step type's implementation, e.g. the function behind `gcp_billing.extract`.
StepFn = Callable[[StepContext], StepResult]

"""The DAG executor against the real emulator: ordering, concurrency, skips, retries, timeouts,
cancellation, DQ failures, and the dryrun template."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.deps import Deps
from shared.pipelines.context import DqResult, RunContext, StepContext, StepError, StepResult
from shared.pipelines.definitions import PipelineDef, parse_definition
from shared.pipelines.executor import execute
from shared.pipelines.registry import StepType
from shared.pipelines.steps import step_job_config, step_query

HERE = "tests.integration.test_executor"
CALLS: dict[str, int] = {}
EVENTS: dict[str, Any] = {}


def registry() -> dict[str, StepType]:
    names = (
        "ok",
        "flaky",
        "permanent",
        "bq_flaky",
        "sleepy",
        "barrier",
        "dq_fail",
        "dq_warn",
        "dq_raise",
    )
    types = {n: StepType(n, f"{HERE}:step_{n}") for n in names}
    types["bad_sql"] = StepType("bad_sql", f"{HERE}:step_bad_sql")
    types["writer"] = StepType("writer", f"{HERE}:step_writer", writes=True)
    return types


def _count(ctx: StepContext) -> int:
    CALLS[ctx.step_name] = CALLS.get(ctx.step_name, 0) + 1
    return CALLS[ctx.step_name]


def step_ok(ctx: StepContext) -> StepResult:
    _count(ctx)
    EVENTS.setdefault("order", []).append(ctx.step_name)
    return StepResult(rows_processed=1, message="ok")


def step_writer(ctx: StepContext) -> StepResult:
    _count(ctx)
    return StepResult(rows_processed=7)


def step_flaky(ctx: StepContext) -> StepResult:
    if _count(ctx) <= int(ctx.params.get("fail_times", 2)):
        raise StepError("flaky", "try again", transient=True)
    return StepResult(message="third time lucky")


def step_bq_flaky(ctx: StepContext) -> StepResult:
    if _count(ctx) == 1:
        raise gexc.ServiceUnavailable("backend unavailable")
    return StepResult()


def step_permanent(ctx: StepContext) -> StepResult:
    _count(ctx)
    raise StepError("bad_input", "this will never work")


def step_bad_sql(ctx: StepContext) -> StepResult:
    _count(ctx)
    step_query(ctx, "SELECT no_such_column FROM UNNEST([1]) AS x")
    return StepResult()


def step_sleepy(ctx: StepContext) -> StepResult:
    _count(ctx)
    EVENTS[ctx.step_name + ":ctx_stop"] = ctx.stop
    EVENTS[ctx.step_name + ":started"].set()
    # Cooperative like step_query: returns when told to stop.
    if ctx.stop.wait(float(ctx.params.get("seconds", 30))):
        raise StepError("cancelled", "stopped")
    return StepResult()


def step_barrier(ctx: StepContext) -> StepResult:
    _count(ctx)
    EVENTS["barrier"].wait()  # breaks (raises) unless both branches run at once
    return StepResult()


def _dq(ctx: StepContext, status: str) -> StepResult:
    _count(ctx)
    result = DqResult(ctx.step_name, "sum_check", status, ctx.deps.clock(), "1", "2")  # type: ignore[arg-type]
    return StepResult(dq_results=[result], message="checked")


def step_dq_fail(ctx: StepContext) -> StepResult:
    return _dq(ctx, "FAIL")


def step_dq_warn(ctx: StepContext) -> StepResult:
    return _dq(ctx, "WARN")


class CarriedDqError(StepError):
    """Like focus.check's DqFailed: a failure that carries its DqResults."""

    def __init__(self, results: list[DqResult]) -> None:
        super().__init__("dq_failed", "2 checks, 1 failed")
        self.dq_results = results


def step_dq_raise(ctx: StepContext) -> StepResult:
    _count(ctx)
    now = ctx.deps.clock()
    raise CarriedDqError(
        [
            DqResult(ctx.step_name, "reconciliation", "FAIL", now, "1.000000001", "1"),
            DqResult(ctx.step_name, "row_count", "PASS", now, "2", "2"),
        ]
    )


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    CALLS.clear()
    EVENTS.clear()
    yield


@pytest.fixture
def dataset(deps: Deps) -> Iterator[str]:
    dataset_id = "t" + uuid.uuid4().hex[:12]
    deps.warehouse.client.create_dataset(f"{deps.warehouse.project}.{dataset_id}")
    yield dataset_id
    deps.warehouse.client.delete_dataset(
        f"{deps.warehouse.project}.{dataset_id}", delete_contents=True, not_found_ok=True
    )


def run_for(dataset: str, pipeline: str = "custom", **changes: Any) -> RunContext:
    values: dict[str, Any] = {
        "run_id": "run_" + uuid.uuid4().hex[:8],
        "tenant_id": dataset,
        "config_id": "cfg_1",
        "pipeline": pipeline,
        "run_date": dt.date(2026, 11, 29),
        "dataset_id": dataset,
        "max_bytes_billed": 10**9,
        **changes,
    }
    return RunContext(**values)


def definition(*steps: str) -> PipelineDef:
    text = "id: custom\nmax_parallel: 2\nsteps:\n" + "\n".join(f"  - {s}" for s in steps)
    return parse_definition(text, registry=registry())


def go(deps: Deps, dataset: str, pipeline: PipelineDef, stop: threading.Event | None = None) -> Any:
    return execute(
        deps, run_for(dataset), stop or threading.Event(), definition=pipeline, registry=registry()
    )


def states(outcome: Any) -> dict[str, str]:
    return {s.step_name: s.status for s in outcome.steps}


def test_dryrun_succeeds_on_an_existing_dataset_and_writes_nothing(
    deps: Deps, dataset: str
) -> None:
    outcome = execute(deps, run_for(dataset, "dryrun"), threading.Event())
    assert outcome.state == "SUCCEEDED", outcome
    assert states(outcome) == {"check_dataset": "SUCCEEDED", "check_credential": "SUCCEEDED"}
    assert outcome.steps[1].message == "no credential configured"
    assert list(deps.warehouse.client.list_tables(f"{deps.warehouse.project}.{dataset}")) == []


def test_dryrun_fails_on_a_missing_dataset_and_skips_the_rest(deps: Deps) -> None:
    outcome = execute(
        deps, run_for("t_missing_" + uuid.uuid4().hex[:6], "dryrun"), threading.Event()
    )
    assert (outcome.state, outcome.error_code) == ("FAILED", "dataset_missing")
    assert states(outcome) == {"check_dataset": "FAILED", "check_credential": "SKIPPED"}


def test_unknown_pipeline_and_missing_parameters_fail_clearly(deps: Deps, dataset: str) -> None:
    outcome = execute(deps, run_for(dataset, "nope"), threading.Event())
    assert (outcome.state, outcome.error_code) == ("FAILED", "unknown_pipeline")
    outcome = execute(deps, run_for(dataset, "bq_etl"), threading.Event())
    assert (outcome.state, outcome.error_code) == ("FAILED", "invalid_pipeline")
    assert "missing parameter 'sql'" in (outcome.error_message or "")
    assert outcome.steps == []


def test_steps_run_in_dependency_order_and_independent_ones_concurrently(
    deps: Deps, dataset: str
) -> None:
    EVENTS["barrier"] = threading.Barrier(2, timeout=10)
    outcome = go(
        deps,
        dataset,
        definition(
            "{name: first, type: ok}",
            "{name: left, type: barrier, depends_on: [first]}",
            "{name: right, type: barrier, depends_on: [first]}",
            "{name: last, type: ok, depends_on: [left, right]}",
        ),
    )
    assert outcome.state == "SUCCEEDED", outcome
    assert EVENTS["order"] == ["first", "last"]
    assert [s.step_name for s in outcome.steps] == ["first", "left", "right", "last"]


def test_a_failed_step_stops_the_run_and_its_dependents_are_skipped(
    deps: Deps, dataset: str
) -> None:
    outcome = go(
        deps,
        dataset,
        definition(
            "{name: a, type: permanent, retries: 3, retry_backoff_seconds: 0}",
            "{name: b, type: ok, depends_on: [a]}",
            "{name: c, type: ok, depends_on: [b]}",
        ),
    )
    assert (outcome.state, outcome.error_code) == ("FAILED", "bad_input")
    assert states(outcome) == {"a": "FAILED", "b": "SKIPPED", "c": "SKIPPED"}
    assert CALLS == {"a": 1}  # permanent: never retried
    assert outcome.steps[0].attempts == 1
    assert "this will never work" in (outcome.error_message or "")


def test_on_failure_continue_runs_independent_steps_and_does_not_fail_the_run(
    deps: Deps, dataset: str
) -> None:
    outcome = go(
        deps,
        dataset,
        definition(
            "{name: a, type: permanent, on_failure: continue}",
            "{name: b, type: ok, depends_on: [a]}",
            "{name: c, type: writer}",
            "{name: d, type: ok, depends_on: [c]}",
        ),
    )
    assert outcome.state == "SUCCEEDED"
    assert states(outcome) == {"a": "FAILED", "b": "SKIPPED", "c": "SUCCEEDED", "d": "SUCCEEDED"}
    assert "dependency a FAILED" in (outcome.steps[1].message or "")
    assert outcome.rows_written == 7  # only the writing step's rows


def test_transient_errors_are_retried_with_backoff(deps: Deps, dataset: str) -> None:
    started = time.monotonic()
    outcome = go(
        deps,
        dataset,
        definition(
            "{name: a, type: flaky, retries: 2, retry_backoff_seconds: 0.2}",
            "{name: b, type: bq_flaky, retries: 1, retry_backoff_seconds: 0}",
        ),
    )
    assert outcome.state == "SUCCEEDED", outcome
    assert CALLS == {"a": 3, "b": 2}
    assert [s.attempts for s in outcome.steps] == [3, 2]
    assert time.monotonic() - started >= 0.2 + 0.4  # exponential: 0.2 s, then 0.4 s


def test_retries_run_out(deps: Deps, dataset: str) -> None:
    outcome = go(
        deps,
        dataset,
        definition("{name: a, type: flaky, retries: 1, retry_backoff_seconds: 0}"),
    )
    assert (outcome.state, outcome.error_code) == ("FAILED", "flaky")
    assert CALLS == {"a": 2}


def test_a_permanent_bigquery_error_is_not_retried(deps: Deps, dataset: str) -> None:
    outcome = go(
        deps,
        dataset,
        definition("{name: a, type: bad_sql, retries: 3, retry_backoff_seconds: 0}"),
    )
    assert (outcome.state, outcome.error_code) == ("FAILED", "bigquery_error")
    assert CALLS == {"a": 1}


def test_a_step_that_exceeds_its_timeout_fails_with_timeout(deps: Deps, dataset: str) -> None:
    EVENTS["a:started"] = threading.Event()
    started = time.monotonic()
    outcome = go(
        deps,
        dataset,
        definition(
            "{name: a, type: sleepy, timeout_seconds: 0.5, retries: 2, params: {seconds: 30}}",
            "{name: b, type: ok, depends_on: [a]}",
        ),
    )
    assert time.monotonic() - started < 5
    assert (outcome.state, outcome.error_code) == ("FAILED", "timeout")
    assert states(outcome) == {"a": "FAILED", "b": "SKIPPED"}
    assert CALLS == {"a": 1}  # a timeout is not retried
    assert EVENTS["a:ctx_stop"].is_set()  # the abandoned step was told to stop


def test_a_stop_request_cancels_the_run_at_the_step_boundary(deps: Deps, dataset: str) -> None:
    EVENTS["a:started"] = threading.Event()
    stop = threading.Event()
    pipeline = definition(
        "{name: a, type: sleepy, params: {seconds: 30}}",
        "{name: b, type: ok, depends_on: [a]}",
    )
    threading.Thread(target=lambda: EVENTS["a:started"].wait(10) and stop.set()).start()
    started = time.monotonic()
    outcome = go(deps, dataset, pipeline, stop)
    assert time.monotonic() - started < 5
    assert (outcome.state, outcome.error_code) == ("CANCELLED", "cancelled")
    assert states(outcome) == {"a": "CANCELLED", "b": "CANCELLED"}
    assert "b" not in CALLS


def test_a_failed_dq_result_fails_the_step_and_the_run_with_results_kept(
    deps: Deps, dataset: str
) -> None:
    outcome = go(
        deps,
        dataset,
        definition("{name: warn, type: dq_warn}", "{name: check, type: dq_fail, retries: 2}"),
    )
    assert (outcome.state, outcome.error_code) == ("FAILED", "dq_failed")
    assert states(outcome) == {"warn": "SUCCEEDED", "check": "FAILED"}
    assert [(r.step_name, r.status) for r in outcome.dq_results] == [
        ("warn", "WARN"),
        ("check", "FAIL"),
    ]
    assert CALLS["check"] == 1  # a data problem is not transient


def test_dq_results_carried_by_a_failing_step_are_kept(deps: Deps, dataset: str) -> None:
    outcome = go(deps, dataset, definition("{name: check, type: dq_raise, retries: 2}"))
    assert (outcome.state, outcome.error_code) == ("FAILED", "dq_failed")
    assert [(r.check_name, r.status) for r in outcome.dq_results] == [
        ("reconciliation", "FAIL"),
        ("row_count", "PASS"),
    ]
    assert CALLS == {"check": 1}


def test_step_queries_carry_labels_and_the_byte_cap(deps: Deps, dataset: str) -> None:
    run = run_for(dataset, max_bytes_billed=12345)
    ctx = StepContext(deps, run, "Extract-Step", {}, threading.Event())
    config = step_job_config(ctx, {"d": run.run_date})
    assert config.maximum_bytes_billed == 12345
    assert config.labels["tenant_id"] == dataset
    assert config.labels["run_id"] == run.run_id
    assert config.labels["step"] == "extract-step"
    assert config.labels["pipeline"] == "custom"
    assert isinstance(config.query_parameters[0], bigquery.ScalarQueryParameter)
    assert step_query(ctx, "SELECT @d AS d", {"d": run.run_date}).rows == [{"d": run.run_date}]
    ctx.stop.set()
    with pytest.raises(StepError, match="stopped"):
        step_query(ctx, "SELECT 1")

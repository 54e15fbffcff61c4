"""A step caught by a warehouse outage (drill 2's open failure, docs/drills.md): the real
emulator behind a forwarder that drops it for a few seconds; the step is retried after."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from shared.deps import Deps
from shared.pipelines.context import RunContext, StepContext, StepResult
from shared.pipelines.definitions import parse_definition
from shared.pipelines.executor import execute
from shared.pipelines.registry import StepType
from shared.pipelines.steps import step_query
from shared.platform.secrets import StaticSecrets
from tests.conftest import TEST_SECRETS
from tests.integration.outage_proxy import OutageProxy

HERE = "tests.integration.test_executor_outage"
OUTAGE_SECONDS = 6.0
EVENTS: dict[str, Any] = {}


def step_reads_through_the_outage(ctx: StepContext) -> StepResult:
    """Its first attempt queries once the outage has begun; every attempt counts how many run."""
    with EVENTS["lock"]:
        EVENTS["attempts"] += 1
        EVENTS["live"] += 1
        EVENTS["most_live"] = max(EVENTS["most_live"], EVENTS["live"])
        first = EVENTS["attempts"] == 1
    try:
        if first:
            EVENTS["started"].set()
            EVENTS["outage"].wait(30)
        outcome = step_query(ctx, "SELECT 41 + 1 AS answer")
        return StepResult(rows_processed=len(outcome.rows), message=str(outcome.rows[0]["answer"]))
    finally:
        with EVENTS["lock"]:
            EVENTS["live"] -= 1


def registry() -> dict[str, StepType]:
    return {"reader": StepType("reader", f"{HERE}:step_reads_through_the_outage")}


@pytest.fixture
def proxied(deps: Deps) -> Iterator[tuple[Deps, OutageProxy]]:
    target = urlparse(deps.settings.bigquery_emulator_host or "")
    proxy = OutageProxy(target.hostname or "127.0.0.1", int(target.port or 0))
    proxy.up()
    settings = deps.settings.model_copy(update={"bigquery_emulator_host": proxy.url})
    EVENTS.clear()
    EVENTS.update(
        lock=threading.Lock(),
        attempts=0,
        live=0,
        most_live=0,
        started=threading.Event(),
        outage=threading.Event(),
    )
    yield Deps(settings=settings, secrets=StaticSecrets(TEST_SECRETS)), proxy
    proxy.down()


def _run(dataset: str) -> RunContext:
    return RunContext(
        run_id="run_" + uuid.uuid4().hex[:8],
        tenant_id=dataset,
        config_id="cfg_1",
        pipeline="custom",
        run_date=dt.date(2026, 11, 29),
        dataset_id=dataset,
        max_bytes_billed=10**9,
    )


def test_a_step_that_times_out_while_the_warehouse_is_unreachable_is_retried_after_it(
    proxied: tuple[Deps, OutageProxy],
) -> None:
    deps, proxy = proxied
    pipeline = parse_definition(
        "id: custom\nsteps:\n  - {name: read, type: reader, timeout_seconds: 2}",
        registry=registry(),
    )
    result: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: result.update(
            outcome=execute(
                deps, _run("t_outage"), threading.Event(), definition=pipeline, registry=registry()
            )
        ),
        daemon=True,
    )
    runner.start()
    assert EVENTS["started"].wait(30)
    proxy.down()
    EVENTS["outage"].set()
    time.sleep(OUTAGE_SECONDS)  # longer than the step's 2 s timeout
    proxy.up()
    runner.join(120)
    outcome = result["outcome"]

    assert (outcome.state, outcome.error_code) == ("SUCCEEDED", None), outcome
    (step,) = outcome.steps
    assert (step.status, step.message, step.attempts) == ("SUCCEEDED", "42", 2)
    assert EVENTS["attempts"] == 2
    # The timed-out attempt had ended before the retry began: never two at once.
    assert EVENTS["most_live"] == 1


def step_sleeps_past_the_outage(ctx: StepContext) -> StepResult:
    """Its first attempt queries through the outage, then stays busy until told to stop: the
    call still asleep in the client's retry backoff when the warehouse is already back."""
    with EVENTS["lock"]:
        EVENTS["attempts"] += 1
        first = EVENTS["attempts"] == 1
    outcome = None
    if first:
        EVENTS["started"].set()
        EVENTS["outage"].wait(30)
        outcome = step_query(ctx, "SELECT 41 + 1 AS answer")
        EVENTS["back"].set()
        ctx.stop.wait(30)
        return StepResult(rows_processed=0, message="the abandoned attempt")
    outcome = step_query(ctx, "SELECT 41 + 1 AS answer")
    return StepResult(rows_processed=len(outcome.rows), message=str(outcome.rows[0]["answer"]))


def test_a_step_that_times_out_after_the_warehouse_is_back_but_saw_the_outage_is_retried(
    proxied: tuple[Deps, OutageProxy],
) -> None:
    # Drill 2's open failure: the probe after the timeout finds the warehouse up,
    # yet the attempt lost its time to the outage (connection errors during it).
    deps, proxy = proxied
    EVENTS["back"] = threading.Event()
    sleeper = {"reader": StepType("reader", f"{HERE}:step_sleeps_past_the_outage")}
    pipeline = parse_definition(
        "id: custom\nsteps:\n  - {name: read, type: reader, timeout_seconds: 15}",
        registry=sleeper,
    )
    result: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: result.update(
            outcome=execute(
                deps, _run("t_outage"), threading.Event(), definition=pipeline, registry=sleeper
            )
        ),
        daemon=True,
    )
    runner.start()
    assert EVENTS["started"].wait(30)
    proxy.down()
    EVENTS["outage"].set()
    time.sleep(1.0)  # connections refused; the client retries
    proxy.up()
    # The warehouse answers again before the step's timeout fires.
    assert EVENTS["back"].wait(30)
    assert deps.warehouse.connection_failures.count >= 1
    runner.join(120)
    outcome = result["outcome"]

    assert (outcome.state, outcome.error_code) == ("SUCCEEDED", None), outcome
    (step,) = outcome.steps
    assert (step.status, step.message, step.attempts) == ("SUCCEEDED", "42", 2)
    assert EVENTS["attempts"] == 2

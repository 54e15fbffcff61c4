"""Drill 2's hang: direct client calls a request makes (not jobs) give up within
BQ_UNREACHABLE_SECONDS when the warehouse is unreachable, so the request answers
503 + Retry-After instead of hanging in the client's 600 s default retry."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from shared.deps import Deps
from shared.pipelines.sql_sandbox import _live_columns
from shared.platform import audit
from shared.platform.secrets import StaticSecrets
from shared.tenancy import access_epoch, tenant_dataset
from tests.conftest import TEST_SECRETS
from tests.integration.outage_proxy import OutageProxy

UNREACHABLE_SECONDS = 2.0
# Far under the client's default 600 s, far over the bound plus one HTTP attempt.
GIVE_UP_WITHIN = 20.0


@pytest.fixture
def outage(deps: Deps) -> Iterator[Deps]:
    """Deps whose warehouse is behind a forwarder that refuses every connection."""
    target = urlparse(deps.settings.bigquery_emulator_host or "")
    proxy = OutageProxy(target.hostname or "127.0.0.1", int(target.port or 0))
    proxy.up()
    settings = deps.settings.model_copy(
        update={"bigquery_emulator_host": proxy.url, "bq_unreachable_seconds": UNREACHABLE_SECONDS}
    )
    proxy.down()
    yield Deps(settings=settings, secrets=StaticSecrets(TEST_SECRETS))


def _outcome(call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    """Seconds the call took and what it raised; a call still running after GIVE_UP_WITHIN
    is a hang (the thread is a daemon, so a failing test does not wait 600 s for it)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            result["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(GIVE_UP_WITHIN)
    assert not thread.is_alive(), f"still waiting on the warehouse after {GIVE_UP_WITHIN} s"
    return time.monotonic() - started, result.get("error")


def _calls(deps: Deps) -> dict[str, Callable[[], Any]]:
    warehouse = deps.warehouse
    spec = deps.catalog.tenant["focus_cost"]
    now = dt.datetime.now(dt.UTC)
    return {
        "auth's access-epoch read": lambda: access_epoch.read(warehouse, "t_outage"),
        "an audit row": lambda: audit.record(warehouse, actor="admin", action="probe", now=now),
        "the sandbox's table lookup": lambda: _live_columns(deps, "t_outage", "my_table"),
        "the sandbox's wildcard lookup": lambda: _live_columns(deps, "t_outage", "my_*"),
        "onboarding's dataset create": lambda: warehouse.create_dataset(
            "t_outage", description="probe", labels={}
        ),
        "onboarding's table create": lambda: warehouse.create_table("t_outage", spec),
        "the dataset's labels": lambda: warehouse.dataset_labels("t_outage"),
        "the dataset's tables": lambda: warehouse.existing_tables("t_outage"),
        "offboarding's dataset delete": lambda: tenant_dataset.delete_dataset(
            warehouse, "t_outage"
        ),
        "the dataset write check": lambda: tenant_dataset.write_check(warehouse, "t_outage"),
    }


NAMES = [
    "auth's access-epoch read",
    "an audit row",
    "the sandbox's table lookup",
    "the sandbox's wildcard lookup",
    "onboarding's dataset create",
    "onboarding's table create",
    "the dataset's labels",
    "the dataset's tables",
    "offboarding's dataset delete",
    "the dataset write check",
]


@pytest.mark.parametrize("name", NAMES)
def test_a_direct_client_call_gives_up_within_the_bound(outage: Deps, name: str) -> None:
    calls = _calls(outage)
    assert sorted(calls) == sorted(NAMES)
    seconds, error = _outcome(calls[name])
    # The audit write swallows its failure by design (the action already happened);
    # every other call raises, and serve() answers that with 503 + Retry-After.
    if name != "an audit row":
        assert error is not None, f"{name} returned although the warehouse is unreachable"
    assert seconds < GIVE_UP_WITHIN

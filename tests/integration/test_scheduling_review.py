"""Security review of scheduling: crafted cursors, crons that never fire, platform parameters,
and run endpoints that clients retry (retry, cancel, manual runs with an Idempotency-Key)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from typing import Any

import pytest

from jobs.pipeline_runner import execute_run
from shared.deps import deps as current_deps
from tests.integration.conftest import Platform
from tests.integration.test_scheduling import (
    config_for,
    make_config,
    queue,
    run_states,
    set_limits,
    tick,
    usage,
)


def _cursor(created: str) -> str:
    raw = json.dumps([created, "run_" + "0" * 32]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("0001-01-01T00:00:00+01:00"),
        _cursor("9999-12-31T23:59:59-01:00"),
        _cursor("0001-01-01T00:00:00+00:00"),
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00"]').decode(),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_a_crafted_history_cursor_is_a_400_naming_the_cursor(
    platform: Platform, cursor: str
) -> None:
    tenant = platform.onboarded()

    response = platform.tenant_call("pipelines", "GET", f"/runs?cursor={cursor}", tenant["api_key"])

    assert response.status_code == 400, response.get_json()
    assert response.get_json()["field"] == "cursor"


# ------------------------------------------------------- crons that never fire


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *"])
def test_a_cron_that_can_never_fire_is_refused_on_create_even_when_paused(
    platform: Platform, cron: str
) -> None:
    tenant = platform.onboarded()

    response = make_config(platform, tenant["api_key"], schedule_cron=cron, is_active=False)

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == "schedule_cron"
    listed = platform.tenant_call("pipelines", "GET", "/configs", tenant["api_key"]).get_json()
    assert listed["configs"] == []


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_cron_that_can_never_fire_is_refused_on_update(platform: Platform, method: str) -> None:
    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"], is_active=False)
    body: dict[str, Any] = {"schedule_cron": "0 0 31 2 *", "is_active": True}
    if method == "PUT":
        body = {"name": "n", "pipeline": "dryrun", "timezone": "Europe/Paris", **body}

    response = platform.tenant_call(
        "pipelines", method, f"/configs/{config['config_id']}", tenant["api_key"], json=body
    )

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == "schedule_cron"
    stored = platform.tenant_call(
        "pipelines", "GET", f"/configs/{config['config_id']}", tenant["api_key"]
    ).get_json()
    assert stored["schedule_cron"] == "0 3 * * *" and stored["is_active"] is False


# ------------------------------------------------------- platform parameters


def _deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("lag", [_deep(60), "1", -1, 32, True, 1.5, None, {"a": 1}])
def test_run_date_lag_days_must_be_an_integer_from_0_to_31(platform: Platform, lag: Any) -> None:
    tenant = platform.onboarded()

    response = make_config(platform, tenant["api_key"], parameters={"run_date_lag_days": lag})

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == "parameters.run_date_lag_days"
    listed = platform.tenant_call("pipelines", "GET", "/configs", tenant["api_key"]).get_json()
    assert listed["configs"] == []


@pytest.mark.parametrize("lag", [0, 31])
def test_run_date_lag_days_within_range_is_accepted(platform: Platform, lag: int) -> None:
    tenant = platform.onboarded()

    config = config_for(platform, tenant["api_key"], parameters={"run_date_lag_days": lag})

    assert config["parameters"] == {"run_date_lag_days": lag}


@pytest.mark.parametrize("depth", [60, 900])
def test_deeply_nested_parameters_are_a_4xx_not_a_503(platform: Platform, depth: int) -> None:
    tenant = platform.onboarded()

    response = make_config(
        platform, tenant["api_key"], parameters={"run_date_lag_days": _deep(depth)}
    )

    assert response.status_code in (400, 422), response.get_json()
    listed = platform.tenant_call("pipelines", "GET", "/configs", tenant["api_key"]).get_json()
    assert listed["configs"] == []


def test_a_stored_schedule_that_never_fires_stops_without_failing_the_tick(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    platform.travel_to(dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC))
    config = config_for(platform, tenant["api_key"])
    wh = platform.deps.warehouse
    # A row saved before such schedules were refused.
    wh.execute(
        f"UPDATE {wh.central('tenant_pipeline_configs')} SET schedule_cron = '0 0 31 2 *' "
        "WHERE config_id = @id",
        {"id": config["config_id"]},
    )
    platform.travel_to(dt.datetime(2026, 7, 2, 1, 0, 30, tzinfo=dt.UTC))

    report = tick(platform)

    assert report["due"] == 1
    stored = platform.tenant_call(
        "pipelines", "GET", f"/configs/{config['config_id']}", tenant["api_key"]
    ).get_json()
    assert stored["next_run_time"]["utc"] is None


# ------------------------------------------------------- retried run requests


def _start(platform: Platform, key: str, body: dict[str, Any], **headers: str) -> Any:
    return platform.tenant_call("pipelines", "POST", "/runs", key, json=body, headers=headers)


def _cancelled_run(platform: Platform, key: str) -> str:
    config = config_for(platform, key)
    [run_id] = _start(platform, key, {"config_id": config["config_id"]}).get_json()["run_ids"]
    platform.tenant_call("pipelines", "POST", f"/runs/{run_id}/cancel", key)
    return str(run_id)


def test_a_retried_retry_returns_the_first_retry(platform: Platform) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    cancelled = _cancelled_run(platform, key)
    daily_before = usage(platform, tenant["tenant_id"])["daily_runs"]

    first = platform.tenant_call("pipelines", "POST", f"/runs/{cancelled}/retry", key)
    second = platform.tenant_call("pipelines", "POST", f"/runs/{cancelled}/retry", key)
    [retry_id] = first.get_json()["run_ids"]
    assert execute_run(current_deps(), retry_id) == 0
    after_success = platform.tenant_call("pipelines", "POST", f"/runs/{cancelled}/retry", key)

    assert (first.status_code, second.status_code, after_success.status_code) == (202, 200, 200)
    assert second.get_json() == {**first.get_json(), "state": "QUEUED"}
    assert after_success.get_json()["run_ids"] == [retry_id]
    assert after_success.get_json()["state"] == "SUCCEEDED"
    assert set(after_success.get_json()) == set(first.get_json())
    assert run_states(platform, tenant["tenant_id"]) == {"CANCELLED": 1, "SUCCEEDED": 1}
    assert usage(platform, tenant["tenant_id"])["daily_runs"] == daily_before + 1


def test_concurrent_retries_of_one_run_create_one_retry_and_charge_once(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    cancelled = _cancelled_run(platform, key)
    daily_before = usage(platform, tenant["tenant_id"])["daily_runs"]
    replies: list[Any] = []
    lock = threading.Lock()

    def retry() -> None:
        response = platform.tenant_call("pipelines", "POST", f"/runs/{cancelled}/retry", key)
        with lock:
            replies.append(response)

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.status_code for r in replies) in ([200, 200, 200, 202], [202] * 4), [
        r.get_json() for r in replies
    ]
    assert len({r.get_json()["run_ids"][0] for r in replies}) == 1
    assert run_states(platform, tenant["tenant_id"]) == {"CANCELLED": 1, "QUEUED": 1}
    assert usage(platform, tenant["tenant_id"])["daily_runs"] == daily_before + 1


def test_a_repeated_cancel_answers_like_the_first(platform: Platform) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    config = config_for(platform, key)
    [run_id] = _start(platform, key, {"config_id": config["config_id"]}).get_json()["run_ids"]
    [done] = _start(platform, key, {"config_id": config["config_id"]}).get_json()["run_ids"]
    assert execute_run(current_deps(), done) == 0

    first = platform.tenant_call("pipelines", "POST", f"/runs/{run_id}/cancel", key)
    again = platform.tenant_call("pipelines", "POST", f"/runs/{run_id}/cancel", key)
    finished = platform.tenant_call("pipelines", "POST", f"/runs/{done}/cancel", key)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json()["state"] == "CANCELLED" and again.get_json()["run_id"] == run_id
    assert finished.status_code == 409


def test_a_manual_run_with_an_idempotency_key_is_started_once(platform: Platform) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    config = config_for(platform, key)
    body = {"config_id": config["config_id"], "date_from": "2026-06-01", "date_to": "2026-06-02"}
    daily_before = usage(platform, tenant["tenant_id"])["daily_runs"]

    first = _start(platform, key, body, **{"Idempotency-Key": "backfill-1"})
    second = _start(platform, key, body, **{"Idempotency-Key": "backfill-1"})
    other = _start(
        platform, key, {**body, "date_to": "2026-06-03"}, **{"Idempotency-Key": "backfill-1"}
    )
    other_date = _start(
        platform,
        key,
        {"config_id": config["config_id"], "run_date": "2026-06-01"},
        **{"Idempotency-Key": "backfill-1"},
    )
    fresh = _start(platform, key, body, **{"Idempotency-Key": "backfill-2"})

    assert (first.status_code, second.status_code) == (202, 200)
    assert second.get_json() == first.get_json()
    assert (other.status_code, other_date.status_code) == (409, 409)
    assert other.get_json()["field"] == "Idempotency-Key"
    assert fresh.status_code == 202
    assert set(fresh.get_json()["run_ids"]).isdisjoint(first.get_json()["run_ids"])
    # A backfill is one run: the first request and the fresh key's, one quota unit each.
    assert len(first.get_json()["run_ids"]) == 1
    assert run_states(platform, tenant["tenant_id"]) == {"QUEUED": 2}
    assert usage(platform, tenant["tenant_id"])["daily_runs"] == daily_before + 2
    assert len(queue(platform).all()) == 2


def test_concurrent_manual_runs_with_one_idempotency_key_start_once(platform: Platform) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    set_limits(platform, tenant["tenant_id"], concurrent_run_limit=100)
    config = config_for(platform, key)
    body = {"config_id": config["config_id"], "date_from": "2026-06-01", "date_to": "2026-06-03"}
    replies: list[Any] = []
    lock = threading.Lock()

    def start() -> None:
        response = _start(platform, key, body, **{"Idempotency-Key": "same"})
        with lock:
            replies.append(response)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(r.status_code in (200, 202) for r in replies), [r.get_json() for r in replies]
    assert len({tuple(r.get_json()["run_ids"]) for r in replies}) == 1
    assert run_states(platform, tenant["tenant_id"]) == {"QUEUED": 1}
    assert usage(platform, tenant["tenant_id"])["daily_runs"] == 1


def test_a_malformed_idempotency_key_on_a_manual_run_is_a_400(platform: Platform) -> None:
    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"])

    response = _start(
        platform,
        tenant["api_key"],
        {"config_id": config["config_id"]},
        **{"Idempotency-Key": "a b"},
    )

    assert response.status_code == 400
    assert response.get_json()["field"] == "Idempotency-Key"
    assert run_states(platform, tenant["tenant_id"]) == {}


def test_runs_admitted_by_a_concurrent_duplicate_are_recognised_and_not_discarded(
    platform: Platform,
) -> None:
    from shared.scheduling import runs

    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"])
    [admitted] = _start(platform, tenant["api_key"], {"config_id": config["config_id"]}).get_json()[
        "run_ids"
    ]
    wh, now = platform.deps.warehouse, current_deps().clock()
    pending = runs.NewRun(
        run_id=runs.manual_run_id(),
        tenant_id=tenant["tenant_id"],
        config_id=config["config_id"],
        pipeline="dryrun",
        trigger="MANUAL",
        run_date=now.date(),
    )
    runs.insert_pending(wh, [pending], now)

    assert runs.all_admitted(wh, tenant["tenant_id"], [admitted], now) is True
    assert runs.all_admitted(wh, tenant["tenant_id"], [admitted, pending.run_id], now) is False

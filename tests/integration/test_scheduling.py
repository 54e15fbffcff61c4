"""Scheduling against the emulator: configs, admission, the trigger tick, the runner, run API."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from jobs.pipeline_runner import execute_run
from shared.deps import deps as current_deps
from shared.pipelines.context import PipelineOutcome
from shared.scheduling import runs, trigger
from shared.scheduling.dispatch import LocalTaskQueue
from tests.integration.conftest import Platform

UTC = dt.UTC


def make_config(platform: Platform, key: str, **changes: Any) -> Any:
    body = {
        "name": "nightly check",
        "pipeline": "dryrun",
        "schedule_cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        **changes,
    }
    return platform.tenant_call("pipelines", "POST", "/configs", key, json=body)


def config_for(platform: Platform, key: str, **changes: Any) -> dict[str, Any]:
    response = make_config(platform, key, **changes)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def tick(platform: Platform) -> dict[str, int]:
    response = platform.client("trigger").post("/", headers={"X-Admin-Key": _admin()})
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def _admin() -> str:
    from tests.conftest import ADMIN_KEY

    return ADMIN_KEY


def queue(platform: Platform) -> LocalTaskQueue:
    return LocalTaskQueue(platform.deps.settings.local_data_dir / "tasks.sqlite")


def usage(platform: Platform, tenant_id: str) -> dict[str, Any]:
    wh = platform.deps.warehouse
    [row] = wh.query(
        f"SELECT * FROM {wh.central('tenant_usage_quotas')} WHERE tenant_id = @t", {"t": tenant_id}
    )
    return row


def run_states(platform: Platform, tenant_id: str) -> dict[str, int]:
    wh = platform.deps.warehouse
    rows = wh.query(
        f"SELECT state, COUNT(*) AS n FROM {wh.central('tenant_pipeline_runs')} "
        "WHERE tenant_id = @t GROUP BY state",
        {"t": tenant_id},
    )
    return {r["state"]: r["n"] for r in rows}


def set_limits(platform: Platform, tenant_id: str, **limits: int) -> None:
    wh = platform.deps.warehouse
    assignments = ", ".join(f"{name} = @{name}" for name in limits)
    wh.execute(
        f"UPDATE {wh.central('tenant_subscriptions')} SET {assignments} WHERE tenant_id = @t",
        {"t": tenant_id, **limits},
    )


# ------------------------------------------------------------------ configs


def test_a_config_is_created_with_its_next_run_in_utc_and_in_its_zone(platform: Platform) -> None:
    tenant = platform.onboarded()
    platform.travel_to(dt.datetime(2026, 7, 1, 12, tzinfo=UTC))

    config = config_for(platform, tenant["api_key"])

    assert config["config_id"].startswith("pcf_")
    assert config["next_run_time"] == {
        "utc": "2026-07-02T01:00:00+00:00",
        "local": "2026-07-02T03:00:00+02:00",
    }
    listed = platform.tenant_call("pipelines", "GET", "/configs", tenant["api_key"]).get_json()
    assert [c["config_id"] for c in listed["configs"]] == [config["config_id"]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schedule_cron": "not a cron"}, "schedule_cron"),
        ({"schedule_cron": "* * * * *"}, "schedule_cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"pipeline": "no_such_pipeline"}, "pipeline"),
        ({"provider_config_id": "pcfg_" + "0" * 32}, "provider_config_id"),
        ({"credential_id": "cred_" + "0" * 32}, "credential_id"),
    ],
)
def test_bad_configs_get_a_4xx_naming_the_field_and_nothing_is_written(
    platform: Platform, changes: dict[str, Any], field: str
) -> None:
    tenant = platform.onboarded()

    response = make_config(platform, tenant["api_key"], **changes)

    assert response.status_code == 422
    assert response.get_json()["field"] == field
    listed = platform.tenant_call("pipelines", "GET", "/configs", tenant["api_key"]).get_json()
    assert listed["configs"] == []


def test_another_tenants_credential_or_config_is_not_usable(platform: Platform) -> None:
    owner, stranger = platform.onboarded(), platform.onboarded()
    credential = platform.tenant_call(
        "credentials",
        "POST",
        "/",
        owner["api_key"],
        json={"provider": "GCP", "credential_type": "WORKLOAD_IDENTITY", "credential_name": "wi"},
    ).get_json()
    config = config_for(platform, owner["api_key"])

    response = make_config(platform, stranger["api_key"], credential_id=credential["credential_id"])
    foreign = platform.tenant_call(
        "pipelines", "GET", f"/configs/{config['config_id']}", stranger["api_key"]
    )

    assert response.status_code == 422
    assert response.get_json()["field"] == "credential_id"
    assert foreign.status_code == 404


def test_a_config_is_patched_and_deleted(platform: Platform) -> None:
    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"])
    path = f"/configs/{config['config_id']}"

    paused = platform.tenant_call(
        "pipelines", "PATCH", path, tenant["api_key"], json={"is_active": False}
    ).get_json()
    deleted = platform.tenant_call("pipelines", "DELETE", path, tenant["api_key"])
    again = platform.tenant_call("pipelines", "DELETE", path, tenant["api_key"])

    assert paused["is_active"] is False
    assert paused["next_run_time"]["utc"] is None
    assert deleted.status_code == 200 and again.status_code == 200
    assert platform.tenant_call("pipelines", "GET", path, tenant["api_key"]).status_code == 404


def test_a_retried_create_with_the_same_idempotency_key_makes_one_config(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    body = {"name": "n", "pipeline": "dryrun", "schedule_cron": "0 3 * * *"}
    headers = {"Idempotency-Key": "create-1"}

    first = platform.tenant_call(
        "pipelines", "POST", "/configs", tenant["api_key"], json=body, headers=headers
    )
    second = platform.tenant_call(
        "pipelines", "POST", "/configs", tenant["api_key"], json=body, headers=headers
    )
    other = platform.tenant_call(
        "pipelines",
        "POST",
        "/configs",
        tenant["api_key"],
        json={**body, "name": "x"},
        headers=headers,
    )

    assert (first.status_code, second.status_code, other.status_code) == (201, 200, 409)
    assert first.get_json()["config_id"] == second.get_json()["config_id"]


# ------------------------------------------------------------- the trigger


def test_a_tick_admits_enqueues_and_advances_due_configs_once(platform: Platform) -> None:
    tenant = platform.onboarded()
    platform.travel_to(dt.datetime(2026, 7, 1, 12, tzinfo=UTC))
    config = config_for(platform, tenant["api_key"])
    platform.travel_to(dt.datetime(2026, 7, 2, 1, 0, 30, tzinfo=UTC))

    first = tick(platform)
    second = tick(platform)

    assert first == {"due": 1, "admitted": 1, "skipped": 0, "enqueued": 1, "reaped": 0}
    assert second == {"due": 0, "admitted": 0, "skipped": 0, "enqueued": 0, "reaped": 0}
    [task] = queue(platform).all()
    assert task["run_id"] == runs.scheduled_run_id(
        config["config_id"], dt.datetime(2026, 7, 2, 1, tzinfo=UTC)
    )
    got = platform.tenant_call(
        "pipelines", "GET", f"/configs/{config['config_id']}", tenant["api_key"]
    ).get_json()
    assert got["next_run_time"]["utc"] == "2026-07-03T01:00:00+00:00"
    run = platform.tenant_call(
        "pipelines", "GET", f"/runs/{task['run_id']}", tenant["api_key"]
    ).get_json()
    assert (run["state"], run["trigger"], run["run_date"]) == ("QUEUED", "SCHEDULE", "2026-07-01")


def test_a_config_row_with_a_twin_is_ticked_as_one_config(platform: Platform) -> None:
    tenant = platform.onboarded()
    platform.travel_to(dt.datetime(2026, 7, 1, 12, tzinfo=UTC))
    config = config_for(platform, tenant["api_key"])
    wh = platform.deps.warehouse
    table = wh.central("tenant_pipeline_configs")
    wh.execute(
        f"INSERT INTO {table} SELECT * FROM {table} WHERE config_id = @c",
        {"c": config["config_id"]},
    )
    platform.travel_to(dt.datetime(2026, 7, 2, 1, 0, 30, tzinfo=UTC))

    first = tick(platform)

    assert first == {"due": 1, "admitted": 1, "skipped": 0, "enqueued": 1, "reaped": 0}
    assert len(queue(platform).all()) == 1
    advanced = wh.query(
        f"SELECT next_run_at FROM {table} WHERE config_id = @c", {"c": config["config_id"]}
    )
    assert [r["next_run_at"] for r in advanced] == [dt.datetime(2026, 7, 3, 1, tzinfo=UTC)] * 2


def test_a_config_down_for_a_day_gets_one_catch_up_run(platform: Platform) -> None:
    tenant = platform.onboarded()
    platform.travel_to(dt.datetime(2026, 7, 1, 0, 0, tzinfo=UTC))
    config_for(platform, tenant["api_key"], schedule_cron="*/15 * * * *", timezone="UTC")
    platform.travel_to(dt.datetime(2026, 7, 2, 0, 1, tzinfo=UTC))

    report = tick(platform)

    assert report["due"] == 1 and report["enqueued"] == 1
    assert run_states(platform, tenant["tenant_id"]) == {"QUEUED": 1}


def test_configs_over_the_daily_quota_are_skipped_with_the_reason_and_still_advanced(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    set_limits(platform, tenant["tenant_id"], daily_run_limit=2, concurrent_run_limit=10)
    platform.travel_to(dt.datetime(2026, 7, 1, 12, tzinfo=UTC))
    for _ in range(3):
        config_for(platform, tenant["api_key"], timezone="UTC")
    platform.travel_to(dt.datetime(2026, 7, 2, 3, 0, 5, tzinfo=UTC))

    report = tick(platform)

    assert report == {"due": 3, "admitted": 2, "skipped": 1, "enqueued": 2, "reaped": 0}
    listed = platform.tenant_call(
        "pipelines", "GET", "/runs?state=SKIPPED", tenant["api_key"]
    ).get_json()
    assert [r["skip_reason"] for r in listed["runs"]] == ["daily_quota_exceeded"]
    assert tick(platform)["due"] == 0


def test_one_tick_admits_many_tenants_with_a_constant_number_of_jobs(platform: Platform) -> None:
    tenants = [platform.onboarded() for _ in range(3)]
    platform.travel_to(dt.datetime(2026, 7, 1, 12, tzinfo=UTC))
    for tenant in tenants:
        for _ in range(2):
            config_for(platform, tenant["api_key"], timezone="UTC")
    platform.travel_to(dt.datetime(2026, 7, 2, 3, 1, tzinfo=UTC))
    wh = current_deps().warehouse
    calls = {"query": 0}
    # The warehouse runs statements through query_and_wait (jobs.query); count both paths.
    original_query, original_query_and_wait = wh.client.query, wh.client.query_and_wait

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls["query"] += 1
        return original_query(*args, **kwargs)

    def counting_and_wait(*args: Any, **kwargs: Any) -> Any:
        calls["query"] += 1
        return original_query_and_wait(*args, **kwargs)

    wh.client.query = counting  # type: ignore[method-assign]
    wh.client.query_and_wait = counting_and_wait  # type: ignore[method-assign]

    report = tick(platform)

    assert report["admitted"] == 6 and report["enqueued"] == 6
    assert 1 <= calls["query"] <= 6


def _scheduled_runs(platform: Platform) -> dict[str, int]:
    """Scheduled runs per tenant (any state)."""
    wh = platform.deps.warehouse
    rows = wh.query(
        f"SELECT tenant_id, COUNT(*) AS n FROM {wh.central('tenant_pipeline_runs')} "
        "WHERE `trigger` = 'SCHEDULE' GROUP BY tenant_id"
    )
    return {r["tenant_id"]: r["n"] for r in rows}


def test_a_tenant_with_many_due_configs_does_not_starve_the_others(platform: Platform) -> None:
    # The security review's reproduction: a per-tick cap of 3, a tenant whose id
    # sorts first with 3 configs every 5 minutes, and one other tenant.
    first = platform.onboarded("t" + "a" * 12, subscription_plan="STARTER")
    last = platform.onboarded("t" + "z" * 12)
    platform.travel_to(dt.datetime(2026, 7, 1, 12, 0, 30, tzinfo=UTC))
    for _ in range(3):
        config_for(platform, first["api_key"], schedule_cron="*/5 * * * *", timezone="UTC")
    config_for(platform, last["api_key"], schedule_cron="*/5 * * * *", timezone="UTC")

    reports = []
    for minute in (5, 10, 15):
        platform.travel_to(dt.datetime(2026, 7, 1, 12, minute, 30, tzinfo=UTC))
        reports.append(trigger.tick(current_deps(), max_due=3).as_dict())

    assert [r["due"] for r in reports] == [3, 3, 3]
    per_tenant = _scheduled_runs(platform)
    assert per_tenant.get(last["tenant_id"], 0) == 3  # one run per tick
    # The config left out of a tick stays due and goes first next tick: 6 fires
    # of the first tenant's 9 are served, none is dropped or run twice.
    assert per_tenant[first["tenant_id"]] == 6


def test_configs_beyond_a_tenants_remaining_quota_yield_their_slots(platform: Platform) -> None:
    greedy = platform.onboarded("t" + "a" * 12)
    other = platform.onboarded("t" + "z" * 12)
    set_limits(platform, greedy["tenant_id"], daily_run_limit=1)
    platform.travel_to(dt.datetime(2026, 7, 1, 12, 0, 30, tzinfo=UTC))
    for _ in range(3):
        config_for(platform, greedy["api_key"], schedule_cron="*/5 * * * *", timezone="UTC")
    for _ in range(2):
        config_for(platform, other["api_key"], schedule_cron="*/5 * * * *", timezone="UTC")
    platform.travel_to(dt.datetime(2026, 7, 1, 12, 5, 30, tzinfo=UTC))

    report = trigger.tick(current_deps(), max_due=3).as_dict()

    # The greedy tenant can be admitted one run today: its other two configs
    # would only be SKIPPED, so they wait while the other tenant's two run.
    assert report == {"due": 3, "admitted": 3, "skipped": 0, "enqueued": 3, "reaped": 0}
    assert run_states(platform, other["tenant_id"]) == {"QUEUED": 2}
    # Left-out configs stay due and are taken (and skipped for quota) next tick.
    again = trigger.tick(current_deps(), max_due=3).as_dict()
    assert (again["due"], again["skipped"]) == (2, 2)


# ---------------------------------------------------------------- the runner


def test_the_runner_completes_a_dryrun_with_its_step_log_and_frees_the_slot(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"])
    started = platform.tenant_call(
        "pipelines", "POST", "/runs", tenant["api_key"], json={"config_id": config["config_id"]}
    )
    [run_id] = started.get_json()["run_ids"]

    assert started.status_code == 202
    assert execute_run(current_deps(), run_id) == 0
    assert execute_run(current_deps(), run_id) == 0  # a duplicated delivery does nothing
    run = platform.tenant_call("pipelines", "GET", f"/runs/{run_id}", tenant["api_key"]).get_json()
    assert run["state"] == "SUCCEEDED"
    assert [s["step_name"] for s in run["steps"]] == ["check_dataset", "check_credential"]
    assert {s["status"] for s in run["steps"]} == {"SUCCEEDED"}
    quota = platform.tenant_call("quota", "GET", "/", tenant["api_key"]).get_json()
    assert quota["running"] == 0 and quota["daily"]["used"] == 1


def test_a_run_whose_runner_died_is_reaped_and_its_slot_freed(platform: Platform) -> None:
    tenant = platform.onboarded()
    set_limits(platform, tenant["tenant_id"], concurrent_run_limit=1)
    platform.travel_to(dt.datetime(2026, 7, 1, 12, tzinfo=UTC))
    config = config_for(platform, tenant["api_key"])
    body = {"config_id": config["config_id"]}
    [run_id] = platform.tenant_call(
        "pipelines", "POST", "/runs", tenant["api_key"], json=body
    ).get_json()["run_ids"]
    # What a SIGKILLed runner leaves: claimed (RUNNING), then no heartbeat ever again.
    assert runs.claim(current_deps().warehouse, run_id, current_deps().clock())
    blocked = platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)
    platform.travel_to(dt.datetime(2026, 7, 1, 12, 11, tzinfo=UTC))

    report = tick(platform)
    freed = platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)

    assert blocked.status_code == 429
    assert report["reaped"] == 1
    run = platform.tenant_call("pipelines", "GET", f"/runs/{run_id}", tenant["api_key"]).get_json()
    assert (run["state"], run["error_code"]) == ("FAILED", "lost_heartbeat")
    assert freed.status_code == 202


def _two_queued_runs_of_one_config(platform: Platform) -> tuple[dict[str, Any], list[str]]:
    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"])
    ids = []
    for day in ("2026-06-01", "2026-06-02"):
        body = {"config_id": config["config_id"], "run_date": day}
        started = platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)
        assert started.status_code == 202, started.get_json()
        ids += started.get_json()["run_ids"]
    return tenant, ids


def test_one_run_of_a_config_runs_at_a_time_and_the_next_waits_its_turn(
    platform: Platform,
) -> None:
    # Windows of nearby dates overlap, and each step replaces its window with a
    # DELETE then an INSERT: two interleaved runs of a config could insert the
    # overlap twice. So a run of a config whose other run is RUNNING waits.
    tenant, (first, second) = _two_queued_runs_of_one_config(platform)
    wh = current_deps().warehouse
    assert runs.claim(wh, first, current_deps().clock())

    gave_up = execute_run(current_deps(), second, poll_seconds=0.05, max_wait_seconds=0.2)
    assert gave_up == 0
    assert runs.waiting_for_its_turn(wh, second, current_deps().clock())
    result: list[int] = []
    waiter = threading.Thread(
        target=lambda: result.append(
            execute_run(current_deps(), second, poll_seconds=0.05, max_wait_seconds=60)
        )
    )
    waiter.start()
    waiter.join(timeout=0.5)
    still_waiting = waiter.is_alive()
    runs.finish(wh, first, PipelineOutcome("SUCCEEDED"), current_deps().clock())
    waiter.join(timeout=120)

    assert still_waiting
    assert result == [0]
    states = {
        run_id: platform.tenant_call(
            "pipelines", "GET", f"/runs/{run_id}", tenant["api_key"]
        ).get_json()["state"]
        for run_id in (first, second)
    }
    assert states == {first: "SUCCEEDED", second: "SUCCEEDED"}


def test_a_run_waiting_for_its_turn_is_not_reaped_as_never_started(platform: Platform) -> None:
    platform.travel_to(dt.datetime(2026, 7, 1, 12, tzinfo=UTC))
    tenant, (first, _) = _two_queued_runs_of_one_config(platform)
    wh = current_deps().warehouse
    assert runs.claim(wh, first, current_deps().clock())
    platform.travel_to(dt.datetime(2026, 7, 1, 14, tzinfo=UTC))
    runs.beat(wh, first, tenant["tenant_id"], current_deps().clock())  # the first is alive

    report = tick(platform)

    assert report["reaped"] == 0
    assert run_states(platform, tenant["tenant_id"]) == {"RUNNING": 1, "QUEUED": 1}


def test_a_queued_run_is_cancelled_and_never_executes(platform: Platform) -> None:
    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"])
    [run_id] = platform.tenant_call(
        "pipelines", "POST", "/runs", tenant["api_key"], json={"config_id": config["config_id"]}
    ).get_json()["run_ids"]

    cancelled = platform.tenant_call(
        "pipelines", "POST", f"/runs/{run_id}/cancel", tenant["api_key"]
    )
    again = platform.tenant_call("pipelines", "POST", f"/runs/{run_id}/cancel", tenant["api_key"])

    assert cancelled.status_code == 202 and cancelled.get_json()["state"] == "CANCELLED"
    # A client's retried cancel answers like the first one.
    assert again.status_code == 202 and again.get_json()["state"] == "CANCELLED"
    assert execute_run(current_deps(), run_id) == 0
    assert run_states(platform, tenant["tenant_id"]) == {"CANCELLED": 1}


def test_a_running_run_stops_when_cancelled(platform: Platform) -> None:
    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"])
    [run_id] = platform.tenant_call(
        "pipelines", "POST", "/runs", tenant["api_key"], json={"config_id": config["config_id"]}
    ).get_json()["run_ids"]
    wh = current_deps().warehouse
    assert runs.claim(wh, run_id, current_deps().clock())

    platform.tenant_call("pipelines", "POST", f"/runs/{run_id}/cancel", tenant["api_key"])

    assert runs.still_wanted(wh, run_id, current_deps().clock()) is False


def test_another_tenants_run_is_404(platform: Platform) -> None:
    owner, stranger = platform.onboarded(), platform.onboarded()
    config = config_for(platform, owner["api_key"])
    [run_id] = platform.tenant_call(
        "pipelines", "POST", "/runs", owner["api_key"], json={"config_id": config["config_id"]}
    ).get_json()["run_ids"]

    for method, path in (
        ("GET", f"/runs/{run_id}"),
        ("POST", f"/runs/{run_id}/cancel"),
        ("POST", f"/runs/{run_id}/retry"),
    ):
        assert (
            platform.tenant_call("pipelines", method, path, stranger["api_key"]).status_code == 404
        )


# ---------------------------------------------------------------- admission


def test_fifty_concurrent_manual_runs_with_25_left_admit_exactly_25(platform: Platform) -> None:
    tenant = platform.onboarded()  # PROFESSIONAL: 25 a day
    set_limits(platform, tenant["tenant_id"], concurrent_run_limit=100)
    config = config_for(platform, tenant["api_key"])
    body = {"config_id": config["config_id"]}
    statuses: list[int] = []
    lock = threading.Lock()

    def start() -> None:
        response = platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=start) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [202] * 25 + [429] * 25
    counters = usage(platform, tenant["tenant_id"])
    assert counters["daily_runs"] == 25 == run_states(platform, tenant["tenant_id"])["QUEUED"]
    assert len(counters["active_run_ids"]) == 25


def test_twin_usage_and_subscription_rows_admit_a_run_once(platform: Platform) -> None:
    # Two concurrent INSERT-only MERGEs may both insert on BigQuery. Admission's
    # UPDATE ... FROM must still match one source row per usage row (BigQuery
    # refuses more), and count nothing twice.
    tenant = platform.onboarded()
    tenant_id = tenant["tenant_id"]
    wh = platform.deps.warehouse
    for table in ("tenant_usage_quotas", "tenant_subscriptions"):
        wh.execute(
            f"INSERT INTO {wh.central(table)} SELECT * FROM {wh.central(table)} "
            "WHERE tenant_id = @t",
            {"t": tenant_id},
        )
    config = config_for(platform, tenant["api_key"])

    started = platform.tenant_call(
        "pipelines", "POST", "/runs", tenant["api_key"], json={"config_id": config["config_id"]}
    )

    assert started.status_code == 202, started.get_json()
    twins = wh.query(
        f"SELECT daily_runs, active_run_ids FROM {wh.central('tenant_usage_quotas')} "
        "WHERE tenant_id = @t",
        {"t": tenant_id},
    )
    [run_id] = started.get_json()["run_ids"]
    assert [(r["daily_runs"], list(r["active_run_ids"])) for r in twins] == [(1, [run_id])] * 2


def test_over_the_daily_limit_is_429_with_retry_after_and_the_reset_time(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    set_limits(platform, tenant["tenant_id"], daily_run_limit=1)
    platform.travel_to(dt.datetime(2026, 7, 1, 22, tzinfo=UTC))
    config = config_for(platform, tenant["api_key"])
    body = {"config_id": config["config_id"]}
    platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)

    refused = platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(2 * 3600)
    assert (
        refused.get_json()["detail"] == "Daily pipeline quota exceeded. Used 1/1 pipelines today."
    )
    assert refused.get_json()["quota_reset_time"] == "2026-07-02T00:00:00Z"
    assert run_states(platform, tenant["tenant_id"]) == {"QUEUED": 1}


def test_counters_roll_over_at_utc_midnight_and_month_end_without_a_reset_job(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    set_limits(platform, tenant["tenant_id"], daily_run_limit=1, monthly_run_limit=2)
    config = config_for(platform, tenant["api_key"])
    body = {"config_id": config["config_id"]}

    def start_at(when: dt.datetime) -> int:
        platform.travel_to(when)
        response = platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)
        for run_id in response.get_json().get("run_ids", []):
            execute_run(current_deps(), run_id)
        return int(response.status_code)

    assert start_at(dt.datetime(2026, 7, 30, 23, 59, 50, tzinfo=UTC)) == 202
    assert start_at(dt.datetime(2026, 7, 30, 23, 59, 59, tzinfo=UTC)) == 429  # daily
    assert start_at(dt.datetime(2026, 7, 31, 0, 0, 1, tzinfo=UTC)) == 202  # fresh day
    refused = platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)
    platform.travel_to(dt.datetime(2026, 7, 31, 12, tzinfo=UTC))
    quota = platform.tenant_call("quota", "GET", "/", tenant["api_key"]).get_json()
    assert start_at(dt.datetime(2026, 8, 1, 0, 0, 1, tzinfo=UTC)) == 202  # fresh month

    assert refused.status_code == 429
    assert quota["monthly"]["used"] == 2 and quota["monthly"]["exceeded"] is True
    assert quota["monthly"]["resets_on"] == "2026-08-01"


def test_a_month_of_backfill_on_starter_is_one_request_one_run_one_quota_unit(
    platform: Platform,
) -> None:
    tenant = platform.onboarded(subscription_plan="STARTER")  # 6 a day, 3 concurrent
    config = config_for(platform, tenant["api_key"])
    before = usage(platform, tenant["tenant_id"])

    started = platform.tenant_call(
        "pipelines",
        "POST",
        "/runs",
        tenant["api_key"],
        json={"config_id": config["config_id"], "date_from": "2026-05-01", "date_to": "2026-05-31"},
    )

    assert started.status_code == 202, started.get_json()
    body = started.get_json()
    assert len(body["run_ids"]) == 1
    assert (body["date_from"], body["date_to"]) == ("2026-05-01", "2026-05-31")
    after = usage(platform, tenant["tenant_id"])
    assert after["daily_runs"] - before["daily_runs"] == 1
    assert after["monthly_runs"] - before["monthly_runs"] == 1
    assert len(after["active_run_ids"]) == 1
    assert run_states(platform, tenant["tenant_id"]) == {"QUEUED": 1}
    assert len(queue(platform).all()) == 1
    [run_id] = body["run_ids"]
    run = platform.tenant_call("pipelines", "GET", f"/runs/{run_id}", tenant["api_key"]).get_json()
    assert (run["date_from"], run["date_to"], run["run_date"]) == (
        "2026-05-01",
        "2026-05-31",
        "2026-05-31",
    )


def test_the_run_history_filter_finds_a_ranged_run_by_any_date_it_covers(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"])
    body = {"config_id": config["config_id"], "date_from": "2026-05-01", "date_to": "2026-05-31"}
    platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)

    def listed(query: str) -> int:
        path = f"/runs?{query}"
        return len(
            platform.tenant_call("pipelines", "GET", path, tenant["api_key"]).get_json()["runs"]
        )

    assert listed("date_from=2026-05-10&date_to=2026-05-10") == 1
    assert listed("date_from=2026-05-31") == 1
    assert listed("date_to=2026-05-01") == 1
    assert listed("date_from=2026-06-01") == 0
    assert listed("date_to=2026-04-30") == 0


@pytest.mark.parametrize(
    ("dates", "field"),
    [
        (("2025-01-01", "2026-02-05"), "date_to"),  # 401 days, beyond the cap
        (("2026-06-02", "2026-06-01"), "date_to"),  # backwards
        (("2026-06-01", None), "body"),  # half a range
    ],
)
def test_a_range_beyond_the_cap_or_backwards_is_a_422_naming_the_field_and_starts_nothing(
    platform: Platform, dates: tuple[str, str | None], field: str
) -> None:
    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"])
    body = {"config_id": config["config_id"], "date_from": dates[0]}
    if dates[1] is not None:
        body["date_to"] = dates[1]

    refused = platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)

    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["field"] == field
    assert run_states(platform, tenant["tenant_id"]) == {}
    assert usage(platform, tenant["tenant_id"])["daily_runs"] == 0


def test_a_range_of_exactly_the_cap_is_one_run(platform: Platform) -> None:
    tenant = platform.onboarded()
    config = config_for(platform, tenant["api_key"])
    body = {"config_id": config["config_id"], "date_from": "2025-01-01", "date_to": "2026-02-04"}

    started = platform.tenant_call("pipelines", "POST", "/runs", tenant["api_key"], json=body)

    assert started.status_code == 202, started.get_json()
    assert len(started.get_json()["run_ids"]) == 1


def test_run_history_pages_without_gaps_or_repeats(platform: Platform) -> None:
    tenant = platform.onboarded()
    set_limits(platform, tenant["tenant_id"], concurrent_run_limit=100)
    config = config_for(platform, tenant["api_key"])
    started = set()
    for day in range(1, 8):
        platform.travel_to(dt.datetime(2026, 6, day, 12, tzinfo=UTC))
        response = platform.tenant_call(
            "pipelines", "POST", "/runs", tenant["api_key"], json={"config_id": config["config_id"]}
        )
        started.update(response.get_json()["run_ids"])

    seen: list[str] = []
    cursor = ""
    while True:
        page = platform.tenant_call(
            "pipelines", "GET", f"/runs?limit=3{cursor}", tenant["api_key"]
        ).get_json()
        seen += [r["run_id"] for r in page["runs"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"

    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == started
    bad = platform.tenant_call("pipelines", "GET", "/runs?cursor=bogus", tenant["api_key"])
    assert bad.status_code == 400 and bad.get_json()["field"] == "cursor"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Admin-Key": "not-the-admin-key"},
        {"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"},  # OIDC not configured here
    ],
)
def test_the_trigger_refuses_callers_without_the_admin_key_or_a_scheduler_token(
    platform: Platform, headers: dict[str, str]
) -> None:
    response = platform.client("trigger").post("/", headers=headers)

    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM other_tenant.focus_cost",
        "DELETE FROM focus_cost WHERE TRUE",
        "CREATE TABLE x AS SELECT 1 AS a",
        "SELECT 1 AS a; DROP TABLE focus_cost",
        "SELECT * FROM `convergence-test.tenants.tenant_api_keys`",
    ],
)
def test_tenant_sql_that_leaves_its_dataset_or_writes_is_refused_at_upload(
    platform: Platform, sql: str
) -> None:
    tenant = platform.onboarded()

    response = make_config(
        platform,
        tenant["api_key"],
        pipeline="bq_etl",
        parameters={"sql": sql, "target_table": "daily_summary"},
    )

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == "parameters.sql"
    listed = platform.tenant_call("pipelines", "GET", "/configs", tenant["api_key"]).get_json()
    assert listed["configs"] == []


def test_tenant_sql_over_its_own_dataset_is_accepted_at_upload(platform: Platform) -> None:
    tenant = platform.onboarded()

    response = make_config(
        platform,
        tenant["api_key"],
        pipeline="bq_etl",
        parameters={
            "sql": "SELECT ServiceName, SUM(BilledCost) AS cost FROM focus_cost "
            "WHERE DATE(ChargePeriodStart) = ${run_date} GROUP BY ServiceName",
            "target_table": "daily_summary",
        },
    )

    assert response.status_code == 201, response.get_json()


def test_a_cancelled_run_is_retried_as_a_new_attempt_and_a_succeeded_one_is_not(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    config = config_for(platform, key)
    body = {"config_id": config["config_id"], "run_date": "2026-06-01"}
    [cancelled] = platform.tenant_call("pipelines", "POST", "/runs", key, json=body).get_json()[
        "run_ids"
    ]
    platform.tenant_call("pipelines", "POST", f"/runs/{cancelled}/cancel", key)

    retried = platform.tenant_call("pipelines", "POST", f"/runs/{cancelled}/retry", key)
    [new_id] = retried.get_json()["run_ids"]
    assert execute_run(current_deps(), new_id) == 0
    refused = platform.tenant_call("pipelines", "POST", f"/runs/{new_id}/retry", key)

    assert retried.status_code == 202
    run = platform.tenant_call("pipelines", "GET", f"/runs/{new_id}", key).get_json()
    assert (run["trigger"], run["attempt"], run["retry_of"], run["run_date"]) == (
        "RETRY",
        2,
        cancelled,
        "2026-06-01",
    )
    assert run["state"] == "SUCCEEDED"
    assert refused.status_code == 409

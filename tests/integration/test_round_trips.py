"""BigQuery round trips per request, counted exactly against the emulator (issue 13's goals).

Counts, not times: every REST call of the real client is counted
(tests/counting.py), so these hold on any machine. `make bench` prints the
same figures with timings beside the landed code's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.deps import Deps, use_deps
from shared.platform.bootstrap import bootstrap_central
from shared.platform.secrets import StaticSecrets
from shared.platform.settings import Settings
from tests.conftest import TEST_SECRETS
from tests.counting import CallCounter
from tests.credential_samples import create_body
from tests.integration.conftest import Platform, new_tenant_id, onboarding_payload


@pytest.fixture
def counter() -> CallCounter:
    return CallCounter()


@pytest.fixture
def counted(settings: Settings, counter: CallCounter) -> Iterator[Platform]:
    """The platform with every BigQuery client counted, on a bootstrapped central dataset."""
    wired = Deps(
        settings=settings,
        secrets=StaticSecrets(TEST_SECRETS),
        client_factory=counter.client_factory(),
    )
    use_deps(wired)
    bootstrap_central(wired.warehouse, wired.catalog)
    yield Platform(wired)
    use_deps(None)


def fresh_instance(platform: Platform, counter: CallCounter) -> None:
    """What a new function instance has: an empty auth cache and a new client."""
    use_deps(
        Deps(
            settings=platform.deps.settings,
            secrets=platform.deps.secrets,
            client_factory=counter.client_factory(),
            _crypto=platform.deps.crypto,
        )
    )


def test_quota_with_a_warm_key_is_one_statement_and_one_epoch_read(
    counted: Platform, counter: CallCounter
) -> None:
    key = counted.onboarded()["api_key"]
    assert counted.tenant_call("quota", "GET", "/", key).status_code == 200
    counter.reset()

    response = counted.tenant_call("quota", "GET", "/", key)

    assert response.status_code == 200
    assert response.get_json()["daily"]["limit"] == 25
    # Plus the tenant's access epoch (issue 21): a tabledata.list, no job.
    assert counter.snapshot() == {"jobs.query": 1, "tabledata.list": 1}


def test_quota_with_a_cold_key_adds_only_the_key_lookup(
    counted: Platform, counter: CallCounter
) -> None:
    key = counted.onboarded()["api_key"]
    fresh_instance(counted, counter)
    counter.reset()

    assert counted.tenant_call("quota", "GET", "/", key).status_code == 200
    assert counter.snapshot() == {"jobs.query": 2, "tabledata.list": 1}


def test_tenant_status_is_two_statements(counted: Platform, counter: CallCounter) -> None:
    tenant = counted.onboarded()
    counter.reset()

    response = counted.admin("GET", f"/tenants/{tenant['tenant_id']}")

    assert response.status_code == 200
    assert response.get_json()["subscription"]["plan"] == "PROFESSIONAL"
    assert counter.snapshot() == {"jobs.query": 2}


def test_an_unknown_tenant_status_is_404_after_one_statement(
    counted: Platform, counter: CallCounter
) -> None:
    counter.reset()

    assert counted.admin("GET", f"/tenants/{new_tenant_id()}").status_code == 404
    assert counter.snapshot() == {"jobs.query": 1}


def test_a_credential_create_is_two_statements_and_one_streamed_audit_row(
    counted: Platform, counter: CallCounter
) -> None:
    key = counted.onboarded()["api_key"]
    counted.tenant_call("quota", "GET", "/", key)  # the key is warm
    counter.reset()

    response = counted.tenant_call("credentials", "POST", "/", key, json=create_body("OPENAI"))

    assert response.status_code == 201
    # The credential's own audit row and the request's (issue 21): two streamed rows.
    # The access epoch: one tabledata.list.
    assert counter.snapshot() == {"jobs.query": 2, "tabledata.insertAll": 2, "tabledata.list": 1}


def test_a_provider_config_create_is_two_statements(
    counted: Platform, counter: CallCounter
) -> None:
    key = counted.onboarded()["api_key"]
    counted.tenant_call("quota", "GET", "/", key)  # the key is warm
    body = {"provider": "OPENAI", "currency": "USD"}
    counter.reset()

    response = counted.tenant_call("credentials", "POST", "/provider-configs", key, json=body)

    assert response.status_code == 201, response.get_json()
    # Plus the request's streamed audit row (issue 21).
    assert counter.snapshot() == {"jobs.query": 2, "tabledata.insertAll": 1, "tabledata.list": 1}


def test_onboarding_a_new_tenant_is_seven_jobs(counted: Platform, counter: CallCounter) -> None:
    counter.reset()

    response = counted.onboard(onboarding_payload(new_tenant_id()))

    assert response.status_code == 201
    # Six to onboard, plus the welcome message's outbox MERGE (issue 20). A source's
    # raw tables are not created here but by its first run, so this stays flat.
    assert counter.jobs == 7
    assert counter.rest_calls <= 19


def test_an_onboarding_replay_is_three_jobs(counted: Platform, counter: CallCounter) -> None:
    payload = onboarding_payload(new_tenant_id())
    assert counted.onboard(payload).status_code == 201
    counter.reset()

    replay = counted.onboard(payload)

    assert replay.status_code == 200 and replay.get_json()["replayed"] is True
    # MERGE (finds the profile), read the profile, read the plan; no provisioning.
    assert counter.jobs == 3
    assert "tables.insert" not in counter.snapshot()


def test_a_bootstrap_with_nothing_to_do_reads_the_dataset_once(
    counted: Platform, counter: CallCounter
) -> None:
    counter.reset()

    response = counted.admin("POST", "/bootstrap")

    assert response.status_code == 200
    assert response.get_json()["created"] == [] and response.get_json()["drift"] == {}
    assert counter.snapshot() == {"datasets.insert": 1, "jobs.query": 1}


def test_multi_page_results_come_back_complete(counted: Platform, counter: CallCounter) -> None:
    counter.reset()

    rows = counted.deps.warehouse.query(
        "SELECT x, REPEAT('y', 200) AS pad FROM UNNEST(GENERATE_ARRAY(1, 30000)) AS x ORDER BY x"
    )

    # More than one page: query_and_wait fetched the rest with getQueryResults.
    assert counter.snapshot().get("jobs.getQueryResults", 0) >= 1, counter.snapshot()
    assert [row["x"] for row in rows] == list(range(1, 30001))


def test_a_run_with_its_steps_and_dq_results_is_one_statement(
    counted: Platform, counter: CallCounter
) -> None:
    from jobs.pipeline_runner import execute_run
    from shared.deps import deps

    key = counted.onboarded()["api_key"]
    config = counted.tenant_call(
        "pipelines",
        "POST",
        "/configs",
        key,
        json={"name": "n", "pipeline": "dryrun", "schedule_cron": "0 3 * * *"},
    ).get_json()
    started = counted.tenant_call(
        "pipelines", "POST", "/runs", key, json={"config_id": config["config_id"]}
    ).get_json()
    [run_id] = started["run_ids"]
    execute_run(deps(), run_id)
    assert counted.tenant_call("pipelines", "GET", f"/runs/{run_id}", key).status_code == 200
    counter.reset()

    response = counted.tenant_call("pipelines", "GET", f"/runs/{run_id}", key)

    assert response.status_code == 200
    assert [s["step_name"] for s in response.get_json()["steps"]] == [
        "check_dataset",
        "check_credential",
    ]
    assert counter.snapshot() == {"jobs.query": 1, "tabledata.list": 1}


def test_a_manual_run_is_four_statements_with_or_without_an_idempotency_key(
    counted: Platform, counter: CallCounter
) -> None:
    key = counted.onboarded()["api_key"]
    config = counted.tenant_call(
        "pipelines",
        "POST",
        "/configs",
        key,
        json={"name": "n", "pipeline": "dryrun", "schedule_cron": "0 3 * * *"},
    ).get_json()
    body = {"config_id": config["config_id"]}
    counter.reset()

    plain = counted.tenant_call("pipelines", "POST", "/runs", key, json=body)
    plain_count = counter.snapshot()
    counter.reset()
    keyed = counted.tenant_call(
        "pipelines", "POST", "/runs", key, json=body, headers={"Idempotency-Key": "k"}
    )

    # Read the config, insert PENDING, admit, mark QUEUED: the key costs no statement.
    # The request's streamed audit row is one insertAll (issue 21).
    assert (plain.status_code, keyed.status_code) == (202, 202)
    # The access epoch is one tabledata.list (issue 21).
    assert (
        plain_count
        == counter.snapshot()
        == {
            "jobs.query": 4,
            "tabledata.insertAll": 1,
            "tabledata.list": 1,
        }
    )

"""Onboarding against the emulator: everything created once, retries safe, bad input refused."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.deps import Deps, use_deps
from shared.tenancy import tenant_dataset
from shared.tenancy.api_keys import KEY_RE
from shared.tenancy.onboarding import ONBOARDING_LEASE
from tests.integration.conftest import (
    Platform,
    emulator_deps,
    new_tenant_id,
    onboarding_payload,
)


def central_rows(deps: Deps, table: str, tenant_id: str) -> list[dict[str, Any]]:
    wh = deps.warehouse
    return wh.query(f"SELECT * FROM {wh.central(table)} WHERE tenant_id = @t", {"t": tenant_id})


def test_onboarding_creates_profile_plan_usage_dataset_and_a_key(platform: Platform) -> None:
    tenant_id = new_tenant_id()

    response = platform.onboard(onboarding_payload(tenant_id))

    assert response.status_code == 201
    body = response.get_json()
    assert body["tenant_id"] == tenant_id
    assert body["subscription_plan"] == "PROFESSIONAL"
    assert body["dataset_id"] == tenant_id
    assert body["dryrun_status"] == "SUCCESS"
    assert set(body["tables_created"]) == {"focus_cost", "gcp_billing_raw"}
    assert set(body["views_created"]) == {"pipeline_runs", "step_logs", "dq_results"}
    match = KEY_RE.match(body["api_key"])
    assert match and match.group(1) == tenant_id
    deps = platform.deps
    [profile] = central_rows(deps, "tenant_profiles", tenant_id)
    assert (profile["status"], profile["onboarding_state"]) == ("TRIALING", "COMPLETE")
    [subscription] = central_rows(deps, "tenant_subscriptions", tenant_id)
    assert (subscription["plan"], subscription["daily_run_limit"]) == ("PROFESSIONAL", 25)
    assert subscription["concurrent_run_limit"] == 5
    assert subscription["trial_ends_at"] is not None
    [usage] = central_rows(deps, "tenant_usage_quotas", tenant_id)
    assert usage["daily_runs"] == 0
    [key_row] = central_rows(deps, "tenant_api_keys", tenant_id)
    assert key_row["key_hash"] != body["api_key"]
    assert body["api_key"] not in str(key_row)
    tables = {
        t.table_id
        for t in deps.warehouse.client.list_tables(f"{deps.settings.gcp_project}.{tenant_id}")
    }
    assert {"focus_cost", "gcp_billing_raw", "pipeline_runs", "step_logs", "dq_results"} <= tables
    assert not any(t.startswith("_dryrun") for t in tables)


def test_the_tenant_views_show_only_the_tenants_own_log_rows(platform: Platform) -> None:
    a = platform.onboarded()
    b = platform.onboarded()
    wh = platform.deps.warehouse
    for tenant in (a, b):
        wh.execute(
            f"INSERT INTO {wh.central('tenant_pipeline_runs')} "
            "(run_id, tenant_id, config_id, pipeline, state, trigger, run_date, attempt, "
            "created_at) VALUES (@r, @t, 'p1', 'dryrun', 'QUEUED', 'MANUAL', CURRENT_DATE(), 1, "
            "CURRENT_TIMESTAMP())",
            {"r": "run_" + tenant["tenant_id"], "t": tenant["tenant_id"]},
        )

    rows = wh.query(f"SELECT run_id, tenant_id FROM {wh.table(a['dataset_id'], 'pipeline_runs')}")

    assert rows == [{"run_id": "run_" + a["tenant_id"], "tenant_id": a["tenant_id"]}]
    central = wh.client.get_dataset(f"{wh.project}.{wh.settings.central_dataset}")
    authorized = {
        dict(e.entity_id)["datasetId"] for e in central.access_entries if e.entity_type == "view"
    }
    assert {a["dataset_id"], b["dataset_id"]} <= authorized
    tenant_dataset.authorize_views(wh, a["dataset_id"], list(tenant_dataset.LOG_VIEWS))
    again = wh.client.get_dataset(f"{wh.project}.{wh.settings.central_dataset}")
    assert len(again.access_entries) == len(central.access_entries)


def test_resending_the_same_request_replays_without_a_second_key(platform: Platform) -> None:
    payload = onboarding_payload(new_tenant_id())
    first = platform.onboard(payload, **{"Idempotency-Key": "req-1"})

    again = platform.onboard(payload, **{"Idempotency-Key": "req-1"})
    same_payload_no_header = platform.onboard(payload)

    assert first.status_code == 201
    for response in (again, same_payload_no_header):
        assert response.status_code == 200
        body = response.get_json()
        assert body["replayed"] is True
        assert body["api_key"] is None
        assert body["dataset_id"] == first.get_json()["dataset_id"]
        assert body["subscription_plan"] == "PROFESSIONAL"
    keys = central_rows(platform.deps, "tenant_api_keys", payload["tenant_id"])
    assert len(keys) == 1


def test_a_different_payload_for_an_existing_tenant_is_409(platform: Platform) -> None:
    tenant = platform.onboarded()

    response = platform.onboard(
        onboarding_payload(tenant["tenant_id"], company_name="Someone Else")
    )

    assert response.status_code == 409
    assert response.get_json()["error"] == "conflict"
    [profile] = central_rows(platform.deps, "tenant_profiles", tenant["tenant_id"])
    assert profile["company_name"] == "Acme Corp"


def test_an_idempotency_key_reused_with_another_payload_is_409(platform: Platform) -> None:
    payload = onboarding_payload(new_tenant_id())
    platform.onboard(payload, **{"Idempotency-Key": "req-2"})

    response = platform.onboard(
        {**payload, "subscription_plan": "SCALE"}, **{"Idempotency-Key": "req-2"}
    )

    assert response.status_code == 409
    assert "Idempotency-Key" in response.get_json()["detail"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tenant_id": "AB"}, "tenant_id"),
        ({"tenant_id": "acme-corp"}, "tenant_id"),
        ({"tenant_id": "x" * 51}, "tenant_id"),
        ({"tenant_id": "_hidden"}, "tenant_id"),
        ({"tenant_id": "admin"}, "tenant_id"),
        ({"admin_email": "not-an-email"}, "admin_email"),
        ({"admin_email": "a@b"}, "admin_email"),
        ({"subscription_plan": "ENTERPRISE"}, "subscription_plan"),
        ({"company_name": "Acme'); DROP TABLE tenant_profiles; --"}, "company_name"),
        ({"company_name": "<script>alert(1)</script>"}, "company_name"),
        ({"company_name": "Acme /* x */"}, "company_name"),
        ({"company_name": ""}, "company_name"),
        ({"company_name": "A" * 201}, "company_name"),
        ({"unexpected": "field"}, "unexpected"),
        ({"tenant_id": 12345}, "tenant_id"),
    ],
)
def test_invalid_input_is_a_4xx_naming_the_field_and_writes_nothing(
    platform: Platform, changes: dict[str, Any], field: str
) -> None:
    payload = {**onboarding_payload(new_tenant_id()), **changes}

    response = platform.onboard(payload)

    assert 400 <= response.status_code < 500
    body = response.get_json()
    assert body["field"] == field, body
    tenant_id = payload["tenant_id"]
    if isinstance(tenant_id, str):
        assert central_rows(platform.deps, "tenant_profiles", tenant_id) == []
        if tenant_id.replace("_", "").isalnum() and tenant_id.islower():
            assert not platform.dataset_exists(tenant_id)


def test_the_central_dataset_name_is_reserved(platform: Platform) -> None:
    central = platform.deps.settings.central_dataset

    response = platform.onboard(onboarding_payload(central))

    assert response.status_code == 422
    assert response.get_json()["field"] == "tenant_id"


def test_a_company_name_with_an_apostrophe_or_accents_is_accepted(platform: Platform) -> None:
    body = platform.onboarded(company_name="L'Oréal & Fils (Zürich) GmbH")

    [profile] = central_rows(platform.deps, "tenant_profiles", body["tenant_id"])
    assert profile["company_name"] == "L'Oréal & Fils (Zürich) GmbH"


def test_onboarding_without_the_admin_key_is_401_and_writes_nothing(platform: Platform) -> None:
    payload = onboarding_payload(new_tenant_id())

    response = platform.client("onboard").post("/", json=payload, headers={"X-Admin-Key": "no"})

    assert response.status_code == 401
    assert central_rows(platform.deps, "tenant_profiles", payload["tenant_id"]) == []


def _onboard_concurrently(platform: Platform, payloads: list[dict[str, Any]]) -> list[Any]:
    results: list[Any] = [None] * len(payloads)
    barrier = threading.Barrier(len(payloads))

    def run(index: int) -> None:
        use_deps(platform.deps)
        barrier.wait()
        results[index] = platform.onboard(payloads[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_two_concurrent_identical_onboardings_issue_exactly_one_key(platform: Platform) -> None:
    payload = onboarding_payload(new_tenant_id())

    responses = _onboard_concurrently(platform, [payload, payload])

    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1, [r.get_json() for r in responses]
    assert codes[0] in (200, 409) or codes[1] in (200, 409)
    active = [
        k
        for k in central_rows(platform.deps, "tenant_api_keys", payload["tenant_id"])
        if k["status"] == "ACTIVE"
    ]
    winner = next(r.get_json() for r in responses if r.status_code == 201)
    assert [k["key_id"] for k in active] == [winner["api_key_id"]]


def test_two_concurrent_different_onboardings_of_one_id_have_one_winner(
    platform: Platform,
) -> None:
    tenant_id = new_tenant_id()
    payloads = [
        onboarding_payload(tenant_id, company_name="First Co"),
        onboarding_payload(tenant_id, company_name="Second Co"),
    ]

    responses = _onboard_concurrently(platform, payloads)

    assert sorted(r.status_code for r in responses) == [201, 409]
    winner = next(i for i, r in enumerate(responses) if r.status_code == 201)
    [profile] = central_rows(platform.deps, "tenant_profiles", tenant_id)
    assert profile["company_name"] == payloads[winner]["company_name"]


class FailingOnce(bigquery.Client):
    """The real client, except that creating one named table fails once (a crash half-way)."""

    fail_table = "focus_cost"
    failed = False

    def create_table(self, table: Any, *args: Any, **kwargs: Any) -> bigquery.Table:
        table_id = table.table_id if hasattr(table, "table_id") else str(table)
        if table_id.endswith(self.fail_table) and not FailingOnce.failed:
            FailingOnce.failed = True
            raise gexc.ServiceUnavailable("injected failure")
        return super().create_table(table, *args, **kwargs)


def test_a_failure_half_way_leaves_nothing_that_blocks_the_retry(platform: Platform) -> None:
    use_deps(emulator_deps(platform, FailingOnce))
    FailingOnce.failed = False
    payload = onboarding_payload(new_tenant_id())

    first = platform.onboard(payload)
    retry = platform.onboard(payload)

    assert first.status_code == 503
    assert "Traceback" not in first.get_data(as_text=True)
    assert retry.status_code == 201, retry.get_json()
    assert KEY_RE.match(retry.get_json()["api_key"])
    keys = central_rows(platform.deps, "tenant_api_keys", payload["tenant_id"])
    assert len(keys) == 1


def test_an_offboarded_id_is_refused_and_leaves_no_new_dataset(platform: Platform) -> None:
    payload = onboarding_payload(new_tenant_id())
    tenant = platform.onboard(payload).get_json()
    tenant_id = tenant["tenant_id"]
    offboarded = platform.admin(
        "POST", f"/tenants/{tenant_id}/offboard", json={"retain_days": 0, "confirm": tenant_id}
    )
    assert offboarded.status_code == 200
    assert not platform.dataset_exists(tenant["dataset_id"])

    again = platform.onboard(payload)

    assert again.status_code == 409
    assert "offboarded" in again.get_json()["detail"]
    # The dataset claim came first; the refusal undid it.
    assert not platform.dataset_exists(tenant["dataset_id"])
    keys = central_rows(platform.deps, "tenant_api_keys", tenant_id)
    assert [k["status"] for k in keys] == ["REVOKED"]


def test_twenty_concurrent_identical_onboardings_never_answer_5xx(platform: Platform) -> None:
    payload = onboarding_payload(new_tenant_id())

    responses = _onboard_concurrently(platform, [payload] * 20)

    codes = [r.status_code for r in responses]
    assert codes.count(201) == 1, codes
    assert set(codes) <= {200, 201, 409}, [r.get_json() for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.get_json()["error"] == "onboarding_in_progress"
            assert int(response.headers["Retry-After"]) >= 1
    keys = central_rows(platform.deps, "tenant_api_keys", payload["tenant_id"])
    assert len(keys) == 1


class Stalling(bigquery.Client):
    """The real client, except that the first attempt to create one table waits for a signal
    (an onboarding still in flight), or dies without cleaning up (a crashed instance)."""

    table = "focus_cost"
    entered = threading.Event()
    release = threading.Event()
    crash = False
    used = False

    def create_table(self, table: Any, *args: Any, **kwargs: Any) -> bigquery.Table:
        table_id = table.table_id if hasattr(table, "table_id") else str(table)
        if table_id.endswith(self.table) and not Stalling.used:
            Stalling.used = True
            if Stalling.crash:
                raise SystemExit("instance killed")  # not an Exception: nothing cleans up
            Stalling.entered.set()
            Stalling.release.wait(timeout=60)
        return super().create_table(table, *args, **kwargs)


def _stalling(platform: Platform, *, crash: bool) -> None:
    Stalling.entered, Stalling.release = threading.Event(), threading.Event()
    Stalling.crash, Stalling.used = crash, False
    use_deps(emulator_deps(platform, Stalling))


def test_a_duplicate_while_the_first_is_in_flight_is_409_with_retry_after(
    platform: Platform,
) -> None:
    _stalling(platform, crash=False)
    payload = onboarding_payload(new_tenant_id())
    first: list[Any] = []
    wired = Deps(
        settings=platform.deps.settings, secrets=platform.deps.secrets, _crypto=platform.deps.crypto
    )

    def onboard_first() -> None:
        first.append(platform.onboard(payload))

    thread = threading.Thread(target=onboard_first)
    thread.start()
    assert Stalling.entered.wait(timeout=60)

    duplicate = platform.onboard(payload)

    Stalling.release.set()
    thread.join(timeout=120)
    assert duplicate.status_code == 409, duplicate.get_json()
    assert duplicate.get_json()["error"] == "onboarding_in_progress"
    assert int(duplicate.headers["Retry-After"]) >= 1
    assert first[0].status_code == 201, first[0].get_json()
    use_deps(wired)
    replay = platform.onboard(payload)
    assert (replay.status_code, replay.get_json()["replayed"]) == (200, True)
    assert len(central_rows(platform.deps, "tenant_api_keys", payload["tenant_id"])) == 1


def test_a_crashed_attempt_holds_the_tenant_only_until_its_lease_ends(platform: Platform) -> None:
    _stalling(platform, crash=True)
    payload = onboarding_payload(new_tenant_id())
    with pytest.raises(SystemExit):
        platform.onboard(payload)
    [profile] = central_rows(platform.deps, "tenant_profiles", payload["tenant_id"])
    assert profile["onboarding_state"] == "PROVISIONING"

    soon = platform.onboard(payload)
    platform.travel_to(profile["claimed_at"] + ONBOARDING_LEASE + dt.timedelta(seconds=1))
    later = platform.onboard(payload)

    assert (soon.status_code, soon.get_json()["error"]) == (409, "onboarding_in_progress")
    assert later.status_code == 201, later.get_json()
    assert KEY_RE.match(later.get_json()["api_key"])

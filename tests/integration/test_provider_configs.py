"""Provider configs on the emulator: one per tenant and provider, validated, tenant-isolated."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

import pytest

from shared.deps import use_deps
from shared.vault.provider_configs import CONFIGS
from shared.vault.reservations import INSERT_DEADLINE, LEASE
from tests.credential_samples import create_body
from tests.integration.conftest import Platform

BASE = "/provider-configs"


def gcp_config(**changes: Any) -> dict[str, Any]:
    body = {
        "provider": "GCP",
        "source_project_id": "acme-billing-prod",
        "billing_export_dataset": "billing_export",
        "billing_export_table": "gcp_billing_export_v1_0123AB_4567CD_89EF01",
        "currency": "USD",
        "notification_emails": ["finops@acme.example", "FinOps@acme.example", "cto@acme.example"],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def call(platform: Platform, method: str, path: str, key: str, **kwargs: Any) -> Any:
    return platform.tenant_call("credentials", method, path, key, **kwargs)


def credential(platform: Platform, key: str, provider: str = "GCP") -> str:
    response = call(platform, "POST", "/", key, json=create_body(provider))
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["credential_id"])


def config_rows(platform: Platform, tenant_id: str) -> list[dict[str, Any]]:
    wh = platform.deps.warehouse
    return wh.query(
        f"SELECT * FROM {wh.central('tenant_provider_configs')} WHERE tenant_id = @t",
        {"t": tenant_id},
    )


def test_a_config_is_created_listed_and_fetched(platform: Platform) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    credential_id = credential(platform, key)

    response = call(platform, "POST", BASE, key, json=gcp_config(credential_id=credential_id))

    assert response.status_code == 201, response.get_json()
    config = response.get_json()
    assert config["config_id"].startswith("pcfg_")
    assert config["provider"] == "GCP"
    assert config["source_project_id"] == "acme-billing-prod"
    assert config["billing_export_table"] == "gcp_billing_export_v1_0123AB_4567CD_89EF01"
    assert config["currency"] == "USD"
    assert config["notification_emails"] == ["finops@acme.example", "cto@acme.example"]
    assert config["credential_id"] == credential_id
    assert config["status"] == "ACTIVE"
    listed = call(platform, "GET", BASE, key).get_json()["provider_configs"]
    assert listed == [config]
    assert call(platform, "GET", f"{BASE}/{config['config_id']}", key).get_json() == config


def test_a_second_config_for_the_same_provider_is_409_naming_the_first(platform: Platform) -> None:
    tenant = platform.onboarded()
    first = call(platform, "POST", BASE, tenant["api_key"], json=gcp_config()).get_json()

    second = call(platform, "POST", BASE, tenant["api_key"], json=gcp_config(currency="EUR"))

    assert second.status_code == 409
    assert second.get_json()["config_id"] == first["config_id"]
    assert second.get_json()["field"] == "provider"
    [row] = config_rows(platform, tenant["tenant_id"])
    assert (row["config_id"], row["currency"]) == (first["config_id"], "USD")


def test_concurrent_creates_for_one_provider_leave_exactly_one_config(platform: Platform) -> None:
    tenant = platform.onboarded()
    results: list[Any] = [None] * 4
    barrier = threading.Barrier(len(results))

    def run(index: int) -> None:
        use_deps(platform.deps)
        barrier.wait()
        results[index] = call(platform, "POST", BASE, tenant["api_key"], json=gcp_config())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
    [row] = config_rows(platform, tenant["tenant_id"])
    assert row["status"] == "ACTIVE"


def test_a_create_that_crashed_after_reserving_holds_the_provider_until_the_lease(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    now = platform.deps.clock()
    crashed = "pcfg_" + "f" * 32
    assert CONFIGS.reserve(
        platform.deps.warehouse,
        tenant["tenant_id"],
        crashed,
        "GCP",
        now,
        admitted="TRUE",
        component="test",
    )

    within_lease = call(platform, "POST", BASE, tenant["api_key"], json=gcp_config())
    use_deps(
        dataclasses.replace(platform.deps, clock=lambda: now + LEASE + dt.timedelta(seconds=1))
    )
    after_lease = call(platform, "POST", BASE, tenant["api_key"], json=gcp_config())

    assert within_lease.status_code == 409
    assert within_lease.get_json()["config_id"] is None  # nothing stored yet to name
    assert after_lease.status_code == 201, after_lease.get_json()
    [row] = config_rows(platform, tenant["tenant_id"])
    assert row["config_id"] == after_lease.get_json()["config_id"] != crashed


def test_a_config_is_written_only_under_its_own_reservation(platform: Platform) -> None:
    tenant_id = platform.onboarded()["tenant_id"]
    warehouse = platform.deps.warehouse
    now = platform.deps.clock()
    values = {
        "config_id": "@id",
        "tenant_id": "@t",
        "provider": "'GCP'",
        "currency": "'USD'",
        "status": "'ACTIVE'",
        "created_at": "@now",
        "updated_at": "@now",
    }

    def insert(config_id: str, at: dt.datetime) -> bool:
        return CONFIGS.insert_reserved(
            warehouse,
            tenant_id,
            config_id,
            columns=values,
            params={"now": now},
            now=at,
            component="test",
        )

    reserved = "pcfg_" + "a" * 32
    assert CONFIGS.reserve(
        warehouse, tenant_id, reserved, "GCP", now, admitted="TRUE", component="test"
    )

    assert insert("pcfg_" + "b" * 32, now) is False  # never reserved
    assert insert(reserved, now + INSERT_DEADLINE + dt.timedelta(seconds=1)) is False
    assert config_rows(platform, tenant_id) == []
    assert insert(reserved, now + dt.timedelta(seconds=5)) is True
    assert [r["config_id"] for r in config_rows(platform, tenant_id)] == [reserved]


def test_put_replaces_every_field_but_the_provider(platform: Platform) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    config = call(platform, "POST", BASE, key, json=gcp_config()).get_json()
    path = f"{BASE}/{config['config_id']}"
    replacement = gcp_config(
        provider=None, currency="EUR", billing_export_dataset="other_export", notification_emails=[]
    )

    replaced = call(platform, "PUT", path, key, json=replacement)
    provider_change = call(platform, "PUT", path, key, json={**replacement, "provider": "AWS"})

    assert replaced.status_code == 200
    body = replaced.get_json()
    assert (body["currency"], body["billing_export_dataset"]) == ("EUR", "other_export")
    assert body["notification_emails"] == []
    assert body["config_id"] == config["config_id"]
    assert provider_change.status_code == 422
    assert provider_change.get_json()["field"] == "provider"
    assert call(platform, "GET", path, key).get_json() == body


def test_delete_is_idempotent_and_frees_the_provider_for_a_new_config(platform: Platform) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    config = call(platform, "POST", BASE, key, json=gcp_config()).get_json()
    path = f"{BASE}/{config['config_id']}"

    first = call(platform, "DELETE", path, key)
    second = call(platform, "DELETE", path, key)
    again = call(platform, "POST", BASE, key, json=gcp_config())

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.get_json()["status"] == "DELETED"
    assert call(platform, "GET", path, key).status_code == 404
    assert again.status_code == 201
    assert again.get_json()["config_id"] != config["config_id"]


BAD_CONFIGS = [
    pytest.param(gcp_config(source_project_id="Acme_Prod"), "source_project_id", id="project-case"),
    pytest.param(gcp_config(source_project_id="acme-"), "source_project_id", id="project-short"),
    pytest.param(gcp_config(source_project_id="a" * 31), "source_project_id", id="project-long"),
    pytest.param(
        gcp_config(billing_export_dataset="billing-export"), "billing_export_dataset", id="dataset"
    ),
    pytest.param(
        gcp_config(billing_export_table="export;DROP"), "billing_export_table", id="table"
    ),
    pytest.param(gcp_config(currency="usd"), "currency", id="currency-case"),
    pytest.param(gcp_config(currency="US"), "currency", id="currency-length"),
    pytest.param(
        gcp_config(notification_emails=["ok@acme.example", "nope"]),
        "notification_emails.1",
        id="email",
    ),
    pytest.param(
        gcp_config(notification_emails="a@acme.example"), "notification_emails", id="emails"
    ),
    pytest.param(gcp_config(billing_export_table=None), "billing_export_table", id="gcp-missing"),
    pytest.param(
        {"provider": "OPENAI", "currency": "USD", "source_project_id": "acme-billing-prod"},
        "source_project_id",
        id="non-gcp-with-project",
    ),
    pytest.param(gcp_config(provider="ORACLE"), "provider", id="provider"),
    pytest.param(gcp_config(extra=1), "extra", id="unknown-field"),
    pytest.param(gcp_config(credential_id="cred_" + "0" * 32), "credential_id", id="unknown-cred"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CONFIGS)
def test_a_bad_config_is_422_naming_the_field_and_writes_nothing(
    platform: Platform, body: dict[str, Any], field: str
) -> None:
    tenant = platform.onboarded()

    response = call(platform, "POST", BASE, tenant["api_key"], json=body)

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == field
    assert config_rows(platform, tenant["tenant_id"]) == []


def test_the_credential_must_be_an_active_one_of_this_tenant_and_provider(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    other = platform.onboarded()
    foreign = credential(platform, other["api_key"])
    openai = credential(platform, tenant["api_key"], "OPENAI")
    deleted = credential(platform, tenant["api_key"])
    call(platform, "DELETE", f"/{deleted}", tenant["api_key"])

    answers = [
        call(platform, "POST", BASE, tenant["api_key"], json=gcp_config(credential_id=c))
        for c in (foreign, openai, deleted)
    ]

    assert [a.status_code for a in answers] == [422, 422, 422]
    assert {a.get_json()["field"] for a in answers} == {"credential_id"}
    assert answers[0].get_json()["detail"] == answers[2].get_json()["detail"]
    assert config_rows(platform, tenant["tenant_id"]) == []


def test_another_tenants_config_id_is_404(platform: Platform) -> None:
    owner = platform.onboarded()
    intruder = platform.onboarded()
    config = call(platform, "POST", BASE, owner["api_key"], json=gcp_config()).get_json()
    path = f"{BASE}/{config['config_id']}"

    answers = [
        call(platform, "GET", path, intruder["api_key"]),
        call(platform, "PUT", path, intruder["api_key"], json=gcp_config(provider=None)),
        call(platform, "DELETE", path, intruder["api_key"]),
        call(platform, "GET", f"{BASE}/pcfg_{'0' * 32}", intruder["api_key"]),
    ]

    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert call(platform, "GET", BASE, intruder["api_key"]).get_json()["provider_configs"] == []
    [row] = config_rows(platform, owner["tenant_id"])
    assert (row["status"], row["currency"]) == ("ACTIVE", "USD")


def test_a_credential_used_by_a_config_cannot_be_deleted_until_the_config_is(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    credential_id = credential(platform, key)
    config = call(platform, "POST", BASE, key, json=gcp_config(credential_id=credential_id))

    refused = call(platform, "DELETE", f"/{credential_id}", key)
    call(platform, "DELETE", f"{BASE}/{config.get_json()['config_id']}", key)
    allowed = call(platform, "DELETE", f"/{credential_id}", key)

    assert refused.status_code == 409
    assert refused.get_json()["config_ids"] == [config.get_json()["config_id"]]
    assert allowed.status_code == 200

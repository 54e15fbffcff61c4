"""The credentials vault on the emulator: metadata-only API, encryption, plan provider slots."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.deps import use_deps
from shared.platform.logs import CloudLoggingFormatter, configure_logging
from shared.platform.warehouse import Typed
from shared.vault import credentials as vault
from shared.vault.credential_validation import validate_secret
from shared.vault.crypto import DecryptionError
from shared.vault.reservations import INSERT_DEADLINE, LEASE
from tests.credential_samples import (
    anthropic_key,
    aws_key,
    create_body,
    marker,
    openai_key,
    pem_marker,
    rsa_pem,
    service_account,
)
from tests.integration.conftest import Platform

PUBLIC_FIELDS = {
    "credential_id",
    "provider",
    "credential_type",
    "credential_name",
    "status",
    "fingerprint",
    "validation_status",
    "validated_at",
    "metadata",
    "created_at",
    "updated_at",
    "rotated_at",
}


def call(platform: Platform, method: str, path: str, key: str, **kwargs: Any) -> Any:
    return platform.tenant_call("credentials", method, path, key, **kwargs)


def create(platform: Platform, key: str, body: dict[str, Any], path: str = "/") -> Any:
    return call(platform, "POST", path, key, json=body)


def created(platform: Platform, key: str, provider: str, **changes: Any) -> dict[str, Any]:
    response = create(platform, key, create_body(provider, **changes))
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def rows(platform: Platform, tenant_id: str) -> list[dict[str, Any]]:
    wh = platform.deps.warehouse
    return wh.query(
        f"SELECT * FROM {wh.central('tenant_cloud_credentials')} WHERE tenant_id = @t "
        "ORDER BY created_at",
        {"t": tenant_id},
    )


def providers_in_use(platform: Platform, tenant_id: str) -> list[str]:
    """Providers of the tenant's ACTIVE credentials: the slots a new provider competes with."""
    return sorted({r["provider"] for r in rows(platform, tenant_id) if r["status"] == "ACTIVE"})


def reservations(platform: Platform, tenant_id: str) -> list[dict[str, Any]]:
    wh = platform.deps.warehouse
    [row] = wh.query(
        f"SELECT provider_reservations FROM {wh.central('tenant_usage_quotas')} "
        "WHERE tenant_id = @t",
        {"t": tenant_id},
    )
    return list(row["provider_reservations"] or [])


def credential_audit_actions(platform: Platform, tenant_id: str) -> list[str]:
    wh = platform.deps.warehouse
    found = wh.query(
        f"SELECT action FROM {wh.central('tenant_audit_log')} "
        "WHERE tenant_id = @t AND STARTS_WITH(action, 'credential.') ORDER BY occurred_at",
        {"t": tenant_id},
    )
    return [r["action"] for r in found]


# ----------------------------------------------------------------- happy paths


def test_creating_a_credential_answers_metadata_only_and_stores_only_ciphertext(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    body = create_body("GCP", metadata={"team": "finops", "cost_center": 42})

    response = create(platform, tenant["api_key"], body)

    assert response.status_code == 201
    answer = response.get_json()
    assert set(answer) == PUBLIC_FIELDS
    assert answer["credential_id"].startswith("cred_")
    assert (answer["provider"], answer["credential_type"]) == ("GCP", "SERVICE_ACCOUNT")
    assert answer["credential_name"] == "gcp billing reader"
    assert answer["status"] == "ACTIVE"
    assert answer["validation_status"] == "FORMAT_VALID"
    assert (
        answer["fingerprint"]
        == validate_secret("GCP", "SERVICE_ACCOUNT", body["credentials"]).fingerprint
    )
    assert answer["metadata"] == {"team": "finops", "cost_center": 42}
    assert answer["created_at"]
    assert "private_key" not in response.get_data(as_text=True)
    [row] = rows(platform, tenant["tenant_id"])
    assert row["status"] == "ACTIVE"
    assert isinstance(row["ciphertext"], bytes) and len(row["ciphertext"]) > 100
    assert pem_marker(rsa_pem()).encode() not in row["ciphertext"]
    assert row["key_reference"] == platform.deps.crypto.key_reference(tenant["tenant_id"])
    assert providers_in_use(platform, tenant["tenant_id"]) == ["GCP"]
    assert credential_audit_actions(platform, tenant["tenant_id"]) == ["credential.created"]


def test_list_and_get_show_the_tenants_active_credentials_without_secrets(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    openai_body = create_body("OPENAI")
    first = created(platform, tenant["api_key"], "OPENAI", credentials=openai_body["credentials"])
    second = created(platform, tenant["api_key"], "ANTHROPIC")

    listed = call(platform, "GET", "/", tenant["api_key"])
    fetched = call(platform, "GET", f"/{first['credential_id']}", tenant["api_key"])

    assert listed.status_code == 200
    assert [c["credential_id"] for c in listed.get_json()["credentials"]] == [
        first["credential_id"],
        second["credential_id"],
    ]
    assert all(set(c) == PUBLIC_FIELDS for c in listed.get_json()["credentials"])
    assert fetched.status_code == 200
    assert fetched.get_json() == first
    assert openai_body["credentials"]["api_key"] not in listed.get_data(as_text=True)
    assert openai_body["credentials"]["api_key"] not in fetched.get_data(as_text=True)


def test_deleting_marks_the_credential_deleted_drops_its_ciphertext_and_is_idempotent(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    credential = created(platform, tenant["api_key"], "OPENAI")
    path = f"/{credential['credential_id']}"

    first = call(platform, "DELETE", path, tenant["api_key"])
    second = call(platform, "DELETE", path, tenant["api_key"])

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.get_json() == second.get_json()
    assert first.get_json()["status"] == "DELETED"
    [row] = rows(platform, tenant["tenant_id"])
    assert (row["status"], row["ciphertext"]) == ("DELETED", None)
    assert row["deleted_at"] is not None
    assert call(platform, "GET", path, tenant["api_key"]).status_code == 404
    assert call(platform, "GET", "/", tenant["api_key"]).get_json()["credentials"] == []
    with pytest.raises(vault.CredentialUnavailable):
        vault.decrypt_credential(platform.deps, tenant["tenant_id"], credential["credential_id"])
    assert credential_audit_actions(platform, tenant["tenant_id"]) == [
        "credential.created",
        "credential.deleted",
    ]


def test_rotation_replaces_the_secret_under_the_same_id(platform: Platform) -> None:
    tenant = platform.onboarded()
    credential = created(platform, tenant["api_key"], "OPENAI")
    new_key = openai_key()

    response = call(
        platform,
        "POST",
        f"/{credential['credential_id']}/rotate",
        tenant["api_key"],
        json={"credentials": {"api_key": new_key}},
    )

    assert response.status_code == 200
    rotated = response.get_json()
    assert set(rotated) == PUBLIC_FIELDS
    assert rotated["credential_id"] == credential["credential_id"]
    assert rotated["fingerprint"] != credential["fingerprint"]
    assert rotated["rotated_at"] is not None and credential["rotated_at"] is None
    assert new_key not in response.get_data(as_text=True)
    secret = vault.decrypt_credential(platform.deps, tenant["tenant_id"], rotated["credential_id"])
    assert secret == {"api_key": new_key}
    fetched = call(platform, "GET", f"/{credential['credential_id']}", tenant["api_key"])
    assert fetched.get_json()["fingerprint"] == rotated["fingerprint"]
    assert len(rows(platform, tenant["tenant_id"])) == 1


def test_a_rotation_with_a_bad_secret_is_refused_and_keeps_the_old_one(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    body = create_body("ANTHROPIC")
    credential = created(platform, tenant["api_key"], "ANTHROPIC", credentials=body["credentials"])
    path = f"/{credential['credential_id']}/rotate"

    wrong_provider = call(
        platform, "POST", path, tenant["api_key"], json={"credentials": {"api_key": openai_key()}}
    )
    extra_field = call(
        platform, "POST", path, tenant["api_key"], json={"credentials": {}, "provider": "GCP"}
    )

    assert wrong_provider.status_code == 422
    assert wrong_provider.get_json()["field"] == "credentials.api_key"
    assert extra_field.get_json()["field"] == "provider"
    assert (
        vault.decrypt_credential(platform.deps, tenant["tenant_id"], credential["credential_id"])
        == body["credentials"]
    )
    [row] = rows(platform, tenant["tenant_id"])
    assert row["rotated_at"] is None


def test_a_workload_identity_credential_stores_no_secret_and_cannot_be_rotated(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    body = create_body(
        "GCP",
        credential_type="WORKLOAD_IDENTITY",
        credentials=None,
        metadata={"granted_to": "platform service account", "source_project": "acme-billing"},
    )

    response = create(platform, tenant["api_key"], body)
    rotate = call(
        platform,
        "POST",
        f"/{response.get_json()['credential_id']}/rotate",
        tenant["api_key"],
        json={"credentials": {"api_key": openai_key()}},
    )

    assert response.status_code == 201
    answer = response.get_json()
    assert (answer["fingerprint"], answer["validation_status"]) == (None, "NOT_APPLICABLE")
    [row] = rows(platform, tenant["tenant_id"])
    assert row["ciphertext"] is None
    assert (
        vault.decrypt_credential(platform.deps, tenant["tenant_id"], answer["credential_id"]) == {}
    )
    assert rotate.status_code == 409


# ----------------------------------------------------------------- refusals


def _without(info: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != field}


BAD_BODIES = [
    pytest.param({**create_body("GCP"), "provider": "ORACLE"}, "provider", id="unknown-provider"),
    pytest.param(
        create_body("GCP", credential_type="API_KEY"), "credential_type", id="gcp-api-key"
    ),
    pytest.param(
        create_body("OPENAI", credential_type="SERVICE_ACCOUNT"), "credential_type", id="openai-sa"
    ),
    pytest.param(
        create_body("GCP", credentials=service_account(private_key="-----BEGIN junk")),
        "credentials.private_key",
        id="sa-bad-private-key",
    ),
    pytest.param(
        create_body("GCP", credentials=service_account(project_id="Not_A_Project")),
        "credentials.project_id",
        id="sa-bad-project",
    ),
    pytest.param(
        create_body("GCP", credentials=service_account(type="user")),
        "credentials.type",
        id="sa-wrong-type",
    ),
    pytest.param(
        create_body("GCP", credentials=service_account(client_email="nobody")),
        "credentials.client_email",
        id="sa-bad-email",
    ),
    pytest.param(
        create_body("GCP", credentials=_without(service_account(), "private_key")),
        "credentials.private_key",
        id="sa-missing-key",
    ),
    pytest.param(create_body("GCP", credentials="{}"), "credentials", id="credentials-string"),
    pytest.param(create_body("OPENAI", credentials=["sk-x"]), "credentials", id="credentials-list"),
    pytest.param(create_body("OPENAI", credentials=None), "credentials", id="credentials-missing"),
    pytest.param(
        create_body("OPENAI", credentials={"api_key": "pk-" + "a" * 30}),
        "credentials.api_key",
        id="openai-bad-key",
    ),
    pytest.param(
        create_body("ANTHROPIC", credentials={"api_key": "sk-" + "a" * 30}),
        "credentials.api_key",
        id="anthropic-bad-key",
    ),
    pytest.param(
        create_body("AWS", credentials={**aws_key(), "access_key_id": "AKIA"}),
        "credentials.access_key_id",
        id="aws-bad-id",
    ),
    pytest.param(
        create_body("GCP", credential_type="WORKLOAD_IDENTITY"),
        "credentials",
        id="workload-identity-with-secret",
    ),
    pytest.param(
        create_body("OPENAI", metadata={"client_secret": "x"}), "metadata", id="secret-metadata"
    ),
    pytest.param(create_body("OPENAI", extra="x"), "extra", id="unknown-field"),
    pytest.param(
        _without(create_body("OPENAI"), "credential_name"), "credential_name", id="no-name"
    ),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_a_bad_create_is_422_naming_the_field_and_writes_nothing(
    platform: Platform, body: dict[str, Any], field: str
) -> None:
    tenant = platform.onboarded()

    response = create(platform, tenant["api_key"], body)

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == field
    assert rows(platform, tenant["tenant_id"]) == []
    assert providers_in_use(platform, tenant["tenant_id"]) == []
    assert credential_audit_actions(platform, tenant["tenant_id"]) == []


def test_asking_for_live_validation_when_it_is_disabled_is_422_and_writes_nothing(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()

    response = create(platform, tenant["api_key"], create_body("OPENAI"), path="/?validate=live")

    assert response.status_code == 422
    assert response.get_json()["field"] == "validate"
    assert rows(platform, tenant["tenant_id"]) == []


def test_a_request_without_a_valid_api_key_is_401(platform: Platform) -> None:
    response = platform.client("credentials").post("/", json=create_body("OPENAI"))

    assert response.status_code == 401


def test_a_two_mib_body_is_413_and_writes_nothing(platform: Platform) -> None:
    tenant = platform.onboarded()
    body = create_body("OPENAI", metadata={"note": "x" * (2 * 1024 * 1024)})

    response = create(platform, tenant["api_key"], body)

    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"
    assert rows(platform, tenant["tenant_id"]) == []


def test_another_tenants_credential_id_is_404_like_an_unknown_one(platform: Platform) -> None:
    owner = platform.onboarded()
    intruder = platform.onboarded()
    credential = created(platform, owner["api_key"], "OPENAI")
    path = f"/{credential['credential_id']}"
    rotate_body = {"credentials": {"api_key": openai_key()}}

    answers = [
        call(platform, "GET", path, intruder["api_key"]),
        call(platform, "DELETE", path, intruder["api_key"]),
        call(platform, "POST", f"{path}/rotate", intruder["api_key"], json=rotate_body),
        call(platform, "GET", "/cred_" + "0" * 32, intruder["api_key"]),
        call(platform, "GET", "/not-an-id", intruder["api_key"]),
    ]

    assert [a.status_code for a in answers] == [404] * 5
    assert len({a.get_json()["detail"] for a in answers}) == 1
    assert call(platform, "GET", "/", intruder["api_key"]).get_json()["credentials"] == []
    [row] = rows(platform, owner["tenant_id"])
    assert row["status"] == "ACTIVE" and row["rotated_at"] is None
    assert call(platform, "GET", path, owner["api_key"]).status_code == 200


# ----------------------------------------------------------------- plan provider limit


def test_a_starter_tenant_gets_three_providers_and_the_fourth_is_429(platform: Platform) -> None:
    tenant = platform.onboarded(subscription_plan="STARTER")
    for provider in ("GCP", "OPENAI", "ANTHROPIC"):
        created(platform, tenant["api_key"], provider)
    before = rows(platform, tenant["tenant_id"])

    refused = create(platform, tenant["api_key"], create_body("AWS"))
    same_provider_again = create(platform, tenant["api_key"], create_body("OPENAI"))

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    answer = refused.get_json()
    assert answer["error"] == "quota_exceeded"
    assert answer["limit"] == 3
    assert "3 distinct providers" in answer["detail"]
    assert answer["providers_in_use"] == ["ANTHROPIC", "GCP", "OPENAI"]
    assert same_provider_again.status_code == 201
    after = rows(platform, tenant["tenant_id"])
    assert [r["credential_id"] for r in after if r["provider"] == "AWS"] == []
    assert len(after) == len(before) + 1
    assert providers_in_use(platform, tenant["tenant_id"]) == ["ANTHROPIC", "GCP", "OPENAI"]


def test_deleting_the_last_credential_of_a_provider_frees_its_slot(platform: Platform) -> None:
    tenant = platform.onboarded(subscription_plan="STARTER")
    key = tenant["api_key"]
    created(platform, key, "GCP")
    created(platform, key, "ANTHROPIC")
    first_openai = created(platform, key, "OPENAI")
    second_openai = created(platform, key, "OPENAI")

    call(platform, "DELETE", f"/{first_openai['credential_id']}", key)
    still_full = create(platform, key, create_body("AWS"))
    call(platform, "DELETE", f"/{second_openai['credential_id']}", key)
    freed = create(platform, key, create_body("AWS"))

    assert still_full.status_code == 429
    assert freed.status_code == 201
    assert providers_in_use(platform, tenant["tenant_id"]) == ["ANTHROPIC", "AWS", "GCP"]


def at_once(platform: Platform, calls: list[Callable[[], Any]]) -> list[Any]:
    """Runs the calls in threads released together; their answers in the same order."""
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        use_deps(platform.deps)
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def race(platform: Platform, key: str, providers: list[str]) -> list[Any]:
    """Fires one create per provider at once; the answers in the same order."""
    return at_once(platform, [lambda p=p: create(platform, key, create_body(p)) for p in providers])


@pytest.mark.parametrize(
    "providers",
    [
        pytest.param(["GCP", "OPENAI", "ANTHROPIC", "AWS", "AWS", "OPENAI"], id="6-way"),
        pytest.param(["GCP", "OPENAI", "ANTHROPIC", "AWS"] * 5, id="20-way"),
    ],
)
def test_concurrent_creates_of_distinct_providers_never_exceed_the_limit(
    platform: Platform, providers: list[str]
) -> None:
    tenant = platform.onboarded(subscription_plan="STARTER")

    results = race(platform, tenant["api_key"], providers)

    codes = [r.status_code for r in results]
    assert set(codes) <= {201, 429}, [r.get_json() for r in results]
    admitted = {providers[i] for i, code in enumerate(codes) if code == 201}
    assert len(admitted) == 3
    assert all(providers[i] not in admitted for i, c in enumerate(codes) if c == 429)
    stored = rows(platform, tenant["tenant_id"])
    assert {r["provider"] for r in stored} == admitted
    assert len(stored) == codes.count(201)
    assert all(r["status"] == "ACTIVE" for r in stored)
    assert {r["credential_id"] for r in stored} == {
        r.get_json()["credential_id"] for r in results if r.status_code == 201
    }


def test_a_refused_create_writes_nothing_not_even_a_reservation(platform: Platform) -> None:
    tenant = platform.onboarded(subscription_plan="STARTER")
    for provider in ("GCP", "OPENAI", "ANTHROPIC"):
        created(platform, tenant["api_key"], provider)
    before = reservations(platform, tenant["tenant_id"])

    refused = create(platform, tenant["api_key"], create_body("AWS"))

    assert refused.status_code == 429
    # No in-flight create holds a slot: waiting will not help, a delete will.
    assert int(refused.headers["Retry-After"]) == 3600
    assert reservations(platform, tenant["tenant_id"]) == before
    assert "AWS" not in {r["provider"] for r in rows(platform, tenant["tenant_id"])}
    assert credential_audit_actions(platform, tenant["tenant_id"]) == ["credential.created"] * 3


def reserve(platform: Platform, tenant_id: str, provider: str) -> str:
    """A create that reserved its slot and died before inserting its row."""
    credential_id = "cred_" + "f" * 32
    now = platform.deps.clock()
    assert vault._reserve_provider(platform.deps.warehouse, tenant_id, credential_id, provider, now)
    return credential_id


def test_a_create_that_crashed_after_taking_a_slot_frees_it_after_the_lease(
    platform: Platform,
) -> None:
    tenant = platform.onboarded(subscription_plan="STARTER")
    tenant_id = tenant["tenant_id"]
    created(platform, tenant["api_key"], "GCP")
    created(platform, tenant["api_key"], "ANTHROPIC")
    reserve(platform, tenant_id, "OPENAI")

    within_lease = create(platform, tenant["api_key"], create_body("AWS"))
    later = dataclasses.replace(
        platform.deps,
        clock=lambda: dt.datetime.now(dt.UTC) + LEASE + dt.timedelta(minutes=1),
    )
    use_deps(later)
    after_lease = create(platform, tenant["api_key"], create_body("AWS"))

    assert within_lease.status_code == 429
    assert within_lease.get_json()["providers_in_use"] == ["ANTHROPIC", "GCP", "OPENAI"]
    assert int(within_lease.headers["Retry-After"]) == LEASE.total_seconds()
    assert after_lease.status_code == 201, after_lease.get_json()
    assert providers_in_use(platform, tenant_id) == ["ANTHROPIC", "AWS", "GCP"]
    # The spent reservations are gone; only the last create's (its row exists) is left.
    assert [r["provider"] for r in reservations(platform, tenant_id)] == ["AWS"]
    assert call(platform, "GET", "/", tenant["api_key"]).status_code == 200


NO_SECRET = Typed("STRING", None)


def pending_row(credential_id: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "credential_id": credential_id,
        "provider": "OPENAI",
        "credential_type": "API_KEY",
        "credential_name": "late",
        "fingerprint": None,
        "metadata_json": "{}",
        "validation_status": "FORMAT_VALID",
        "created_at": now,
    }


@pytest.mark.parametrize(
    ("delay", "stored"),
    [
        pytest.param(dt.timedelta(seconds=5), True, id="in-time"),
        pytest.param(INSERT_DEADLINE + dt.timedelta(seconds=1), False, id="too-late"),
    ],
)
def test_the_row_is_written_only_while_its_reservation_is_within_the_insert_deadline(
    platform: Platform, delay: dt.timedelta, stored: bool
) -> None:
    tenant_id = platform.onboarded(subscription_plan="STARTER")["tenant_id"]
    credential_id = reserve(platform, tenant_id, "OPENAI")
    reserved_at = reservations(platform, tenant_id)[0]["reserved_at"]
    at_insert = dataclasses.replace(platform.deps, clock=lambda: reserved_at + delay)

    written = vault._insert_reserved(
        at_insert, tenant_id, pending_row(credential_id, reserved_at), NO_SECRET
    )

    assert written is stored
    assert [r["credential_id"] for r in rows(platform, tenant_id)] == (
        [credential_id] if stored else []
    )


def test_an_unreserved_credential_id_is_never_written(platform: Platform) -> None:
    tenant_id = platform.onboarded(subscription_plan="STARTER")["tenant_id"]
    reserve(platform, tenant_id, "OPENAI")
    other = "cred_" + "e" * 32

    written = vault._insert_reserved(
        platform.deps, tenant_id, pending_row(other, platform.deps.clock()), NO_SECRET
    )

    assert written is False
    assert rows(platform, tenant_id) == []


# ----------------------------------------------------------------- Idempotency-Key


def create_once(platform: Platform, key: str, body: dict[str, Any], idempotency_key: str) -> Any:
    return call(platform, "POST", "/", key, json=body, headers={"Idempotency-Key": idempotency_key})


def test_a_retried_create_with_the_same_idempotency_key_returns_the_first_credential(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    body = create_body("OPENAI")

    first = create_once(platform, tenant["api_key"], body, "create-openai-1")
    retried = create_once(platform, tenant["api_key"], body, "create-openai-1")

    assert (first.status_code, retried.status_code) == (201, 200)
    assert retried.get_json() == first.get_json()
    assert len(rows(platform, tenant["tenant_id"])) == 1
    assert credential_audit_actions(platform, tenant["tenant_id"]) == ["credential.created"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"credential_name": "another name"}, id="name"),
        pytest.param({"credentials": {"api_key": openai_key()}}, id="secret"),
        pytest.param({"metadata": {"team": "other"}}, id="metadata"),
    ],
)
def test_the_same_idempotency_key_with_a_different_body_is_409_and_writes_nothing(
    platform: Platform, changes: dict[str, Any]
) -> None:
    tenant = platform.onboarded()
    body = create_body("OPENAI")
    assert create_once(platform, tenant["api_key"], body, "k-1").status_code == 201

    reused = create_once(platform, tenant["api_key"], {**body, **changes}, "k-1")

    assert reused.status_code == 409
    assert reused.get_json()["field"] == "Idempotency-Key"
    assert len(rows(platform, tenant["tenant_id"])) == 1


def test_concurrent_creates_with_one_idempotency_key_store_one_credential(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    body = create_body("GCP")

    results = at_once(
        platform, [lambda: create_once(platform, tenant["api_key"], body, "burst-1")] * 8
    )

    codes = [r.status_code for r in results]
    assert codes.count(201) == 1, [r.get_json() for r in results]
    assert set(codes) <= {201, 200, 409}
    [row] = rows(platform, tenant["tenant_id"])
    assert {r.get_json()["credential_id"] for r in results if r.status_code in (200, 201)} == {
        row["credential_id"]
    }
    in_progress = [r for r in results if r.status_code == 409]
    assert all(int(r.headers["Retry-After"]) > 0 for r in in_progress)


def test_an_idempotency_key_is_scoped_to_its_tenant(platform: Platform) -> None:
    first, second = platform.onboarded(), platform.onboarded()

    a = create_once(platform, first["api_key"], create_body("OPENAI"), "shared-key")
    b = create_once(platform, second["api_key"], create_body("OPENAI"), "shared-key")

    assert (a.status_code, b.status_code) == (201, 201)
    assert a.get_json()["credential_id"] != b.get_json()["credential_id"]


def test_an_idempotency_key_of_a_deleted_credential_is_409(platform: Platform) -> None:
    tenant = platform.onboarded()
    body = create_body("OPENAI")
    created_once = create_once(platform, tenant["api_key"], body, "k-del").get_json()
    call(platform, "DELETE", f"/{created_once['credential_id']}", tenant["api_key"])

    again = create_once(platform, tenant["api_key"], body, "k-del")

    assert again.status_code == 409
    assert "deleted" in again.get_json()["detail"]
    assert [r["status"] for r in rows(platform, tenant["tenant_id"])] == ["DELETED"]


def test_a_retry_of_a_create_that_crashed_is_409_until_the_lease_then_201(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    tenant_id = tenant["tenant_id"]
    credential_id = vault.credential_id_for(tenant_id, "k-crash")
    now = platform.deps.clock()
    assert vault._reserve_provider(platform.deps.warehouse, tenant_id, credential_id, "AWS", now)

    within_lease = create_once(platform, tenant["api_key"], create_body("AWS"), "k-crash")
    use_deps(
        dataclasses.replace(platform.deps, clock=lambda: now + LEASE + dt.timedelta(seconds=1))
    )
    after_lease = create_once(platform, tenant["api_key"], create_body("AWS"), "k-crash")

    assert within_lease.status_code == 409
    assert "in progress" in within_lease.get_json()["detail"]
    assert after_lease.status_code == 201, after_lease.get_json()
    assert after_lease.get_json()["credential_id"] == credential_id
    assert [r["credential_id"] for r in rows(platform, tenant_id)] == [credential_id]


# ----------------------------------------------------------------- secrecy


@pytest.fixture
def platform_logs_into_capsys(platform: Platform) -> Iterator[Callable[[], None]]:
    """Runs the platform at DEBUG; the returned call points its JSON log handler at capsys.

    Called from the test body: capsys swaps sys.stdout between setup and call.
    """
    verbose = dataclasses.replace(
        platform.deps, settings=platform.deps.settings.model_copy(update={"log_level": "DEBUG"})
    )
    use_deps(verbose)
    configure_logging("DEBUG")
    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and isinstance(h.formatter, CloudLoggingFormatter)
    ]
    previous = [h.stream for h in handlers]

    def redirect() -> None:
        assert handlers, "the platform's log handler is not installed"
        for handler in handlers:
            handler.setStream(sys.stdout)

    yield redirect
    for handler, stream in zip(handlers, previous, strict=True):
        handler.stream = stream  # not setStream: it would flush capsys's closed stream


def truncated_pem(pem: str) -> str:
    """A PEM cut in half: still holds the planted needle, no longer loads."""
    return pem[: len(pem) // 2] + "\n-----END PRIVATE KEY-----\n"


def all_stored_text(platform: Platform, datasets: list[str]) -> str:
    """Every row of every table and view of these datasets, as JSON text."""
    wh = platform.deps.warehouse
    texts = []
    for dataset in datasets:
        for table in wh.client.list_tables(f"{wh.project}.{dataset}"):
            found = wh.query(
                f"SELECT TO_JSON_STRING(t) AS j FROM {wh.table(dataset, table.table_id)} AS t"
            )
            texts.extend(r["j"] for r in found)
    return "\n".join(texts)


def test_planted_secrets_never_reach_responses_logs_or_plain_table_data(
    platform: Platform,
    platform_logs_into_capsys: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    platform_logs_into_capsys()
    tenant = platform.onboarded()
    key = tenant["api_key"]
    sa = service_account()
    needles = {
        "private key": pem_marker(sa["private_key"]),
        "openai": marker(),
        "anthropic": marker(),
        "rotated": marker(),
        "refused": marker(),
    }
    openai_secret = openai_key(needles["openai"])
    responses = [
        create(platform, key, create_body("GCP", credentials=sa)),
        create(platform, key, create_body("OPENAI", credentials={"api_key": openai_secret})),
        create(
            platform,
            key,
            create_body("ANTHROPIC", credentials={"api_key": anthropic_key(needles["anthropic"])}),
        ),
        # Refused secrets: a key in the wrong provider, and one in a non-object field.
        create(
            platform,
            key,
            create_body("ANTHROPIC", credentials={"api_key": openai_key(needles["refused"])}),
        ),
        create(platform, key, create_body("OPENAI", credentials=openai_key(needles["refused"]))),
        create(
            platform,
            key,
            create_body(
                "GCP", credentials=service_account(private_key=truncated_pem(sa["private_key"]))
            ),
        ),
    ]
    openai_id = responses[1].get_json()["credential_id"]
    responses += [
        call(
            platform,
            "POST",
            f"/{openai_id}/rotate",
            key,
            json={"credentials": {"api_key": openai_key(needles["rotated"])}},
        ),
        call(platform, "GET", "/", key),
        call(platform, "GET", f"/{openai_id}", key),
        call(platform, "DELETE", f"/{responses[0].get_json()['credential_id']}", key),
    ]
    assert [r.status_code for r in responses] == [201, 201, 201, 422, 422, 422, 200, 200, 200, 200]

    stored = all_stored_text(
        platform, [platform.deps.settings.central_dataset, tenant["dataset_id"]]
    )
    captured = capsys.readouterr()
    logged = caplog.text + "".join(repr(vars(r)) + r.getMessage() for r in caplog.records)
    places = {
        "responses": "".join(r.get_data(as_text=True) + str(r.headers) for r in responses),
        "logs": logged,
        "stdout": captured.out,
        "stderr": captured.err,
        "tables": stored,
    }
    assert '"severity"' in captured.out, "the platform's JSON log lines were not captured"
    assert openai_id in stored  # the scan reads the credential rows
    for place, text in places.items():
        for name, needle in needles.items():
            assert needle not in text, f"{name} secret found in {place}"


# ----------------------------------------------------------------- decryption


def test_a_stored_credential_decrypts_only_as_itself(platform: Platform) -> None:
    owner = platform.onboarded()
    other = platform.onboarded()
    body = create_body("OPENAI")
    original = created(platform, owner["api_key"], "OPENAI", credentials=body["credentials"])
    sibling = created(platform, owner["api_key"], "OPENAI")
    foreign = created(platform, other["api_key"], "OPENAI")
    wh = platform.deps.warehouse
    table = wh.central("tenant_cloud_credentials")

    def copy_ciphertext(to_id: str) -> None:
        wh.execute(
            f"UPDATE {table} SET ciphertext = (SELECT ciphertext FROM {table} "
            "WHERE credential_id = @src) WHERE credential_id = @dst",
            {"src": original["credential_id"], "dst": to_id},
        )

    secret = vault.decrypt_credential(platform.deps, owner["tenant_id"], original["credential_id"])
    copy_ciphertext(sibling["credential_id"])
    copy_ciphertext(foreign["credential_id"])

    assert secret == body["credentials"]
    with pytest.raises(DecryptionError):
        vault.decrypt_credential(platform.deps, owner["tenant_id"], sibling["credential_id"])
    with pytest.raises(DecryptionError):
        vault.decrypt_credential(platform.deps, other["tenant_id"], foreign["credential_id"])
    with pytest.raises(vault.CredentialUnavailable):
        vault.decrypt_credential(platform.deps, other["tenant_id"], original["credential_id"])
    copied = {r["credential_id"]: r["ciphertext"] for r in rows(platform, owner["tenant_id"])}
    assert copied[sibling["credential_id"]] == copied[original["credential_id"]]
    assert json.loads(json.dumps(secret)) == body["credentials"]

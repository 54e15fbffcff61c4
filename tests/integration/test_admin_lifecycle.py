"""Admin lifecycle against the emulator: status, suspend, plan change, offboarding."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.vault.credentials import CredentialUnavailable, decrypt_credential
from shared.vault.crypto import DecryptionError, credential_aad
from tests.credential_samples import create_body
from tests.integration.conftest import Platform, onboarding_payload


def test_status_shows_profile_plan_limits_usage_and_key_metadata_only(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()

    response = platform.admin("GET", f"/tenants/{tenant['tenant_id']}")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "TRIALING"
    assert body["subscription"]["plan"] == "PROFESSIONAL"
    assert body["limits"] == {
        "daily_runs": 25,
        "monthly_runs": 750,
        "concurrent_runs": 5,
        "team_members": 6,
        "providers": 6,
    }
    assert body["usage"]["daily_runs"] == 0
    [key] = body["api_keys"]
    assert key["key_id"] == tenant["api_key_id"]
    assert key["status"] == "ACTIVE"
    text = response.get_data(as_text=True)
    assert tenant["api_key"] not in text
    assert "key_hash" not in text


def test_admin_routes_need_the_admin_key(platform: Platform) -> None:
    tenant = platform.onboarded()

    response = platform.client("admin").get(
        f"/tenants/{tenant['tenant_id']}", headers={"X-Admin-Key": tenant["api_key"]}
    )

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("path", "status"),
    [("/tenants/nosuchtenant", 404), ("/tenants/Bad-Id", 422), ("/tenants/_x", 422)],
)
def test_unknown_or_malformed_tenant_ids_are_4xx(
    platform: Platform, path: str, status: int
) -> None:
    assert platform.admin("GET", path).status_code == status


def test_plan_change_applies_the_catalogue_limits(platform: Platform) -> None:
    tenant = platform.onboarded()

    response = platform.admin(
        "POST", f"/tenants/{tenant['tenant_id']}/plan", json={"plan": "SCALE"}
    )
    status = platform.admin("GET", f"/tenants/{tenant['tenant_id']}").get_json()

    assert response.status_code == 200
    assert status["subscription"]["plan"] == "SCALE"
    assert status["limits"]["daily_runs"] == 100
    assert status["limits"]["concurrent_runs"] == 10


def test_an_unknown_plan_is_422_and_changes_nothing(platform: Platform) -> None:
    tenant = platform.onboarded()

    response = platform.admin("POST", f"/tenants/{tenant['tenant_id']}/plan", json={"plan": "GOLD"})

    assert response.status_code == 422
    assert response.get_json()["field"] == "plan"
    status = platform.admin("GET", f"/tenants/{tenant['tenant_id']}").get_json()
    assert status["subscription"]["plan"] == "PROFESSIONAL"


def test_suspend_and_reactivate_are_idempotent(platform: Platform) -> None:
    tenant = platform.onboarded()
    path = f"/tenants/{tenant['tenant_id']}"

    first = platform.admin("POST", f"{path}/suspend", json={"reason": "chargeback"})
    second = platform.admin("POST", f"{path}/suspend")
    back = platform.admin("POST", f"{path}/reactivate")

    assert (first.get_json()["status"], first.get_json()["changed"]) == ("SUSPENDED", True)
    assert (second.get_json()["status"], second.get_json()["changed"]) == ("SUSPENDED", False)
    assert back.get_json()["status"] == "ACTIVE"


def test_offboarding_revokes_keys_shreds_credentials_and_deletes_the_dataset(
    platform: Platform,
) -> None:
    tenant = platform.onboarded()
    tenant_id = tenant["tenant_id"]
    crypto = platform.deps.crypto
    aad = credential_aad(tenant_id, "cred-1")
    ciphertext = crypto.encrypt(tenant_id, b"service-account-json", aad)

    response = platform.admin(
        "POST", f"/tenants/{tenant_id}/offboard", json={"retain_days": 0, "confirm": tenant_id}
    )

    assert response.status_code == 200
    report = response.get_json()
    assert report["api_keys_revoked"] == [tenant["api_key_id"]]
    assert report["key_material"]["already_shredded"] is False
    assert report["dataset"]["deleted"] is True
    assert not platform.dataset_exists(tenant["dataset_id"])
    with pytest.raises(DecryptionError):
        crypto.decrypt(tenant_id, ciphertext, aad)
    assert platform.tenant_call("quota", "GET", "/", tenant["api_key"]).status_code in (401, 403)
    status = platform.admin("GET", f"/tenants/{tenant_id}").get_json()
    assert status["status"] == "DELETED"


def test_offboarding_twice_reports_nothing_left_to_remove(platform: Platform) -> None:
    tenant = platform.onboarded()
    body = {"retain_days": 0, "confirm": tenant["tenant_id"]}
    platform.admin("POST", f"/tenants/{tenant['tenant_id']}/offboard", json=body)

    again = platform.admin("POST", f"/tenants/{tenant['tenant_id']}/offboard", json=body)

    report = again.get_json()
    assert again.status_code == 200
    assert report["api_keys_revoked"] == []
    assert report["key_material"]["already_shredded"] is True
    assert report["dataset"]["deleted"] is False


def test_a_retained_dataset_is_purged_only_after_its_retention(platform: Platform) -> None:
    tenant = platform.onboarded()
    tenant_id = tenant["tenant_id"]
    platform.admin(
        "POST", f"/tenants/{tenant_id}/offboard", json={"retain_days": 7, "confirm": tenant_id}
    )

    early = platform.admin("POST", "/purge").get_json()
    platform.travel_to(platform.deps.clock() + dt.timedelta(days=8))
    late = platform.admin("POST", "/purge").get_json()

    assert tenant_id not in early["datasets_deleted_for"]
    assert tenant_id in late["datasets_deleted_for"]
    assert not platform.dataset_exists(tenant["dataset_id"])


def test_offboarding_needs_the_tenant_id_repeated(platform: Platform) -> None:
    tenant = platform.onboarded()

    response = platform.admin(
        "POST", f"/tenants/{tenant['tenant_id']}/offboard", json={"confirm": "someone_else"}
    )

    assert response.status_code == 422
    assert response.get_json()["field"] == "confirm"
    assert platform.tenant_call("quota", "GET", "/", tenant["api_key"]).status_code == 200


def test_an_offboarded_tenant_id_cannot_be_onboarded_again(platform: Platform) -> None:
    tenant = platform.onboarded()
    tenant_id = tenant["tenant_id"]
    platform.admin(
        "POST", f"/tenants/{tenant_id}/offboard", json={"retain_days": 0, "confirm": tenant_id}
    )

    response = platform.onboard(onboarding_payload(tenant_id))

    assert response.status_code == 409
    assert "offboarded" in response.get_json()["detail"]


def test_offboarding_crypto_shreds_stored_credentials(platform: Platform) -> None:
    tenant = platform.onboarded()
    tenant_id = tenant["tenant_id"]
    created = platform.tenant_call(
        "credentials", "POST", "/", tenant["api_key"], json=create_body("OPENAI")
    )
    credential_id = created.get_json()["credential_id"]
    assert decrypt_credential(platform.deps, tenant_id, credential_id)["api_key"]

    report = platform.admin(
        "POST", f"/tenants/{tenant_id}/offboard", json={"retain_days": 0, "confirm": tenant_id}
    ).get_json()

    assert report["credentials_shredded"] == 1
    wh = platform.deps.warehouse
    [row] = wh.query(
        f"SELECT status, ciphertext FROM {wh.central('tenant_cloud_credentials')} "
        "WHERE credential_id = @c",
        {"c": credential_id},
    )
    assert row == {"status": "SHREDDED", "ciphertext": None}
    with pytest.raises(CredentialUnavailable):
        decrypt_credential(platform.deps, tenant_id, credential_id)

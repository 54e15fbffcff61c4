"""GcpKmsCrypto through the real Cloud KMS client, against an in-process fake KMS over gRPC."""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.api_core import exceptions as api_errors

from shared.vault.crypto import (
    DecryptionError,
    GcpKmsCrypto,
    KmsAead,
    TenantKeyShredded,
    credential_aad,
)
from tests.fakes.kms import FakeKms

TENANT = "acme_co"
OTHER_TENANT = "globex"
CREDENTIAL = "0b6f3a52-0a51-4b8e-9d7c-3c1e1b7e9a11"
OTHER_CREDENTIAL = "7d1c2e55-5f0e-4d3a-8a7e-2b9f6c4d8e22"
SECRET = b'{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----MIIEv"}'
AAD = credential_aad(TENANT, CREDENTIAL)


@pytest.fixture
def kms() -> Iterator[FakeKms]:
    fake = FakeKms()
    yield fake
    fake.stop()


@pytest.fixture
def crypto(kms: FakeKms) -> GcpKmsCrypto:
    return GcpKmsCrypto(kms.client(), f"projects/p/locations/us/keyRings/r-{uuid.uuid4().hex[:8]}")


def kms_version_of(ciphertext: bytes) -> int:
    # Envelope layout: 4-byte DEK length, then the DEK as KMS wrapped it; the
    # fake KMS starts its ciphertexts with the 4-byte version number.
    return int(struct.unpack(">I", ciphertext[4:8])[0])


def test_ensuring_a_key_twice_creates_one_key_with_rotation_and_a_short_destroy_delay(
    kms: FakeKms, crypto: GcpKmsCrypto
) -> None:
    first = crypto.ensure_tenant_key(TENANT)

    second = crypto.ensure_tenant_key(TENANT)

    assert first == second == f"{crypto.key_ring}/cryptoKeys/tenant-acme-co"
    key = kms.keys[first].resource
    assert key.rotation_period == dt.timedelta(days=90)
    assert key.destroy_scheduled_duration == dt.timedelta(hours=24)
    assert kms.version_states(first) == {1: "ENABLED"}


def test_a_secret_round_trips(crypto: GcpKmsCrypto) -> None:
    crypto.ensure_tenant_key(TENANT)

    ciphertext = crypto.encrypt(TENANT, SECRET, AAD)

    assert SECRET not in ciphertext
    assert crypto.decrypt(TENANT, ciphertext, AAD) == SECRET


def test_the_first_encrypt_creates_the_tenant_key(kms: FakeKms, crypto: GcpKmsCrypto) -> None:
    ciphertext = crypto.encrypt(TENANT, SECRET, AAD)

    assert crypto.key_reference(TENANT) in kms.keys
    assert crypto.decrypt(TENANT, ciphertext, AAD) == SECRET


def test_each_tenant_has_its_own_crypto_key(kms: FakeKms, crypto: GcpKmsCrypto) -> None:
    crypto.ensure_tenant_key(TENANT)
    crypto.ensure_tenant_key(OTHER_TENANT)

    assert crypto.key_reference(TENANT) != crypto.key_reference(OTHER_TENANT)
    assert {crypto.key_reference(TENANT), crypto.key_reference(OTHER_TENANT)} <= set(kms.keys)


def test_a_ciphertext_does_not_decrypt_as_another_tenant(crypto: GcpKmsCrypto) -> None:
    ciphertext = crypto.encrypt(TENANT, SECRET, AAD)
    crypto.ensure_tenant_key(OTHER_TENANT)

    with pytest.raises(DecryptionError) as raised:
        crypto.decrypt(OTHER_TENANT, ciphertext, AAD)

    assert not isinstance(raised.value, TenantKeyShredded)


@pytest.mark.parametrize(
    "wrong_aad",
    [credential_aad(TENANT, OTHER_CREDENTIAL), credential_aad(OTHER_TENANT, CREDENTIAL)],
    ids=["other-credential", "other-tenant"],
)
def test_a_ciphertext_does_not_decrypt_under_other_associated_data(
    crypto: GcpKmsCrypto, wrong_aad: bytes
) -> None:
    ciphertext = crypto.encrypt(TENANT, SECRET, AAD)

    with pytest.raises(DecryptionError):
        crypto.decrypt(TENANT, ciphertext, wrong_aad)


@pytest.mark.parametrize("position", [6, 20, -1], ids=["kms-version", "wrapped-dek", "tag"])
def test_a_tampered_ciphertext_is_refused(crypto: GcpKmsCrypto, position: int) -> None:
    tampered = bytearray(crypto.encrypt(TENANT, SECRET, AAD))
    tampered[position] ^= 0x01

    with pytest.raises(DecryptionError):
        crypto.decrypt(TENANT, bytes(tampered), AAD)


def test_rotation_keeps_old_ciphertexts_and_encrypts_new_ones_under_the_new_version(
    crypto: GcpKmsCrypto,
) -> None:
    old = crypto.encrypt(TENANT, b"before rotation", AAD)

    new_version = crypto.rotate_tenant_key(TENANT)
    new = crypto.encrypt(TENANT, b"after rotation", AAD)

    assert new_version == f"{crypto.key_reference(TENANT)}/cryptoKeyVersions/2"
    assert (kms_version_of(old), kms_version_of(new)) == (1, 2)
    assert crypto.decrypt(TENANT, old, AAD) == b"before rotation"
    assert crypto.decrypt(TENANT, new, AAD) == b"after rotation"


def test_shredding_destroys_every_version_and_nothing_decrypts_afterwards(
    kms: FakeKms, crypto: GcpKmsCrypto
) -> None:
    old = crypto.encrypt(TENANT, SECRET, AAD)
    crypto.rotate_tenant_key(TENANT)
    new = crypto.encrypt(TENANT, SECRET, AAD)

    report = crypto.shred_tenant(TENANT)

    assert report.versions_destroyed == 2
    assert report.already_shredded is False
    assert report.key_reference == crypto.key_reference(TENANT)
    assert set(kms.version_states(report.key_reference).values()) == {"DESTROY_SCHEDULED"}
    for ciphertext in (old, new):
        with pytest.raises(TenantKeyShredded):
            crypto.decrypt(TENANT, ciphertext, AAD)


def test_after_a_shred_the_tenant_gets_no_new_key_version(
    kms: FakeKms, crypto: GcpKmsCrypto
) -> None:
    crypto.ensure_tenant_key(TENANT)

    crypto.shred_tenant(TENANT)

    with pytest.raises(TenantKeyShredded):
        crypto.encrypt(TENANT, SECRET, AAD)
    with pytest.raises(TenantKeyShredded):
        crypto.ensure_tenant_key(TENANT)
    with pytest.raises(TenantKeyShredded):
        crypto.rotate_tenant_key(TENANT)
    key = kms.keys[crypto.key_reference(TENANT)].resource
    # Scheduled rotation would otherwise mint a fresh, usable primary version.
    assert "rotation_period" not in key
    assert "next_rotation_time" not in key
    assert set(kms.version_states(crypto.key_reference(TENANT)).values()) == {"DESTROY_SCHEDULED"}


def test_a_second_shred_reports_it_was_already_done(kms: FakeKms, crypto: GcpKmsCrypto) -> None:
    crypto.ensure_tenant_key(TENANT)
    crypto.shred_tenant(TENANT)
    destroys_before = kms.calls["DestroyCryptoKeyVersion"]

    report = crypto.shred_tenant(TENANT)

    assert report.already_shredded is True
    assert report.versions_destroyed == 0
    assert kms.calls["DestroyCryptoKeyVersion"] == destroys_before


def test_shredding_a_tenant_that_never_had_a_key_still_blocks_new_keys(
    crypto: GcpKmsCrypto,
) -> None:
    report = crypto.shred_tenant(TENANT)

    assert (report.versions_destroyed, report.already_shredded) == (0, False)
    with pytest.raises(TenantKeyShredded):
        crypto.encrypt(TENANT, SECRET, AAD)


def test_shredding_one_tenant_leaves_another_tenant_readable(crypto: GcpKmsCrypto) -> None:
    other_aad = credential_aad(OTHER_TENANT, CREDENTIAL)
    kept = crypto.encrypt(OTHER_TENANT, SECRET, other_aad)
    crypto.ensure_tenant_key(TENANT)

    crypto.shred_tenant(TENANT)

    assert crypto.decrypt(OTHER_TENANT, kept, other_aad) == SECRET


def test_a_transient_kms_outage_is_retried(kms: FakeKms, crypto: GcpKmsCrypto) -> None:
    crypto.ensure_tenant_key(TENANT)
    kms.fail_next("Encrypt", grpc.StatusCode.UNAVAILABLE, times=2)

    ciphertext = crypto.encrypt(TENANT, SECRET, AAD)

    assert kms.calls["Encrypt"] == 3
    assert crypto.decrypt(TENANT, ciphertext, AAD) == SECRET


def test_a_permission_error_from_kms_is_not_mistaken_for_a_bad_ciphertext(
    kms: FakeKms, crypto: GcpKmsCrypto
) -> None:
    ciphertext = crypto.encrypt(TENANT, SECRET, AAD)
    kms.fail_next("Decrypt", grpc.StatusCode.PERMISSION_DENIED)

    with pytest.raises(api_errors.PermissionDenied):
        crypto.decrypt(TENANT, ciphertext, AAD)


def test_the_kms_aead_sends_associated_data_to_kms(kms: FakeKms, crypto: GcpKmsCrypto) -> None:
    # Tink's envelope passes empty associated data to the KEK; this checks the
    # adapter itself forwards it, for any other use of KmsAead.
    remote = KmsAead(crypto.client, crypto.ensure_tenant_key(TENANT))
    ciphertext = remote.encrypt(b"data key", b"context-a")

    with pytest.raises(api_errors.InvalidArgument):
        remote.decrypt(ciphertext, b"context-b")
    assert remote.decrypt(ciphertext, b"context-a") == b"data key"


def test_a_ciphertext_corrupted_on_the_way_back_from_kms_is_refused(
    kms: FakeKms, crypto: GcpKmsCrypto
) -> None:
    crypto.ensure_tenant_key(TENANT)
    kms.corrupt_next_ciphertext = True

    with pytest.raises(api_errors.DataLoss, match="CRC32C"):
        crypto.encrypt(TENANT, SECRET, AAD)

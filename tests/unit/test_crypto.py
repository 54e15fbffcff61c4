"""The crypto port with local Tink keysets: binding, rotation, shredding and key files."""

from __future__ import annotations

import stat
import struct
import threading
from pathlib import Path

import google.auth
import pytest
from google.auth.credentials import AnonymousCredentials

from shared.vault.crypto import (
    DecryptionError,
    GcpKmsCrypto,
    LocalKeysetCrypto,
    TenantKeyShredded,
    credential_aad,
    crypto_from,
    purpose_aad,
)
from tests.conftest import make_settings

TENANT = "acme"
OTHER_TENANT = "globex"
CREDENTIAL = "0b6f3a52-0a51-4b8e-9d7c-3c1e1b7e9a11"
OTHER_CREDENTIAL = "7d1c2e55-5f0e-4d3a-8a7e-2b9f6c4d8e22"
SECRET = b'{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----MIIEv"}'


@pytest.fixture
def crypto(tmp_path: Path) -> LocalKeysetCrypto:
    return LocalKeysetCrypto(tmp_path / "kms")


def wrapping_key_id(ciphertext: bytes) -> int:
    # Envelope layout: 4-byte DEK length, then the DEK wrapped by the tenant
    # keyset, which starts with Tink's prefix: 0x01 and the 4-byte key id.
    assert ciphertext[4] == 1
    return int(struct.unpack(">I", ciphertext[5:9])[0])


def test_a_secret_round_trips(crypto: LocalKeysetCrypto) -> None:
    aad = credential_aad(TENANT, CREDENTIAL)

    ciphertext = crypto.encrypt(TENANT, SECRET, aad)

    assert SECRET not in ciphertext
    assert crypto.decrypt(TENANT, ciphertext, aad) == SECRET


def test_a_ciphertext_does_not_decrypt_as_another_tenant(crypto: LocalKeysetCrypto) -> None:
    ciphertext = crypto.encrypt(TENANT, SECRET, credential_aad(TENANT, CREDENTIAL))
    crypto.ensure_tenant_key(OTHER_TENANT)

    with pytest.raises(DecryptionError):
        crypto.decrypt(OTHER_TENANT, ciphertext, credential_aad(TENANT, CREDENTIAL))


def test_a_ciphertext_does_not_decrypt_under_another_tenants_associated_data(
    crypto: LocalKeysetCrypto,
) -> None:
    ciphertext = crypto.encrypt(TENANT, SECRET, credential_aad(TENANT, CREDENTIAL))

    with pytest.raises(DecryptionError):
        crypto.decrypt(TENANT, ciphertext, credential_aad(OTHER_TENANT, CREDENTIAL))


def test_a_ciphertext_does_not_decrypt_as_another_credential(crypto: LocalKeysetCrypto) -> None:
    ciphertext = crypto.encrypt(TENANT, SECRET, credential_aad(TENANT, CREDENTIAL))

    with pytest.raises(DecryptionError):
        crypto.decrypt(TENANT, ciphertext, credential_aad(TENANT, OTHER_CREDENTIAL))


@pytest.mark.parametrize("position", [2, 6, 20, -1], ids=["dek-length", "key-id", "dek", "tag"])
def test_a_tampered_ciphertext_is_refused(crypto: LocalKeysetCrypto, position: int) -> None:
    aad = credential_aad(TENANT, CREDENTIAL)
    tampered = bytearray(crypto.encrypt(TENANT, SECRET, aad))
    tampered[position] ^= 0x01

    with pytest.raises(DecryptionError):
        crypto.decrypt(TENANT, bytes(tampered), aad)


def test_rotation_keeps_old_ciphertexts_and_encrypts_new_ones_under_the_new_key(
    crypto: LocalKeysetCrypto,
) -> None:
    aad = credential_aad(TENANT, CREDENTIAL)
    old = crypto.encrypt(TENANT, b"before rotation", aad)

    reference = crypto.rotate_tenant_key(TENANT)
    new = crypto.encrypt(TENANT, b"after rotation", aad)

    new_key_id = int(reference.rsplit("#", 1)[1])
    assert wrapping_key_id(new) == new_key_id != wrapping_key_id(old)
    assert crypto.decrypt(TENANT, old, aad) == b"before rotation"
    assert crypto.decrypt(TENANT, new, aad) == b"after rotation"


def test_shredding_makes_every_ciphertext_of_the_tenant_undecryptable(
    crypto: LocalKeysetCrypto,
) -> None:
    aad = credential_aad(TENANT, CREDENTIAL)
    old = crypto.encrypt(TENANT, SECRET, aad)
    crypto.rotate_tenant_key(TENANT)
    new = crypto.encrypt(TENANT, SECRET, aad)

    report = crypto.shred_tenant(TENANT)

    assert report.versions_destroyed == 2
    assert report.already_shredded is False
    for ciphertext in (old, new):
        with pytest.raises(TenantKeyShredded):
            crypto.decrypt(TENANT, ciphertext, aad)


def test_after_a_shred_the_tenant_gets_no_new_key(crypto: LocalKeysetCrypto) -> None:
    crypto.encrypt(TENANT, SECRET, credential_aad(TENANT, CREDENTIAL))

    crypto.shred_tenant(TENANT)

    with pytest.raises(TenantKeyShredded):
        crypto.encrypt(TENANT, SECRET, credential_aad(TENANT, CREDENTIAL))
    with pytest.raises(TenantKeyShredded):
        crypto.ensure_tenant_key(TENANT)
    with pytest.raises(TenantKeyShredded):
        crypto.rotate_tenant_key(TENANT)
    assert not (crypto.keys_dir / f"{TENANT}.json").exists()


def test_a_second_shred_reports_it_was_already_done(crypto: LocalKeysetCrypto) -> None:
    crypto.ensure_tenant_key(TENANT)
    crypto.shred_tenant(TENANT)

    report = crypto.shred_tenant(TENANT)

    assert report.already_shredded is True
    assert report.versions_destroyed == 0


def test_shredding_a_tenant_that_never_had_a_key_still_blocks_new_keys(
    crypto: LocalKeysetCrypto,
) -> None:
    report = crypto.shred_tenant(TENANT)

    assert report.versions_destroyed == 0
    with pytest.raises(TenantKeyShredded):
        crypto.encrypt(TENANT, SECRET, credential_aad(TENANT, CREDENTIAL))


def test_decrypting_for_a_tenant_without_a_key_fails_and_creates_no_key(
    crypto: LocalKeysetCrypto,
) -> None:
    with pytest.raises(DecryptionError) as raised:
        crypto.decrypt(TENANT, b"\x00" * 64, credential_aad(TENANT, CREDENTIAL))

    assert not isinstance(raised.value, TenantKeyShredded)
    assert not (crypto.keys_dir / f"{TENANT}.json").exists()


def test_ensuring_a_key_twice_keeps_the_first_key(crypto: LocalKeysetCrypto) -> None:
    aad = credential_aad(TENANT, CREDENTIAL)
    first_reference = crypto.ensure_tenant_key(TENANT)
    ciphertext = crypto.encrypt(TENANT, SECRET, aad)

    second_reference = crypto.ensure_tenant_key(TENANT)

    assert second_reference == first_reference == crypto.key_reference(TENANT)
    assert crypto.decrypt(TENANT, ciphertext, aad) == SECRET


def test_two_processes_racing_to_create_a_key_end_up_with_the_same_key(tmp_path: Path) -> None:
    # Two instances on one directory stand for two processes: they share nothing in memory.
    instances = [LocalKeysetCrypto(tmp_path / "kms") for _ in range(8)]
    start = threading.Barrier(len(instances))
    ciphertexts: dict[int, bytes] = {}

    def encrypt_first_secret(index: int) -> None:
        start.wait()
        ciphertexts[index] = instances[index].encrypt(TENANT, b"secret %d" % index, b"aad")

    threads = [threading.Thread(target=encrypt_first_secret, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for index, ciphertext in ciphertexts.items():
        reader = instances[(index + 1) % len(instances)]
        assert reader.decrypt(TENANT, ciphertext, b"aad") == b"secret %d" % index


def test_another_process_sees_a_rotation_and_a_shred_at_once(tmp_path: Path) -> None:
    writer = LocalKeysetCrypto(tmp_path / "kms")
    reader = LocalKeysetCrypto(tmp_path / "kms")
    aad = credential_aad(TENANT, CREDENTIAL)
    reader.ensure_tenant_key(TENANT)

    writer.rotate_tenant_key(TENANT)
    after_rotation = writer.encrypt(TENANT, SECRET, aad)
    decrypted_by_reader = reader.decrypt(TENANT, after_rotation, aad)
    writer.shred_tenant(TENANT)

    assert decrypted_by_reader == SECRET
    with pytest.raises(TenantKeyShredded):
        reader.decrypt(TENANT, after_rotation, aad)


def test_keyset_files_are_private_to_their_owner(crypto: LocalKeysetCrypto) -> None:
    crypto.ensure_tenant_key(TENANT)
    crypto.rotate_tenant_key(TENANT)  # rewrites the file

    keyset_mode = stat.S_IMODE((crypto.keys_dir / f"{TENANT}.json").stat().st_mode)
    dir_mode = stat.S_IMODE(crypto.keys_dir.stat().st_mode)

    assert keyset_mode == 0o600
    assert dir_mode & 0o077 == 0


def test_plaintext_never_reaches_the_key_directory(crypto: LocalKeysetCrypto) -> None:
    marker = b"plaintext-marker-5f1d0c"
    crypto.encrypt(TENANT, marker, credential_aad(TENANT, CREDENTIAL))
    crypto.rotate_tenant_key(TENANT)
    crypto.encrypt(TENANT, marker, credential_aad(TENANT, CREDENTIAL))

    files = [path for path in crypto.keys_dir.rglob("*") if path.is_file()]

    assert files
    assert all(marker not in path.read_bytes() for path in files)


@pytest.mark.parametrize("tenant_id", ["../etc", "ACME", "ab", "a/b", "acme.json"])
def test_a_malformed_tenant_id_is_refused_before_touching_files(
    crypto: LocalKeysetCrypto, tenant_id: str
) -> None:
    with pytest.raises(ValueError, match="tenant id"):
        crypto.encrypt(tenant_id, SECRET, b"")

    assert not crypto.keys_dir.exists() or not any(crypto.keys_dir.iterdir())


def test_associated_data_cannot_be_confused_by_moving_a_separator() -> None:
    assert purpose_aad("api_key", "ab", "c") != purpose_aad("api_key", "a", "bc")
    assert purpose_aad("a", "b\x00c", "d") != purpose_aad("a", "b", "c\x00d")
    assert credential_aad(TENANT, CREDENTIAL) != purpose_aad("api_key", TENANT, CREDENTIAL)
    assert credential_aad(TENANT, CREDENTIAL) == purpose_aad("credential", TENANT, CREDENTIAL)


def test_without_a_key_ring_the_settings_choose_local_keysets(tmp_path: Path) -> None:
    crypto = crypto_from(make_settings(tmp_path))

    assert isinstance(crypto, LocalKeysetCrypto)
    assert crypto.keys_dir == tmp_path / "kms"


def test_with_a_key_ring_the_settings_choose_cloud_kms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client looks for credentials when built; it makes no call until used.
    monkeypatch.setattr(google.auth, "default", lambda **_: (AnonymousCredentials(), None))
    key_ring = "projects/p/locations/us/keyRings/convergence"

    crypto = crypto_from(make_settings(tmp_path, kms_key_ring=key_ring))

    assert isinstance(crypto, GcpKmsCrypto)
    assert crypto.key_reference("acme_co") == f"{key_ring}/cryptoKeys/tenant-acme-co"

"""The crypto port: per-tenant envelope encryption (Tink), crypto-shredded on offboarding."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import google_crc32c
import tink
from google.api_core import exceptions as api_errors
from google.api_core.retry import Retry, if_transient_error
from tink import aead, cleartext_keyset_handle, json_proto_keyset_format, secret_key_access

from shared.platform.identifiers import TENANT_ID_RE

if TYPE_CHECKING:
    from google.cloud import kms_v1

    from shared.platform.settings import Settings

aead.register()

# Each ciphertext gets a fresh AES-256-GCM data key (DEK); only the DEK goes to the KEK.
_DEK_TEMPLATE = aead.aead_key_templates.AES256_GCM
_LOCAL_KEK_TEMPLATE = aead.aead_key_templates.AES256_GCM


class DecryptionError(Exception):
    """The ciphertext does not decrypt: wrong tenant or associated data, tampered, or no key."""


class TenantKeyShredded(DecryptionError):
    """The tenant's key was destroyed on offboarding; encrypt, rotate and ensure refuse too."""


@dataclass(frozen=True)
class ShredReport:
    tenant_id: str
    key_reference: str
    versions_destroyed: int
    already_shredded: bool


class Crypto(Protocol):
    """Envelope encryption under one key-encryption key (KEK) per tenant."""

    def ensure_tenant_key(self, tenant_id: str) -> str:
        """Create the tenant's KEK if missing (idempotent); returns its non-secret reference."""
        ...

    def encrypt(self, tenant_id: str, plaintext: bytes, associated_data: bytes) -> bytes: ...

    def decrypt(self, tenant_id: str, ciphertext: bytes, associated_data: bytes) -> bytes:
        """The plaintext, or DecryptionError (TenantKeyShredded once the tenant is shredded)."""
        ...

    def rotate_tenant_key(self, tenant_id: str) -> str:
        """Make a new KEK version primary; returns its reference. Old ciphertexts still decrypt."""
        ...

    def shred_tenant(self, tenant_id: str) -> ShredReport:
        """Destroy every KEK version so nothing of the tenant decrypts again; idempotent."""
        ...

    def key_reference(self, tenant_id: str) -> str: ...


def purpose_aad(purpose: str, tenant_id: str, object_id: str) -> bytes:
    """Associated data binding a ciphertext to what it is; length-prefixed, so never ambiguous."""
    fields = (purpose.encode(), tenant_id.encode(), object_id.encode())
    return b"convergence/aad/v1" + b"".join(struct.pack(">I", len(f)) + f for f in fields)


def credential_aad(tenant_id: str, credential_id: str) -> bytes:
    """Associated data for a stored cloud credential: it decrypts only as that tenant's that id."""
    return purpose_aad("credential", tenant_id, credential_id)


def _check_tenant(tenant_id: str) -> str:
    # Tenant ids become file names and KMS key ids: refuse anything else early.
    if not TENANT_ID_RE.match(tenant_id):
        raise ValueError("tenant id must match ^[a-z0-9_]{3,50}$")
    return tenant_id


def _envelope(kek: Any) -> Any:
    return aead.KmsEnvelopeAead(_DEK_TEMPLATE, kek)


# ---------------------------------------------------------------- local keysets


class LocalKeysetCrypto:
    """Local stack and tests: a tenant's KEK is a cleartext Tink keyset `<keys_dir>/<tenant>.json`.

    Files are read on every call rather than cached, so a rotation or shred by
    another process (gateway, job runner) takes effect at once. Every change
    holds an exclusive flock on `<keys_dir>/.lock`: it serialises threads and
    processes alike, so two processes never create different keys for one
    tenant and concurrent rotations never drop a key that already encrypted data.
    """

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir

    def key_reference(self, tenant_id: str) -> str:
        return f"local-keyset:{self._keyset_path(tenant_id)}"

    def ensure_tenant_key(self, tenant_id: str) -> str:
        self._refuse_if_shredded(tenant_id)
        path = self._keyset_path(tenant_id)
        if not path.exists():
            with self._exclusive():
                # Another process may have created or shredded it while we waited.
                self._refuse_if_shredded(tenant_id)
                if not path.exists():
                    _write_private(path, _serialize(tink.new_keyset_handle(_LOCAL_KEK_TEMPLATE)))
        return self.key_reference(tenant_id)

    def encrypt(self, tenant_id: str, plaintext: bytes, associated_data: bytes) -> bytes:
        self.ensure_tenant_key(tenant_id)
        kek = cleartext_keyset_handle.from_keyset(self._read_keyset(tenant_id))
        return bytes(_envelope(kek.primitive(aead.Aead)).encrypt(plaintext, associated_data))

    def decrypt(self, tenant_id: str, ciphertext: bytes, associated_data: bytes) -> bytes:
        kek = cleartext_keyset_handle.from_keyset(self._read_keyset(tenant_id))
        try:
            return bytes(_envelope(kek.primitive(aead.Aead)).decrypt(ciphertext, associated_data))
        except tink.TinkError as exc:
            raise DecryptionError(f"ciphertext does not decrypt for tenant {tenant_id}") from exc

    def rotate_tenant_key(self, tenant_id: str) -> str:
        self.ensure_tenant_key(tenant_id)
        with self._exclusive():
            keyset = self._read_keyset(tenant_id)
            used_ids = {key.key_id for key in keyset.key}
            new_key = _new_keyset_proto().key[0]
            while new_key.key_id in used_ids:  # 32-bit random ids: a clash is rare, not impossible
                new_key = _new_keyset_proto().key[0]
            # Tink ciphertexts name their key id, so old ones still find their key.
            keyset.key.append(new_key)
            keyset.primary_key_id = new_key.key_id
            path = self._keyset_path(tenant_id)
            _write_private(path, _serialize(cleartext_keyset_handle.from_keyset(keyset)))
        return f"{self.key_reference(tenant_id)}#{new_key.key_id}"

    def shred_tenant(self, tenant_id: str) -> ShredReport:
        path = self._keyset_path(tenant_id)
        tombstone = path.with_suffix(".shredded")
        with self._exclusive():
            already_shredded = tombstone.exists() and not path.exists()
            # Tombstone first: from here on encrypt refuses instead of minting a new key.
            shredded_at = dt.datetime.now(dt.UTC).isoformat()
            _write_private(tombstone, json.dumps({"shredded_at": shredded_at}))
            destroyed = 0
            if path.exists():
                destroyed = len(self._read_keyset(tenant_id).key)
                _overwrite_and_unlink(path)
        return ShredReport(tenant_id, self.key_reference(tenant_id), destroyed, already_shredded)

    def _keyset_path(self, tenant_id: str) -> Path:
        return self.keys_dir / f"{_check_tenant(tenant_id)}.json"

    def _refuse_if_shredded(self, tenant_id: str) -> None:
        if self._keyset_path(tenant_id).with_suffix(".shredded").exists():
            raise TenantKeyShredded(f"the key of tenant {tenant_id} was shredded")

    def _read_keyset(self, tenant_id: str) -> Any:
        try:
            text = self._keyset_path(tenant_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            self._refuse_if_shredded(tenant_id)
            raise DecryptionError(f"tenant {tenant_id} has no key") from None
        return tink.JsonKeysetReader(text).read()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.keys_dir / ".lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield  # closing the file releases the lock


def _serialize(handle: Any) -> str:
    return str(json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))


def _new_keyset_proto() -> Any:
    return tink.JsonKeysetReader(_serialize(tink.new_keyset_handle(_LOCAL_KEK_TEMPLATE))).read()


def _write_private(path: Path, text: str) -> None:
    """Replace `path` atomically by a 0600 file: readers see old or new content, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp_file:
            tmp_file.write(text)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _overwrite_and_unlink(path: Path) -> None:
    # Best effort only (SSDs and copy-on-write file systems may keep old blocks):
    # this is the local stand-in; production shreds by destroying KMS key versions.
    with open(path, "r+b") as key_file:
        key_file.write(os.urandom(max(path.stat().st_size, 1)))
        key_file.flush()
        os.fsync(key_file.fileno())
    path.unlink()


# ---------------------------------------------------------------- Cloud KMS

_KEY_RING_RE = re.compile(
    r"^projects/[^/]+/locations/[a-zA-Z0-9_-]{1,63}/keyRings/[a-zA-Z0-9_-]{1,63}$"
)
_SHREDDED_LABEL = "convergence-shredded"
_ROTATION_PERIOD = dt.timedelta(days=90)
# The shortest KMS allows: the window in which a mistaken shred can still be undone.
_DESTROY_SCHEDULED_DURATION = dt.timedelta(hours=24)
_KMS_RETRY = Retry(predicate=if_transient_error, initial=0.1, maximum=2.0, timeout=30.0)
_KMS_TIMEOUT = 10.0  # seconds per attempt


def _crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


def _corrupted(call: str) -> api_errors.DataLoss:
    return api_errors.DataLoss(f"Cloud KMS {call} response failed its CRC32C check")  # type: ignore[no-untyped-call]


class KmsAead(aead.Aead):  # type: ignore[misc]
    """Tink's remote-AEAD interface over one Cloud KMS CryptoKey, through our injected client.

    Checks the CRC32C fields KMS returns, as Google recommends: a ciphertext
    corrupted in transit would otherwise be stored and only fail to decrypt,
    much later; a mismatch raises DataLoss, worth a retry. KMS errors
    (google.api_core exceptions) pass through unchanged so callers can tell
    "KMS unavailable" from "this ciphertext is bad".
    """

    def __init__(self, client: kms_v1.KeyManagementServiceClient, key_name: str) -> None:
        self.client = client
        self.key_name = key_name

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        response = self.client.encrypt(
            request={
                "name": self.key_name,
                "plaintext": plaintext,
                "additional_authenticated_data": associated_data,
                "plaintext_crc32c": _crc32c(plaintext),
                "additional_authenticated_data_crc32c": _crc32c(associated_data),
            },
            retry=_KMS_RETRY,
            timeout=_KMS_TIMEOUT,
        )
        if (
            not response.verified_plaintext_crc32c
            or not response.verified_additional_authenticated_data_crc32c
            or response.ciphertext_crc32c != _crc32c(response.ciphertext)
        ):
            raise _corrupted("encrypt")
        return bytes(response.ciphertext)

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        response = self.client.decrypt(
            request={
                "name": self.key_name,
                "ciphertext": ciphertext,
                "additional_authenticated_data": associated_data,
                "ciphertext_crc32c": _crc32c(ciphertext),
                "additional_authenticated_data_crc32c": _crc32c(associated_data),
            },
            retry=_KMS_RETRY,
            timeout=_KMS_TIMEOUT,
        )
        if response.plaintext_crc32c != _crc32c(response.plaintext):
            raise _corrupted("decrypt")
        return bytes(response.plaintext)


class GcpKmsCrypto:
    """Production: one Cloud KMS CryptoKey per tenant, `<key ring>/cryptoKeys/tenant-<id>`.

    A shredded key keeps existing (KMS never deletes keys) with every version
    destroyed and the label `convergence-shredded=true`: that label is how we
    tell "shredded" from "never had a key", like the local tombstone file.
    """

    def __init__(self, kms_client: kms_v1.KeyManagementServiceClient, key_ring: str) -> None:
        if not _KEY_RING_RE.match(key_ring):
            raise ValueError("key ring must look like projects/P/locations/L/keyRings/R")
        self.client = kms_client
        self.key_ring = key_ring

    def key_reference(self, tenant_id: str) -> str:
        # Tenant ids never contain "-", so the mapping stays one-to-one.
        key_id = "tenant-" + _check_tenant(tenant_id).replace("_", "-")
        return f"{self.key_ring}/cryptoKeys/{key_id}"

    def ensure_tenant_key(self, tenant_id: str) -> str:
        name = self.key_reference(tenant_id)
        next_rotation = dt.datetime.now(dt.UTC) + _ROTATION_PERIOD
        try:
            self._create_key(
                name,
                {
                    "rotation_period": {"seconds": int(_ROTATION_PERIOD.total_seconds())},
                    "next_rotation_time": {"seconds": int(next_rotation.timestamp())},
                },
            )
        except api_errors.AlreadyExists:
            if self._is_shredded(name):
                raise TenantKeyShredded(f"the key of tenant {tenant_id} was shredded") from None
        return name

    def encrypt(self, tenant_id: str, plaintext: bytes, associated_data: bytes) -> bytes:
        name = self.key_reference(tenant_id)
        envelope = _envelope(KmsAead(self.client, name))
        try:
            return bytes(envelope.encrypt(plaintext, associated_data))
        except api_errors.NotFound:
            # A tenant's first secret may arrive before anyone called ensure_tenant_key.
            self.ensure_tenant_key(tenant_id)
            return bytes(envelope.encrypt(plaintext, associated_data))
        except api_errors.FailedPrecondition:
            # No enabled primary version: shredded, or disabled by an operator.
            if self._is_shredded(name):
                raise TenantKeyShredded(f"the key of tenant {tenant_id} was shredded") from None
            raise

    def decrypt(self, tenant_id: str, ciphertext: bytes, associated_data: bytes) -> bytes:
        name = self.key_reference(tenant_id)
        try:
            return bytes(_envelope(KmsAead(self.client, name)).decrypt(ciphertext, associated_data))
        except tink.TinkError as exc:
            raise DecryptionError(f"ciphertext does not decrypt for tenant {tenant_id}") from exc
        except (
            api_errors.InvalidArgument,  # not this key's ciphertext, or tampered
            api_errors.NotFound,  # the tenant has no key
            api_errors.FailedPrecondition,  # its key version is disabled or destroyed
        ) as exc:
            if self._is_shredded(name):
                raise TenantKeyShredded(f"the key of tenant {tenant_id} was shredded") from exc
            raise DecryptionError(f"ciphertext does not decrypt for tenant {tenant_id}") from exc

    def rotate_tenant_key(self, tenant_id: str) -> str:
        name = self.ensure_tenant_key(tenant_id)
        version = self.client.create_crypto_key_version(
            request={"parent": name, "crypto_key_version": {}},
            retry=_KMS_RETRY,
            timeout=_KMS_TIMEOUT,
        )
        # KMS ciphertexts name their version, so old ones keep decrypting.
        self.client.update_crypto_key_primary_version(
            request={"name": name, "crypto_key_version_id": version.name.rsplit("/", 1)[1]},
            retry=_KMS_RETRY,
            timeout=_KMS_TIMEOUT,
        )
        return str(version.name)

    def shred_tenant(self, tenant_id: str) -> ShredReport:
        name = self.key_reference(tenant_id)
        was_marked = self._mark_shredded(name)
        destroyed = 0
        versions = self.client.list_crypto_key_versions(
            request={"parent": name}, retry=_KMS_RETRY, timeout=_KMS_TIMEOUT
        )
        for version in versions:
            if version.state.name not in ("ENABLED", "DISABLED"):
                continue
            try:
                self.client.destroy_crypto_key_version(
                    name=version.name, retry=_KMS_RETRY, timeout=_KMS_TIMEOUT
                )
            except api_errors.FailedPrecondition:
                continue  # destroyed by a concurrent shred
            destroyed += 1
        return ShredReport(tenant_id, name, destroyed, was_marked and destroyed == 0)

    def _create_key(
        self, name: str, fields: dict[str, Any], skip_initial_version: bool = False
    ) -> None:
        key_ring, _, key_id = name.rpartition("/cryptoKeys/")
        crypto_key = {
            "purpose": "ENCRYPT_DECRYPT",
            "version_template": {"algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"},
            "destroy_scheduled_duration": {
                "seconds": int(_DESTROY_SCHEDULED_DURATION.total_seconds())
            },
            **fields,
        }
        self.client.create_crypto_key(
            request={
                "parent": key_ring,
                "crypto_key_id": key_id,
                "crypto_key": crypto_key,
                "skip_initial_version_creation": skip_initial_version,
            },
            retry=_KMS_RETRY,
            timeout=_KMS_TIMEOUT,
        )

    def _is_shredded(self, name: str) -> bool:
        try:
            key = self.client.get_crypto_key(name=name, retry=_KMS_RETRY, timeout=_KMS_TIMEOUT)
        except api_errors.NotFound:
            return False
        return key.labels.get(_SHREDDED_LABEL) == "true"

    def _mark_shredded(self, name: str) -> bool:
        """Label the key shredded and stop its scheduled rotation; True if it already was."""
        try:
            key = self.client.get_crypto_key(name=name, retry=_KMS_RETRY, timeout=_KMS_TIMEOUT)
        except api_errors.NotFound:
            # Never had a key: a version-less tombstone key makes later ensure/encrypt refuse too.
            try:
                self._create_key(name, {"labels": {_SHREDDED_LABEL: "true"}}, True)
            except api_errors.AlreadyExists:
                return self._mark_shredded(name)  # created meanwhile: label it like any other
            return False
        if key.labels.get(_SHREDDED_LABEL) == "true":
            return True
        # Without a rotation schedule KMS will not mint a fresh primary after the shred.
        self.client.update_crypto_key(
            request={
                "crypto_key": {"name": name, "labels": {**key.labels, _SHREDDED_LABEL: "true"}},
                "update_mask": {"paths": ["labels", "rotation_period", "next_rotation_time"]},
            },
            retry=_KMS_RETRY,
            timeout=_KMS_TIMEOUT,
        )
        return False


def crypto_from(settings: Settings) -> Crypto:
    """The crypto adapter the settings ask for: Cloud KMS when a key ring is set."""
    if settings.kms_key_ring:
        from google.cloud import kms_v1

        return GcpKmsCrypto(kms_v1.KeyManagementServiceClient(), settings.kms_key_ring)
    return LocalKeysetCrypto(settings.local_data_dir / "kms")

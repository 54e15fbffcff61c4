"""A fake Cloud KMS (gRPC KeyManagementService) that really encrypts, for GcpKmsCrypto tests."""

from __future__ import annotations

import collections
import os
import re
import struct
import threading
from dataclasses import dataclass, field
from typing import Any, NoReturn

import google_crc32c
import grpc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.cloud import kms_v1
from google.cloud.kms_v1.services.key_management_service.transports import (
    KeyManagementServiceGrpcTransport,
)

from tests.fakes import GrpcFake

State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
_KEY_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
_MIN_DESTROY_SCHEDULED_SECONDS = 24 * 3600


def _crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, detail: str) -> NoReturn:
    context.abort(code, detail)
    raise AssertionError("context.abort returns only by raising")


@dataclass
class _Version:
    number: int
    secret: bytes = field(default_factory=lambda: AESGCM.generate_key(bit_length=256))
    state: State = State.ENABLED


@dataclass
class _Key:
    resource: kms_v1.CryptoKey
    versions: dict[int, _Version] = field(default_factory=dict)
    primary: int | None = None


class FakeKms:
    """Enough of Cloud KMS for our adapter, with the real service's status codes.

    Ciphertexts are `version number (4 bytes) | nonce | AES-GCM(plaintext, aad)`
    with a random key per version, so associated data, key identity and
    version destruction are enforced for real. `calls` counts RPCs by method;
    `fail_next` makes the next calls of a method fail with a status, and
    `corrupt_next_ciphertext` flips a bit of the next Encrypt response (after
    its checksum was computed), as a bad network path would.
    """

    def __init__(self) -> None:
        self.keys: dict[str, _Key] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self._failures: dict[str, list[grpc.StatusCode]] = collections.defaultdict(list)
        self.corrupt_next_ciphertext = False
        self._lock = threading.Lock()
        self._grpc = GrpcFake(
            "google.cloud.kms.v1.KeyManagementService",
            {
                "CreateCryptoKey": (
                    self._create_crypto_key,
                    kms_v1.CreateCryptoKeyRequest,
                    kms_v1.CryptoKey,
                ),
                "GetCryptoKey": (
                    self._get_crypto_key,
                    kms_v1.GetCryptoKeyRequest,
                    kms_v1.CryptoKey,
                ),
                "UpdateCryptoKey": (
                    self._update_crypto_key,
                    kms_v1.UpdateCryptoKeyRequest,
                    kms_v1.CryptoKey,
                ),
                "CreateCryptoKeyVersion": (
                    self._create_crypto_key_version,
                    kms_v1.CreateCryptoKeyVersionRequest,
                    kms_v1.CryptoKeyVersion,
                ),
                "UpdateCryptoKeyPrimaryVersion": (
                    self._update_primary,
                    kms_v1.UpdateCryptoKeyPrimaryVersionRequest,
                    kms_v1.CryptoKey,
                ),
                "ListCryptoKeyVersions": (
                    self._list_versions,
                    kms_v1.ListCryptoKeyVersionsRequest,
                    kms_v1.ListCryptoKeyVersionsResponse,
                ),
                "DestroyCryptoKeyVersion": (
                    self._destroy_version,
                    kms_v1.DestroyCryptoKeyVersionRequest,
                    kms_v1.CryptoKeyVersion,
                ),
                "Encrypt": (self._encrypt, kms_v1.EncryptRequest, kms_v1.EncryptResponse),
                "Decrypt": (self._decrypt, kms_v1.DecryptRequest, kms_v1.DecryptResponse),
            },
        )

    def client(self) -> kms_v1.KeyManagementServiceClient:
        """The real KMS client library, speaking gRPC to this fake."""
        transport = KeyManagementServiceGrpcTransport(channel=self._grpc.channel())
        return kms_v1.KeyManagementServiceClient(transport=transport)

    def stop(self) -> None:
        self._grpc.stop()

    def fail_next(self, method: str, code: grpc.StatusCode, times: int = 1) -> None:
        with self._lock:
            self._failures[method].extend([code] * times)

    def version_states(self, key_name: str) -> dict[int, str]:
        with self._lock:
            return {n: v.state.name for n, v in self.keys[key_name].versions.items()}

    # ------------------------------------------------------------ handlers

    def _enter(self, method: str, context: grpc.ServicerContext) -> None:
        """Count the call and apply any injected failure; the caller holds the lock."""
        self.calls[method] += 1
        if self._failures[method]:
            _abort(context, self._failures[method].pop(0), f"injected failure of {method}")

    def _key(self, name: str, context: grpc.ServicerContext) -> _Key:
        if name not in self.keys:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"CryptoKey {name} not found.")
        return self.keys[name]

    def _version_resource(self, key: _Key, version: _Version) -> kms_v1.CryptoKeyVersion:
        return kms_v1.CryptoKeyVersion(
            name=f"{key.resource.name}/cryptoKeyVersions/{version.number}",
            state=version.state,
            algorithm=kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm.GOOGLE_SYMMETRIC_ENCRYPTION,
        )

    def _key_resource(self, key: _Key) -> kms_v1.CryptoKey:
        resource = kms_v1.CryptoKey(key.resource)
        if key.primary is not None:
            resource.primary = self._version_resource(key, key.versions[key.primary])
        return resource

    def _add_version(self, key: _Key) -> _Version:
        version = _Version(number=len(key.versions) + 1)
        key.versions[version.number] = version
        return version

    def _create_crypto_key(
        self, request: kms_v1.CreateCryptoKeyRequest, context: grpc.ServicerContext
    ) -> kms_v1.CryptoKey:
        with self._lock:
            self._enter("CreateCryptoKey", context)
            crypto_key = request.crypto_key
            if not _KEY_ID_RE.match(request.crypto_key_id):
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid crypto_key_id")
            if crypto_key.purpose != kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "fake supports ENCRYPT_DECRYPT")
            if ("rotation_period" in crypto_key) != ("next_rotation_time" in crypto_key):
                _abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "rotation_period and next_rotation_time must be set together",
                )
            scheduled = crypto_key.destroy_scheduled_duration
            if scheduled and scheduled.total_seconds() < _MIN_DESTROY_SCHEDULED_SECONDS:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "destroy duration below 24h")
            name = f"{request.parent}/cryptoKeys/{request.crypto_key_id}"
            if name in self.keys:
                _abort(context, grpc.StatusCode.ALREADY_EXISTS, f"CryptoKey {name} already exists.")
            resource = kms_v1.CryptoKey(crypto_key)
            resource.name = name
            key = _Key(resource=resource)
            if not request.skip_initial_version_creation:
                key.primary = self._add_version(key).number
            self.keys[name] = key
            return self._key_resource(key)

    def _get_crypto_key(
        self, request: kms_v1.GetCryptoKeyRequest, context: grpc.ServicerContext
    ) -> kms_v1.CryptoKey:
        with self._lock:
            self._enter("GetCryptoKey", context)
            return self._key_resource(self._key(request.name, context))

    def _update_crypto_key(
        self, request: kms_v1.UpdateCryptoKeyRequest, context: grpc.ServicerContext
    ) -> kms_v1.CryptoKey:
        with self._lock:
            self._enter("UpdateCryptoKey", context)
            key = self._key(request.crypto_key.name, context)
            for path in request.update_mask.paths:
                if path not in ("labels", "rotation_period", "next_rotation_time"):
                    _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"cannot update {path}")
                if path == "labels":
                    key.resource.labels.clear()
                    key.resource.labels.update(request.crypto_key.labels)
                elif path in request.crypto_key:
                    setattr(key.resource, path, getattr(request.crypto_key, path))
                else:
                    # Clearing the field, as the mask without a value asks.
                    delattr(key.resource, path)
            return self._key_resource(key)

    def _create_crypto_key_version(
        self, request: kms_v1.CreateCryptoKeyVersionRequest, context: grpc.ServicerContext
    ) -> kms_v1.CryptoKeyVersion:
        with self._lock:
            self._enter("CreateCryptoKeyVersion", context)
            key = self._key(request.parent, context)
            # Like KMS: a new version is not primary until someone says so.
            return self._version_resource(key, self._add_version(key))

    def _update_primary(
        self, request: kms_v1.UpdateCryptoKeyPrimaryVersionRequest, context: grpc.ServicerContext
    ) -> kms_v1.CryptoKey:
        with self._lock:
            self._enter("UpdateCryptoKeyPrimaryVersion", context)
            key = self._key(request.name, context)
            version = key.versions.get(int(request.crypto_key_version_id))
            if version is None:
                _abort(context, grpc.StatusCode.NOT_FOUND, "CryptoKeyVersion not found.")
            if version.state != State.ENABLED:
                _abort(context, grpc.StatusCode.FAILED_PRECONDITION, "version is not ENABLED")
            key.primary = version.number
            return self._key_resource(key)

    def _list_versions(
        self, request: kms_v1.ListCryptoKeyVersionsRequest, context: grpc.ServicerContext
    ) -> kms_v1.ListCryptoKeyVersionsResponse:
        with self._lock:
            self._enter("ListCryptoKeyVersions", context)
            key = self._key(request.parent, context)
            versions = [self._version_resource(key, v) for v in key.versions.values()]
            return kms_v1.ListCryptoKeyVersionsResponse(
                crypto_key_versions=versions, total_size=len(versions)
            )

    def _destroy_version(
        self, request: kms_v1.DestroyCryptoKeyVersionRequest, context: grpc.ServicerContext
    ) -> kms_v1.CryptoKeyVersion:
        with self._lock:
            self._enter("DestroyCryptoKeyVersion", context)
            key_name, _, number = request.name.rpartition("/cryptoKeyVersions/")
            key = self._key(key_name, context)
            version = key.versions.get(int(number))
            if version is None:
                _abort(context, grpc.StatusCode.NOT_FOUND, "CryptoKeyVersion not found.")
            if version.state not in (State.ENABLED, State.DISABLED):
                _abort(context, grpc.StatusCode.FAILED_PRECONDITION, "version cannot be destroyed")
            # Real KMS wipes the material after destroy_scheduled_duration; until
            # then the version is unusable, which is all a client can observe.
            version.state = State.DESTROY_SCHEDULED
            return self._version_resource(key, version)

    def _encrypt(
        self, request: kms_v1.EncryptRequest, context: grpc.ServicerContext
    ) -> kms_v1.EncryptResponse:
        with self._lock:
            self._enter("Encrypt", context)
            key = self._key(request.name, context)
            _check_crc(context, request.plaintext, request.plaintext_crc32c)
            aad = request.additional_authenticated_data
            _check_crc(context, aad, request.additional_authenticated_data_crc32c)
            version = key.versions.get(key.primary) if key.primary is not None else None
            if version is None or version.state != State.ENABLED:
                _abort(context, grpc.StatusCode.FAILED_PRECONDITION, "no ENABLED primary version")
            nonce = os.urandom(12)
            sealed = AESGCM(version.secret).encrypt(nonce, request.plaintext, aad)
            ciphertext = struct.pack(">I", version.number) + nonce + sealed
            checksum = _crc32c(ciphertext)
            if self.corrupt_next_ciphertext:
                self.corrupt_next_ciphertext = False
                ciphertext = ciphertext[:-1] + bytes([ciphertext[-1] ^ 0x01])
            return kms_v1.EncryptResponse(
                name=f"{key.resource.name}/cryptoKeyVersions/{version.number}",
                ciphertext=ciphertext,
                ciphertext_crc32c=checksum,
                verified_plaintext_crc32c=request.plaintext_crc32c is not None,
                verified_additional_authenticated_data_crc32c=(
                    request.additional_authenticated_data_crc32c is not None
                ),
            )

    def _decrypt(
        self, request: kms_v1.DecryptRequest, context: grpc.ServicerContext
    ) -> kms_v1.DecryptResponse:
        with self._lock:
            self._enter("Decrypt", context)
            key = self._key(request.name, context)
            ciphertext, aad = request.ciphertext, request.additional_authenticated_data
            _check_crc(context, ciphertext, request.ciphertext_crc32c)
            _check_crc(context, aad, request.additional_authenticated_data_crc32c)
            invalid = "Decryption failed: the ciphertext is invalid."
            if len(ciphertext) < 16:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, invalid)
            version = key.versions.get(struct.unpack(">I", ciphertext[:4])[0])
            if version is None:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, invalid)
            if version.state != State.ENABLED:
                _abort(
                    context,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"CryptoKeyVersion is {version.state.name}",
                )
            try:
                plaintext = AESGCM(version.secret).decrypt(ciphertext[4:16], ciphertext[16:], aad)
            except InvalidTag:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, invalid)
            return kms_v1.DecryptResponse(
                plaintext=plaintext, plaintext_crc32c=_crc32c(plaintext), used_primary=False
            )


def _check_crc(context: grpc.ServicerContext, data: bytes, crc: Any) -> None:
    if crc is not None and crc != _crc32c(data):
        _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "checksum mismatch")

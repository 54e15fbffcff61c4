"""A fake Secret Manager (gRPC SecretManagerService.AccessSecretVersion) that counts calls."""

from __future__ import annotations

import threading

import google_crc32c
import grpc
from google.cloud import secretmanager
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from tests.fakes import GrpcFake


class FakeSecretManager:
    """Holds `{(project, secret): value}` and serves each as its `latest` version."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}
        self.access_calls = 0
        self._lock = threading.Lock()
        self._grpc = GrpcFake(
            "google.cloud.secretmanager.v1.SecretManagerService",
            {
                "AccessSecretVersion": (
                    self._access,
                    secretmanager.AccessSecretVersionRequest,
                    secretmanager.AccessSecretVersionResponse,
                )
            },
        )

    def client(self) -> secretmanager.SecretManagerServiceClient:
        """The real Secret Manager client library, speaking gRPC to this fake."""
        transport = SecretManagerServiceGrpcTransport(channel=self._grpc.channel())
        return secretmanager.SecretManagerServiceClient(transport=transport)

    def set(self, project: str, secret: str, value: str) -> None:
        with self._lock:
            self.values[(project, secret)] = value

    def stop(self) -> None:
        self._grpc.stop()

    def _access(
        self, request: secretmanager.AccessSecretVersionRequest, context: grpc.ServicerContext
    ) -> secretmanager.AccessSecretVersionResponse:
        with self._lock:
            self.access_calls += 1
            parts = request.name.split("/")
            if len(parts) != 6 or parts[0::2] != ["projects", "secrets", "versions"]:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed secret version name")
            project, secret, version = parts[1::2]
            value = self.values.get((project, secret))
            if value is None or version != "latest":
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found.")
                raise AssertionError("context.abort returns only by raising")
            data = value.encode()
            return secretmanager.AccessSecretVersionResponse(
                name=f"projects/{project}/secrets/{secret}/versions/1",
                payload={"data": data, "data_crc32c": google_crc32c.value(data)},
            )

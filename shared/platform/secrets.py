"""The secrets port: platform secrets (admin key, API-key pepper, Stripe webhook secret)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from shared.platform.errors import unavailable

if TYPE_CHECKING:
    from google.cloud import secretmanager

    from shared.platform.settings import Settings

ADMIN_API_KEY = "ADMIN_API_KEY"
API_KEY_PEPPER = "API_KEY_PEPPER"
STRIPE_WEBHOOK_SECRET = "STRIPE_WEBHOOK_SECRET"
PLATFORM_SECRETS = (ADMIN_API_KEY, API_KEY_PEPPER, STRIPE_WEBHOOK_SECRET)
# The SMTP relay alerts are sent through (shared.notify.email): "host:port",
# user and password. Unset host: email is not configured and is skipped.
SMTP_HOST = "SMTP_HOST"
SMTP_USERNAME = "SMTP_USERNAME"
SMTP_PASSWORD = "SMTP_PASSWORD"
MAIL_SECRETS = (SMTP_HOST, SMTP_USERNAME, SMTP_PASSWORD)


class Secrets(Protocol):
    def get(self, name: str) -> str | None:
        """The secret's value, or None if it is not configured."""
        ...


def require(secrets: Secrets, name: str) -> str:
    """A secret that must be set; a missing one is a 503, never a crash or a leak."""
    value = secrets.get(name)
    if not value:
        raise unavailable(f"the platform is not configured ({name.lower()} missing)")
    return value


class EnvSecrets:
    """Local stack and Terraform-mounted production: env vars, then `<data dir>/secrets.json`."""

    def __init__(self, secrets_file: Path | None = None) -> None:
        self.secrets_file = secrets_file
        self._cached: dict[str, str] | None = None

    def _file_values(self) -> dict[str, str]:
        if self._cached is None:
            self._cached = {}
            if self.secrets_file is not None and self.secrets_file.exists():
                data = json.loads(self.secrets_file.read_text(encoding="utf-8"))
                self._cached = {k: v for k, v in data.items() if isinstance(v, str)}
        return self._cached

    def get(self, name: str) -> str | None:
        return os.environ.get(name) or self._file_values().get(name)


class StaticSecrets:
    """Secrets from a mapping: unit tests and tools that already hold the values."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)

    def get(self, name: str) -> str | None:
        return self.values.get(name)


_SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# A cold request waits at most this long for Secret Manager before it answers 503.
_ACCESS_RETRY_TIMEOUT = 10.0


class SecretManagerSecrets:
    """Production: the latest version of each secret in Secret Manager, cached per name.

    A value (or its absence) is trusted for `ttl_seconds`, so a warm instance
    makes no RPC per request; a rotated secret reaches every instance within
    the TTL. Values are never logged.
    """

    def __init__(
        self,
        client: secretmanager.SecretManagerServiceClient,
        project: str,
        ttl_seconds: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.project = project
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        if not _SECRET_NAME_RE.match(name):
            raise ValueError("secret names match ^[A-Za-z0-9_-]{1,255}$")
        now = self.clock()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and now < cached[0]:
            return cached[1]
        # Fetched outside the lock: two threads missing at once both fetch, which is harmless.
        value = self._fetch(name)
        with self._lock:
            self._cache[name] = (now + self.ttl_seconds, value)
        return value

    def _fetch(self, name: str) -> str | None:
        # google.api_core (and grpc behind it) loads only with Secret Manager:
        # the env backend and the functions that never need a secret stay light.
        from google.api_core import exceptions as api_errors
        from google.api_core.retry import Retry, if_transient_error

        retry = Retry(
            predicate=if_transient_error, initial=0.1, maximum=1.0, timeout=_ACCESS_RETRY_TIMEOUT
        )
        version = f"projects/{self.project}/secrets/{name}/versions/latest"
        try:
            response = self.client.access_secret_version(name=version, retry=retry, timeout=5.0)
        except api_errors.NotFound:
            return None
        return bytes(response.payload.data).decode("utf-8")


def secrets_from(settings: Settings) -> Secrets:
    """The secrets adapter the settings ask for."""
    if settings.secrets_backend == "secret_manager":
        from google.cloud import secretmanager

        return SecretManagerSecrets(
            secretmanager.SecretManagerServiceClient(), settings.gcp_project
        )
    secrets_file = None if settings.is_production else settings.local_data_dir / "secrets.json"
    return EnvSecrets(secrets_file)

"""The secrets port: platform secrets (admin key, API-key pepper, Stripe webhook secret)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from shared.errors import unavailable

ADMIN_API_KEY = "ADMIN_API_KEY"
API_KEY_PEPPER = "API_KEY_PEPPER"
STRIPE_WEBHOOK_SECRET = "STRIPE_WEBHOOK_SECRET"
PLATFORM_SECRETS = (ADMIN_API_KEY, API_KEY_PEPPER, STRIPE_WEBHOOK_SECRET)


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

"""Which secrets adapter the settings choose."""

from __future__ import annotations

from pathlib import Path

import google.auth
import pytest
from google.auth.credentials import AnonymousCredentials

from shared.platform.secrets import EnvSecrets, SecretManagerSecrets, secrets_from
from tests.conftest import make_settings


def test_by_default_secrets_come_from_env_and_the_local_file(tmp_path: Path) -> None:
    secrets = secrets_from(make_settings(tmp_path))

    assert isinstance(secrets, EnvSecrets)
    assert secrets.secrets_file == tmp_path / "secrets.json"


def test_the_secret_manager_backend_reads_the_configured_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client looks for credentials when built; it makes no call until used.
    monkeypatch.setattr(google.auth, "default", lambda **_: (AnonymousCredentials(), None))

    secrets = secrets_from(
        make_settings(tmp_path, secrets_backend="secret_manager", gcp_project="convergence-prod")
    )

    assert isinstance(secrets, SecretManagerSecrets)
    assert secrets.project == "convergence-prod"

"""Settings: parsed from the environment, with unsafe values refused at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.platform.settings import Settings


def test_frontend_origins_are_split_from_a_comma_separated_env_var(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRONTEND_ORIGINS", "https://app.example.com, http://localhost:3000/")

    assert Settings().frontend_origins == ("https://app.example.com", "http://localhost:3000")


@pytest.mark.parametrize("origin", ["*", "https://*.example.com", "app.example.com"])
def test_wildcard_or_malformed_origins_are_refused(
    monkeypatch: pytest.MonkeyPatch, origin: str
) -> None:
    monkeypatch.setenv("FRONTEND_ORIGINS", origin)

    with pytest.raises(ValidationError, match="FRONTEND_ORIGINS"):
        Settings()


def test_production_refuses_an_emulator_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVERGENCE_ENV", "production")
    monkeypatch.setenv("KMS_KEY_RING", "projects/p/locations/us/keyRings/convergence")
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "http://127.0.0.1:9050")

    with pytest.raises(ValidationError, match="production"):
        Settings()


def test_an_invalid_central_dataset_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRAL_DATASET", "tenants; drop")

    with pytest.raises(ValidationError, match="CENTRAL_DATASET"):
        Settings()


def test_production_requires_a_kms_key_ring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVERGENCE_ENV", "production")

    with pytest.raises(ValidationError, match="KMS_KEY_RING"):
        Settings()

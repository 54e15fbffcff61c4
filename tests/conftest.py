"""Fixtures shared by every test layer: the emulator, settings and dependency wiring."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from google.cloud import bigquery

from local.emulator import Emulator, free_port

if TYPE_CHECKING:
    from local.cloud_access import CloudStandIns
from shared.deps import Deps, use_deps
from shared.platform.secrets import (
    ADMIN_API_KEY,
    API_KEY_PEPPER,
    STRIPE_WEBHOOK_SECRET,
    StaticSecrets,
)
from shared.platform.settings import Settings
from shared.platform.warehouse import bigquery_client
from tests.sqlcheck.server import analyzer_address

# Every statement the session sends is recorded and analyzed by ZetaSQL at the end.
pytest_plugins = ["tests.sqlcheck.plugin"]

TEST_PROJECT = "convergence-test"
# Azurite serves only the storage accounts it starts with.
TEST_STORAGE_ACCOUNTS = ["cvgexports", "cvgotherexports"]
ADMIN_KEY = "adm_test_" + uuid.uuid4().hex
TEST_SECRETS = {
    ADMIN_API_KEY: ADMIN_KEY,
    API_KEY_PEPPER: "pepper-" + uuid.uuid4().hex,
    STRIPE_WEBHOOK_SECRET: "whsec_test_" + uuid.uuid4().hex,
}


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One real bqemulator for the whole session, on free ports, in a throwaway dir."""
    data_dir = tmp_path_factory.mktemp("bqemulator")
    server = Emulator(data_dir, TEST_PROJECT, rest_port=free_port(), grpc_port=free_port())
    server.start()
    yield server
    server.stop()


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "gcp_project": TEST_PROJECT,
        "central_dataset": "c_" + uuid.uuid4().hex[:12],
        "local_data_dir": tmp_path,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Extra settings for a module's tests (override it, e.g. to point at moto and Azurite)."""
    return {}


@pytest.fixture
def settings(
    emulator: Emulator, tmp_path: Path, settings_overrides: dict[str, object]
) -> Iterator[Settings]:
    """Settings with a unique central dataset, dropped after the test."""
    current = make_settings(
        tmp_path,
        bigquery_emulator_host=emulator.url,
        sql_analyzer_address=analyzer_address(),
        **settings_overrides,
    )
    yield current
    client = bigquery_client(current)
    for dataset in client.list_datasets():
        if dataset.dataset_id == current.central_dataset:
            client.delete_dataset(dataset.reference, delete_contents=True, not_found_ok=True)


@pytest.fixture(scope="session")
def clouds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStandIns]:
    """moto (S3, STS) and Azurite (+ Entra) for the session; started only by tests that ask."""
    from local.cloud_access import CloudStandIns

    servers = CloudStandIns(tmp_path_factory.mktemp("clouds"), TEST_STORAGE_ACCOUNTS)
    servers.start()
    yield servers
    servers.stop()


@pytest.fixture
def deps(settings: Settings) -> Iterator[Deps]:
    """Real adapters against the emulator, installed as the process's dependencies."""
    wired = Deps(settings=settings, secrets=StaticSecrets(TEST_SECRETS))
    use_deps(wired)
    yield wired
    use_deps(None)


@pytest.fixture
def bq(deps: Deps) -> bigquery.Client:
    return deps.warehouse.client

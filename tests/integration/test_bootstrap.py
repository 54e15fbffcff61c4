"""Bootstrap against the real emulator: every central table, as declared, exactly once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import functions_framework
import pytest
from flask.testing import FlaskClient
from google.cloud import bigquery

from shared.deps import Deps, use_deps
from shared.platform.schemas import CENTRAL_TABLES, load_catalog
from shared.platform.settings import REPO_ROOT
from tests.conftest import ADMIN_KEY

MAIN = str(REPO_ROOT / "main.py")


@pytest.fixture
def admin_client(deps: Deps) -> FlaskClient:
    return functions_framework.create_app(target="admin", source=MAIN).test_client()


def bootstrap(client: FlaskClient, **body: object) -> tuple[int, dict[str, object]]:
    response = client.post("/bootstrap", json=body or None, headers={"X-Admin-Key": ADMIN_KEY})
    return response.status_code, response.get_json()


def test_bootstrap_creates_every_central_table_with_declared_layout(
    admin_client: FlaskClient, deps: Deps, bq: bigquery.Client
) -> None:
    status, report = bootstrap(admin_client)

    assert status == 201
    assert report["dataset_created"] is True
    assert sorted(report["created"]) == sorted(CENTRAL_TABLES)
    catalog = load_catalog(deps.settings.schemas_dir)
    for name, spec in catalog.central.items():
        table = bq.get_table(f"{deps.settings.gcp_project}.{deps.settings.central_dataset}.{name}")
        assert table.time_partitioning.field == spec.timePartitioning.field, name
        assert table.time_partitioning.type_ == spec.timePartitioning.type, name
        assert table.clustering_fields == list(spec.clustering.fields), name
        assert [f.name for f in table.schema] == [f.name for f in spec.schema_], name
        assert table.description == spec.description


def test_a_second_bootstrap_creates_nothing(admin_client: FlaskClient) -> None:
    bootstrap(admin_client)

    status, report = bootstrap(admin_client)

    assert status == 200
    assert report["dataset_created"] is False
    assert report["created"] == []
    assert sorted(report["existing"]) == sorted(CENTRAL_TABLES)
    assert report["drift"] == {}


def test_bootstrap_recreates_a_missing_table_and_reports_it(
    admin_client: FlaskClient, deps: Deps, bq: bigquery.Client
) -> None:
    bootstrap(admin_client)
    bq.delete_table(f"{deps.settings.gcp_project}.{deps.settings.central_dataset}.tenant_audit_log")

    status, report = bootstrap(admin_client)

    assert status == 201
    assert report["created"] == ["tenant_audit_log"]
    assert "tenant_audit_log" not in report["existing"]


def test_a_dry_run_reports_without_creating(
    admin_client: FlaskClient, deps: Deps, bq: bigquery.Client
) -> None:
    status, report = bootstrap(admin_client, dry_run=True)

    assert status == 200
    assert report["dry_run"] is True
    assert sorted(report["created"]) == sorted(CENTRAL_TABLES)
    datasets = {d.dataset_id for d in bq.list_datasets()}
    assert deps.settings.central_dataset not in datasets


def test_bootstrap_reports_drift_of_an_existing_table(
    admin_client: FlaskClient, deps: Deps, bq: bigquery.Client
) -> None:
    bootstrap(admin_client)
    table_id = f"{deps.settings.gcp_project}.{deps.settings.central_dataset}.tenant_key_reveals"
    bq.delete_table(table_id)
    bq.create_table(bigquery.Table(table_id, schema=[bigquery.SchemaField("x", "STRING")]))

    _, report = bootstrap(admin_client)

    assert "missing column checkout_session_id" in report["drift"]["tenant_key_reveals"]
    assert "partitioning differs" in report["drift"]["tenant_key_reveals"]


def test_bootstrap_refuses_a_malformed_schema_and_creates_nothing(
    deps: Deps, tmp_path: Path, bq: bigquery.Client
) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(REPO_ROOT / "schemas", schemas)
    bad = schemas / "central" / "tenant_profiles.json"
    raw = json.loads(bad.read_text())
    raw["schema"][0]["type"] = "STRNG"
    bad.write_text(json.dumps(raw))
    use_deps(
        Deps(
            settings=deps.settings.model_copy(update={"schemas_dir": schemas}), secrets=deps.secrets
        )
    )
    client = functions_framework.create_app(target="admin", source=MAIN).test_client()

    status, body = bootstrap(client)

    assert status == 422
    assert body["error"] == "invalid_schema"
    assert "tenant_profiles.json" in str(body["detail"])
    assert deps.settings.central_dataset not in {d.dataset_id for d in bq.list_datasets()}


def test_bootstrap_without_the_admin_key_is_401_and_creates_nothing(
    admin_client: FlaskClient, deps: Deps, bq: bigquery.Client
) -> None:
    response = admin_client.post("/bootstrap", headers={"X-Admin-Key": "adm_wrong"})

    assert response.status_code == 401
    assert deps.settings.central_dataset not in {d.dataset_id for d in bq.list_datasets()}


def test_bootstrap_refuses_unknown_options(admin_client: FlaskClient) -> None:
    status, body = bootstrap(admin_client, force=True)

    assert status == 422
    assert body["field"] == "force"

"""Schema files: every central table is declared, well-formed, partitioned and clustered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shared.platform.schemas import CENTRAL_TABLES, SchemaError, load_catalog, load_table_spec
from shared.platform.settings import REPO_ROOT
from shared.platform.warehouse import table_from_spec

SCHEMAS = REPO_ROOT / "schemas"
ARCHITECTURE_TABLES = {
    "tenant_profiles",
    "tenant_api_keys",
    "tenant_subscriptions",
    "tenant_usage_quotas",
    "tenant_cloud_credentials",
    "tenant_provider_configs",
    "tenant_pipeline_configs",
    "tenant_pipeline_runs",
    "tenant_step_logs",
    "tenant_dq_results",
    "tenant_webhook_events",
    "tenant_audit_log",
}


def all_schema_files() -> list[Path]:
    return sorted(SCHEMAS.glob("*/*.json"))


def test_every_central_table_of_the_architecture_has_a_schema_file() -> None:
    catalog = load_catalog(SCHEMAS)

    assert set(catalog.central) >= ARCHITECTURE_TABLES
    assert set(catalog.central) == set(CENTRAL_TABLES)


@pytest.mark.parametrize("path", all_schema_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_table_declares_partitioning_and_clustering(path: Path) -> None:
    raw = json.loads(path.read_text())

    assert raw["timePartitioning"]["field"] in {f["name"] for f in raw["schema"]}
    assert raw["timePartitioning"]["type"] in {"HOUR", "DAY", "MONTH", "YEAR"}
    assert raw["clustering"]["fields"], "clustering needs at least one field"
    assert raw["description"]
    load_table_spec(path)


@pytest.mark.parametrize("path", all_schema_files(), ids=lambda p: p.name)
def test_every_data_table_avoids_the_json_type(path: Path) -> None:
    # JSON-typed parameters are broken on the emulator; we store JSON as STRING.
    raw = json.loads(path.read_text())

    assert all(f["type"] != "JSON" for f in raw["schema"])


def _copy_schemas(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, target)
    return target


def _edit(path: Path, change: dict[str, object] | None = None, drop: str | None = None) -> None:
    raw = json.loads(path.read_text())
    if drop:
        del raw[drop]
    raw.update(change or {})
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("change", "drop", "message"),
    [
        (None, "clustering", "clustering"),
        (None, "timePartitioning", "timePartitioning"),
        ({"timePartitioning": {"type": "DAY", "field": "nope"}}, None, "partition field"),
        ({"timePartitioning": {"type": "DAY", "field": "tenant_id"}}, None, "TIMESTAMP"),
        ({"clustering": {"fields": ["nope"]}}, None, "clustering field"),
        ({"extra_key": 1}, None, "extra_key"),
        ({"table": "tenant_other"}, None, "file name must match"),
        ({"schema": [{"name": "x", "type": "STRNG"}]}, None, "schema"),
    ],
)
def test_a_malformed_schema_file_is_refused_with_its_name(
    tmp_path: Path, change: dict[str, object] | None, drop: str | None, message: str
) -> None:
    schemas = _copy_schemas(tmp_path)
    _edit(schemas / "central" / "tenant_profiles.json", change, drop)

    with pytest.raises(SchemaError) as err:
        load_catalog(schemas)

    assert "tenant_profiles.json" in str(err.value)
    assert message in str(err.value)


def test_an_unknown_schema_file_is_refused(tmp_path: Path) -> None:
    schemas = _copy_schemas(tmp_path)
    shutil.copy(schemas / "central" / "tenant_profiles.json", schemas / "central" / "stray.json")
    _edit(schemas / "central" / "stray.json", {"table": "stray"})

    with pytest.raises(SchemaError, match="unknown central schema file"):
        load_catalog(schemas)


def test_a_missing_schema_file_is_refused(tmp_path: Path) -> None:
    schemas = _copy_schemas(tmp_path)
    (schemas / "central" / "tenant_audit_log.json").unlink()

    with pytest.raises(SchemaError, match=r"missing central schema file.*tenant_audit_log"):
        load_catalog(schemas)


def test_a_schema_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    schemas = _copy_schemas(tmp_path)
    (schemas / "central" / "tenant_profiles.json").write_text("{not json")

    with pytest.raises(SchemaError, match=r"tenant_profiles.json: not readable JSON"):
        load_catalog(schemas)


def test_a_table_spec_converts_to_a_bigquery_table_with_its_layout() -> None:
    spec = load_table_spec(SCHEMAS / "central" / "tenant_pipeline_runs.json")

    table = table_from_spec("my-project", "tenants", spec)

    assert table.time_partitioning.field == "created_at"
    assert table.time_partitioning.type_ == "DAY"
    assert table.clustering_fields == ["tenant_id", "state", "config_id"]
    assert [f.name for f in table.schema][:3] == ["run_id", "tenant_id", "config_id"]

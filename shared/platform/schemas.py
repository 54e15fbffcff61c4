"""Table schemas from `schemas/*.json`: loading and validation (the warehouse builds the tables)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The central tables of ARCHITECTURE.md plus the ones we added. A schema file
# that is not listed here is refused, so a typo can't create a stray table.
CENTRAL_TABLES = (
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
    "tenant_key_reveals",
    "tenant_run_heartbeats",
    "tenant_budgets",
    "tenant_notification_outbox",
)

FieldType = Literal[
    "STRING",
    "BYTES",
    "INT64",
    "INTEGER",
    "FLOAT64",
    "FLOAT",
    "NUMERIC",
    "BIGNUMERIC",
    "BOOL",
    "BOOLEAN",
    "TIMESTAMP",
    "DATE",
    "TIME",
    "DATETIME",
    "JSON",
    "RECORD",
    "STRUCT",
]
_PARTITION_TYPES = {"TIMESTAMP", "DATE", "DATETIME"}
_CLUSTER_TYPES = {
    "STRING",
    "INT64",
    "INTEGER",
    "NUMERIC",
    "BIGNUMERIC",
    "BOOL",
    "BOOLEAN",
    "TIMESTAMP",
    "DATE",
    "DATETIME",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,299}$")
    type: FieldType
    mode: Literal["NULLABLE", "REQUIRED", "REPEATED"] = "NULLABLE"
    description: str = ""
    fields: tuple[FieldSpec, ...] | None = None

    @model_validator(mode="after")
    def _records_have_fields(self) -> FieldSpec:
        if self.type in ("RECORD", "STRUCT") and not self.fields:
            raise ValueError(f"{self.name}: a RECORD needs `fields`")
        if self.fields and self.type not in ("RECORD", "STRUCT"):
            raise ValueError(f"{self.name}: only a RECORD has `fields`")
        return self


class TimePartitioningSpec(_Strict):
    type: Literal["HOUR", "DAY", "MONTH", "YEAR"]
    field: str
    expirationMs: str | None = None  # noqa: N815 - BigQuery API spelling


class ClusteringSpec(_Strict):
    fields: tuple[str, ...] = Field(min_length=1, max_length=4)


class TableSpec(_Strict):
    """One table, in the BigQuery API's own field names so Terraform reads it as is."""

    table: str = Field(pattern=r"^[a-z][a-z0-9_]{0,1023}$")
    description: str = Field(min_length=1)
    schema_: tuple[FieldSpec, ...] = Field(alias="schema", min_length=1)
    timePartitioning: TimePartitioningSpec  # noqa: N815
    clustering: ClusteringSpec

    @model_validator(mode="after")
    def _consistent(self) -> TableSpec:
        by_name = {f.name: f for f in self.schema_}
        if len(by_name) != len(self.schema_):
            raise ValueError("duplicate field names")
        part = by_name.get(self.timePartitioning.field)
        if part is None:
            raise ValueError(f"partition field {self.timePartitioning.field!r} is not in schema")
        if part.type not in _PARTITION_TYPES or part.mode == "REPEATED":
            raise ValueError(f"partition field {part.name!r} must be a TIMESTAMP, DATE or DATETIME")
        for name in self.clustering.fields:
            field = by_name.get(name)
            if field is None:
                raise ValueError(f"clustering field {name!r} is not in schema")
            if field.type not in _CLUSTER_TYPES or field.mode == "REPEATED":
                raise ValueError(f"clustering field {name!r} has a type BigQuery cannot cluster on")
        return self


class SchemaError(ValueError):
    """A schema file that is missing, unknown or malformed; names the file."""


@dataclass(frozen=True)
class SchemaCatalog:
    central: dict[str, TableSpec]
    tenant: dict[str, TableSpec]


def load_table_spec(path: Path) -> TableSpec:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(f"{path.name}: not readable JSON ({exc.__class__.__name__})") from None
    try:
        spec = TableSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise SchemaError(f"{path.name}: {where}: {first['msg']}") from None
    if spec.table != path.stem:
        raise SchemaError(f"{path.name}: declares table {spec.table!r}; the file name must match")
    return spec


def _load_dir(directory: Path) -> dict[str, TableSpec]:
    if not directory.is_dir():
        raise SchemaError(f"schema directory {directory.name!r} is missing")
    specs: dict[str, TableSpec] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".json":
            raise SchemaError(f"{path.name}: unexpected file in {directory.name}/ (only *.json)")
        spec = load_table_spec(path)
        specs[spec.table] = spec
    return specs


def load_catalog(schemas_dir: Path) -> SchemaCatalog:
    """Every schema, validated; raises SchemaError before anything is created."""
    central = _load_dir(schemas_dir / "central")
    unknown = sorted(set(central) - set(CENTRAL_TABLES))
    if unknown:
        raise SchemaError(f"unknown central schema file(s): {', '.join(unknown)}")
    missing = [t for t in CENTRAL_TABLES if t not in central]
    if missing:
        raise SchemaError(f"missing central schema file(s): {', '.join(missing)}")
    tenant_dir = schemas_dir / "tenant"
    tenant = _load_dir(tenant_dir) if tenant_dir.exists() else {}
    return SchemaCatalog(central={t: central[t] for t in CENTRAL_TABLES}, tenant=tenant)

"""Pipeline configs: a tenant's scheduled pipelines (template, cron + zone, references)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.deps import Deps
from shared.platform.errors import ApiError, conflict, not_found, unprocessable
from shared.platform.identifiers import derived_id
from shared.platform.warehouse import Typed, Warehouse
from shared.scheduling import schedule

CONFIG_ID_RE = re.compile(r"^pcf_[0-9a-f]{32}$")
_MAX_PARAMETERS_BYTES = 16 * 1024
_COLUMNS = (
    "config_id, name, pipeline, provider_config_id, credential_id, schedule_cron, timezone, "
    "is_active, parameters_json, next_run_at, created_at, updated_at"
)
# The provider whose config each cost-export pipeline reads: a pipeline linked to another
# provider's config would only fail at run time, so it is refused when scheduled.
PIPELINE_PROVIDERS = {
    "gcp_cost_billing": "GCP",
    "aws_cost_export": "AWS",
    "azure_cost_export": "AZURE",
}


def pipeline_ids() -> tuple[str, ...]:
    """The built-in templates a config may name (the YAML files of shared/pipelines/templates)."""
    from shared.pipelines.definitions import template_ids

    return template_ids()


class PipelineConfigRequest(BaseModel):
    """A config as the tenant writes it (POST, PUT); unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    pipeline: str = Field(min_length=1, max_length=64)
    provider_config_id: str | None = Field(default=None, max_length=64)
    credential_id: str | None = Field(default=None, max_length=64)
    schedule_cron: str = Field(min_length=9, max_length=120)
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    is_active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("pipeline")
    @classmethod
    def _known_pipeline(cls, value: str) -> str:
        if value not in pipeline_ids():
            raise ValueError(f"unknown pipeline; built-in pipelines: {', '.join(pipeline_ids())}")
        return value

    @field_validator("schedule_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            return schedule.check_cron(value)
        except schedule.ScheduleError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            schedule.zone(value)
        except schedule.ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("parameters")
    @classmethod
    def _small_parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > _MAX_PARAMETERS_BYTES:
            raise ValueError(f"at most {_MAX_PARAMETERS_BYTES} bytes of JSON")
        return value


class PipelineConfigPatch(BaseModel):
    """PATCH: only the fields given change; the result is validated as a whole."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    provider_config_id: str | None = None
    credential_id: str | None = None
    schedule_cron: str | None = None
    timezone: str | None = None
    is_active: bool | None = None
    parameters: dict[str, Any] | None = None


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    next_run = row.get("next_run_at")
    return {
        "config_id": row["config_id"],
        "name": row["name"],
        "pipeline": row["pipeline"],
        "provider_config_id": row.get("provider_config_id"),
        "credential_id": row.get("credential_id"),
        "schedule_cron": row["schedule_cron"],
        "timezone": row["timezone"],
        "is_active": bool(row["is_active"]),
        "parameters": json.loads(row.get("parameters_json") or "{}"),
        "next_run_time": {
            "utc": next_run.astimezone(dt.UTC).isoformat() if next_run else None,
            "local": schedule.as_local(next_run, row["timezone"]),
        },
        "created_at": row["created_at"],
        "updated_at": row.get("updated_at"),
    }


def _table(warehouse: Warehouse) -> str:
    return warehouse.central("tenant_pipeline_configs")


def _check_references(deps: Deps, tenant_id: str, body: PipelineConfigRequest) -> str | None:
    """The provider config and credential must be this tenant's and active; returns the
    credential the run will use (the provider config's, unless one is named)."""
    warehouse = deps.warehouse
    credential_id = body.credential_id
    if body.provider_config_id is not None:
        rows = warehouse.query(
            "SELECT credential_id, provider FROM "
            f"{warehouse.central('tenant_provider_configs')} "
            "WHERE tenant_id = @t AND config_id = @id AND status = 'ACTIVE'",
            {"t": tenant_id, "id": body.provider_config_id},
            component="pipeline_configs",
            tenant_id=tenant_id,
        )
        # Another tenant's id reads exactly like an unknown one.
        if not rows:
            raise _reference_error("provider_config_id", "no active provider config with this id")
        wanted = PIPELINE_PROVIDERS.get(body.pipeline)
        if wanted is not None and rows[0]["provider"] != wanted:
            raise _reference_error(
                "provider_config_id",
                f"{body.pipeline} reads a provider config of provider {wanted}; "
                f"this one is {rows[0]['provider']}",
            )
        credential_id = credential_id or rows[0]["credential_id"]
    if body.credential_id is not None:
        rows = warehouse.query(
            f"SELECT 1 AS ok FROM {warehouse.central('tenant_cloud_credentials')} "
            "WHERE tenant_id = @t AND credential_id = @c AND status = 'ACTIVE'",
            {"t": tenant_id, "c": body.credential_id},
            component="pipeline_configs",
            tenant_id=tenant_id,
        )
        if not rows:
            raise _reference_error("credential_id", "no active credential with this id")
    _check_pipeline_parameters(deps, tenant_id, body)
    return credential_id


def _check_pipeline_parameters(deps: Deps, tenant_id: str, body: PipelineConfigRequest) -> None:
    """The template's own rules: required parameters, and tenant SQL through the sandbox,
    so a bad query is refused at upload (and again at run time)."""
    from shared.pipelines.definitions import DefinitionError, validate_parameters
    from shared.pipelines.sql_sandbox import tenant_catalog
    from shared.tenancy.tenant_dataset import dataset_id_for

    dataset = dataset_id_for(tenant_id, deps.settings.tenant_dataset_suffix)
    try:
        validate_parameters(
            body.pipeline,
            body.parameters,
            dataset=dataset,
            project=deps.settings.gcp_project,
            catalog=tenant_catalog(deps, dataset),
        )
    except DefinitionError as exc:
        field = exc.field or "parameters"
        raise unprocessable("validation_failed", f"{field}: {exc}", field=field) from None


def _reference_error(field: str, message: str) -> ApiError:
    return unprocessable("validation_failed", f"{field}: {message}", field=field)


def _next_run(body: PipelineConfigRequest, now: dt.datetime) -> dt.datetime | None:
    if not body.is_active:
        return None
    try:
        return schedule.next_fire(body.schedule_cron, body.timezone, now)
    except schedule.ScheduleError as exc:
        # check_cron refuses schedules that never fire; this keeps any that slip by a 422.
        raise unprocessable("validation_failed", f"{exc.field}: {exc}", field=exc.field) from None


def _row_params(
    body: PipelineConfigRequest, credential_id: str | None, now: dt.datetime
) -> dict[str, Any]:
    return {
        "name": body.name,
        "pipeline": body.pipeline,
        "provider_config_id": Typed("STRING", body.provider_config_id),
        "credential_id": Typed("STRING", credential_id),
        "schedule_cron": body.schedule_cron,
        "timezone": body.timezone,
        "is_active": body.is_active,
        "parameters_json": json.dumps(body.parameters, sort_keys=True),
        "next_run_at": Typed("TIMESTAMP", _next_run(body, now)),
    }


def _fingerprint(body: PipelineConfigRequest) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def create_config(
    deps: Deps, tenant_id: str, body: PipelineConfigRequest, idempotency_key: str | None
) -> tuple[dict[str, Any], bool]:
    """A new config (and whether it is new). With an Idempotency-Key, a retried POST returns
    the config the first one created instead of scheduling the pipeline twice."""
    warehouse = deps.warehouse
    credential_id = _check_references(deps, tenant_id, body)
    now = deps.clock()
    if idempotency_key:
        config_id = derived_id("pcf_", tenant_id, idempotency_key)
    else:
        config_id = "pcf_" + uuid.uuid4().hex
    params = _row_params(body, credential_id, now)
    fingerprint = _fingerprint(body)
    created = warehouse.execute(
        f"MERGE {_table(warehouse)} AS c USING (SELECT @config_id AS config_id) AS n "
        "ON c.config_id = n.config_id WHEN NOT MATCHED THEN INSERT (config_id, tenant_id, name, "
        "pipeline, provider_config_id, credential_id, schedule_cron, timezone, is_active, "
        "parameters_json, next_run_at, status, created_at, updated_at, request_fingerprint) "
        "VALUES (@config_id, @t, @name, @pipeline, @provider_config_id, @credential_id, "
        "@schedule_cron, @timezone, @is_active, @parameters_json, @next_run_at, 'ACTIVE', @now, "
        "@now, @fingerprint)",
        {
            **params,
            "config_id": config_id,
            "t": tenant_id,
            "now": now,
            "fingerprint": fingerprint,
        },
        component="pipeline_configs",
        tenant_id=tenant_id,
    )
    row = _row(warehouse, tenant_id, config_id, with_fingerprint=True)
    if created == 0 and row.get("request_fingerprint") != fingerprint:
        raise conflict("Idempotency-Key was already used with a different config")
    return public_view(row), created == 1


def _row(
    warehouse: Warehouse, tenant_id: str, config_id: str, *, with_fingerprint: bool = False
) -> dict[str, Any]:
    if CONFIG_ID_RE.match(config_id):
        extra = ", request_fingerprint" if with_fingerprint else ""
        rows = warehouse.query(
            f"SELECT {_COLUMNS}{extra} FROM {_table(warehouse)} "
            "WHERE tenant_id = @t AND config_id = @id AND status = 'ACTIVE'",
            {"t": tenant_id, "id": config_id},
            component="pipeline_configs",
            tenant_id=tenant_id,
        )
        if rows:
            return rows[0]
    raise not_found("no such pipeline config")


def get_config(deps: Deps, tenant_id: str, config_id: str) -> dict[str, Any]:
    return public_view(_row(deps.warehouse, tenant_id, config_id))


def config_row(deps: Deps, tenant_id: str, config_id: str) -> dict[str, Any]:
    """The stored row (for starting runs); 404 for another tenant's or an unknown id."""
    return _row(deps.warehouse, tenant_id, config_id)


def list_configs(deps: Deps, tenant_id: str) -> list[dict[str, Any]]:
    warehouse = deps.warehouse
    rows = warehouse.query(
        f"SELECT {_COLUMNS} FROM {_table(warehouse)} WHERE tenant_id = @t AND status = 'ACTIVE' "
        "ORDER BY created_at, config_id",
        {"t": tenant_id},
        component="pipeline_configs",
        tenant_id=tenant_id,
    )
    return [public_view(r) for r in rows]


def _as_request(row: dict[str, Any]) -> dict[str, Any]:
    view = public_view(row)
    return {k: view[k] for k in PipelineConfigRequest.model_fields}


def update_config(
    deps: Deps, tenant_id: str, config_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """PUT (every field) or PATCH (some): validated as a whole, next run recomputed."""
    from shared.http import parse_model

    warehouse = deps.warehouse
    current = _row(warehouse, tenant_id, config_id)
    merged = {**_as_request(current), **changes}
    if merged["pipeline"] != current["pipeline"]:
        raise unprocessable(
            "validation_failed", "pipeline: can't be changed; create a new config", field="pipeline"
        )
    body = parse_model(PipelineConfigRequest, merged)
    credential_id = _check_references(deps, tenant_id, body)
    now = deps.clock()
    params = _row_params(body, credential_id, now)
    unchanged_schedule = (
        body.schedule_cron == current["schedule_cron"]
        and body.timezone == current["timezone"]
        and body.is_active == current["is_active"]
    )
    if unchanged_schedule:
        # Keep a pending fire time (possibly overdue) rather than skipping it.
        params["next_run_at"] = Typed("TIMESTAMP", current.get("next_run_at"))
    changed = warehouse.execute(
        f"UPDATE {_table(warehouse)} SET name = @name, provider_config_id = @provider_config_id, "
        "credential_id = @credential_id, schedule_cron = @schedule_cron, timezone = @timezone, "
        "is_active = @is_active, parameters_json = @parameters_json, next_run_at = @next_run_at, "
        "updated_at = @now WHERE tenant_id = @t AND config_id = @id AND status = 'ACTIVE'",
        {**params, "now": now, "t": tenant_id, "id": config_id},
        component="pipeline_configs",
        tenant_id=tenant_id,
    )
    if changed != 1:
        raise not_found("no such pipeline config")
    return get_config(deps, tenant_id, config_id)


def delete_config(deps: Deps, tenant_id: str, config_id: str) -> dict[str, Any]:
    """Soft delete: no more runs; history stays. Idempotent."""
    warehouse = deps.warehouse
    if not CONFIG_ID_RE.match(config_id):
        raise not_found("no such pipeline config")
    now = deps.clock()
    warehouse.execute(
        f"UPDATE {_table(warehouse)} SET status = 'DELETED', is_active = FALSE, "
        "next_run_at = NULL, updated_at = @now "
        "WHERE tenant_id = @t AND config_id = @id AND status = 'ACTIVE'",
        {"t": tenant_id, "id": config_id, "now": now},
        component="pipeline_configs",
        tenant_id=tenant_id,
    )
    rows = warehouse.query(
        f"SELECT updated_at FROM {_table(warehouse)} "
        "WHERE tenant_id = @t AND config_id = @id AND status = 'DELETED'",
        {"t": tenant_id, "id": config_id},
        component="pipeline_configs",
        tenant_id=tenant_id,
    )
    if not rows:
        raise not_found("no such pipeline config")
    return {"config_id": config_id, "status": "DELETED", "deleted_at": rows[0]["updated_at"]}

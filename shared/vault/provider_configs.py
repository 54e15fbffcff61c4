"""Provider configs: per tenant and provider, where its billing data lives and who is notified."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from shared.deps import Deps
from shared.platform.errors import ApiError, not_found, unavailable, unprocessable
from shared.platform.warehouse import Typed, Warehouse
from shared.vault.credential_validation import PROJECT_ID_RE, Provider
from shared.vault.reservations import Reservations

CONFIG_ID_RE = re.compile(r"^pcfg_[0-9a-f]{32}$")
# One ACTIVE config per provider is kept on the tenant's usage row.
CONFIGS = Reservations("config_reservations", "config_id", "tenant_provider_configs")
# Where the flagship pipeline reads from: only GCP billing exports live in BigQuery.
_BILLING_EXPORT_FIELDS = ("source_project_id", "billing_export_dataset", "billing_export_table")
_COLUMNS = (
    "config_id, provider, source_project_id, billing_export_dataset, billing_export_table, "
    "currency, notification_emails, credential_id, status, created_at, updated_at"
)


class ProviderConfigFields(BaseModel):
    """The replaceable part of a config (PUT body); unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    source_project_id: str | None = Field(default=None, pattern=PROJECT_ID_RE)
    billing_export_dataset: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,1024}$")
    billing_export_table: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,1024}$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    notification_emails: list[EmailStr] = Field(default_factory=list, max_length=20)
    credential_id: str | None = Field(default=None, max_length=64)

    @field_validator("notification_emails")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for email in value:
            seen.setdefault(email.lower(), email)
        return list(seen.values())


class CreateProviderConfigRequest(ProviderConfigFields):
    provider: Provider


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "config_id": row["config_id"],
        "provider": row["provider"],
        "source_project_id": row.get("source_project_id"),
        "billing_export_dataset": row.get("billing_export_dataset"),
        "billing_export_table": row.get("billing_export_table"),
        "currency": row["currency"],
        "notification_emails": list(row.get("notification_emails") or []),
        "credential_id": row.get("credential_id"),
        "status": row["status"],
        "created_at": _iso(row.get("created_at")),
        "updated_at": _iso(row.get("updated_at")),
    }


def _table(warehouse: Warehouse) -> str:
    return warehouse.central("tenant_provider_configs")


def _check_fields(deps: Deps, tenant_id: str, provider: str, body: ProviderConfigFields) -> None:
    """Cross-field rules pydantic can't name a field for; 422 naming the field."""
    for name in _BILLING_EXPORT_FIELDS:
        given = getattr(body, name) is not None
        if provider == "GCP" and not given:
            raise unprocessable(
                "validation_failed", f"{name}: required for provider GCP", field=name
            )
        if provider != "GCP" and given:
            raise unprocessable(
                "validation_failed",
                f"{name}: only GCP billing exports are read from BigQuery",
                field=name,
            )
    if body.credential_id is not None:
        _check_credential(deps.warehouse, tenant_id, provider, body.credential_id)


def _check_credential(warehouse: Warehouse, tenant_id: str, provider: str, cred_id: str) -> None:
    rows = warehouse.query(
        f"SELECT provider FROM {warehouse.central('tenant_cloud_credentials')} "
        "WHERE tenant_id = @t AND credential_id = @c AND status = 'ACTIVE'",
        {"t": tenant_id, "c": cred_id},
        component="provider_configs",
        tenant_id=tenant_id,
    )
    # Another tenant's id reads exactly like an unknown one.
    if not rows:
        raise unprocessable(
            "validation_failed",
            "credential_id: no active credential with this id",
            field="credential_id",
        )
    if rows[0]["provider"] != provider:
        raise unprocessable(
            "validation_failed",
            f"credential_id: the credential is not a {provider} credential",
            field="credential_id",
        )


def _field_params(body: ProviderConfigFields) -> dict[str, Any]:
    return {
        "project": Typed("STRING", body.source_project_id),
        "dataset": Typed("STRING", body.billing_export_dataset),
        "table": Typed("STRING", body.billing_export_table),
        "currency": body.currency,
        "emails": Typed("STRING", [str(e) for e in body.notification_emails]),
        "cred": Typed("STRING", body.credential_id),
    }


def _active(warehouse: Warehouse, tenant_id: str, config_id: str) -> dict[str, Any]:
    if CONFIG_ID_RE.match(config_id):
        rows = warehouse.query(
            f"SELECT {_COLUMNS} FROM {_table(warehouse)} "
            "WHERE tenant_id = @t AND config_id = @id AND status = 'ACTIVE'",
            {"t": tenant_id, "id": config_id},
            component="provider_configs",
            tenant_id=tenant_id,
        )
        if rows:
            return rows[0]
    raise not_found("no such provider config")


def list_configs(deps: Deps, tenant_id: str) -> list[dict[str, Any]]:
    warehouse = deps.warehouse
    rows = warehouse.query(
        f"SELECT {_COLUMNS} FROM {_table(warehouse)} WHERE tenant_id = @t AND status = 'ACTIVE' "
        "ORDER BY provider, created_at",
        {"t": tenant_id},
        component="provider_configs",
        tenant_id=tenant_id,
    )
    return [public_view(r) for r in rows]


def get_config(deps: Deps, tenant_id: str, config_id: str) -> dict[str, Any]:
    return public_view(_active(deps.warehouse, tenant_id, config_id))


def create_config(deps: Deps, tenant_id: str, body: CreateProviderConfigRequest) -> dict[str, Any]:
    """One ACTIVE config per tenant and provider: a second is 409 naming the first.

    Two statements (shared.vault.reservations): a conditional UPDATE of the
    tenant's usage row reserves the provider iff it has no ACTIVE config and
    no create of it in flight, then the row is inserted under the reservation.
    Concurrent creates all write that one row, so BigQuery runs them one after
    the other whatever partition their rows land in, and only one wins.
    A refused create writes nothing.
    """
    _check_fields(deps, tenant_id, body.provider, body)
    warehouse = deps.warehouse
    config_id = "pcfg_" + uuid.uuid4().hex
    now = deps.clock()
    reserved = CONFIGS.reserve(
        warehouse,
        tenant_id,
        config_id,
        body.provider,
        now,
        admitted=(
            "@p NOT IN (SELECT provider FROM in_flight) AND NOT EXISTS ("
            f"SELECT 1 FROM {_table(warehouse)} WHERE tenant_id = @t AND provider = @p "
            "AND status = 'ACTIVE')"
        ),
        component="provider_configs",
    )
    if not reserved:
        existing = [c for c in list_configs(deps, tenant_id) if c["provider"] == body.provider]
        raise ApiError(
            409,
            "conflict",
            f"a {body.provider} provider config already exists; replace it with PUT",
            field="provider",
            config_id=existing[0]["config_id"] if existing else None,
        )
    values = {
        "config_id": "@id",
        "tenant_id": "@t",
        "provider": "@provider",
        "source_project_id": "@project",
        "billing_export_dataset": "@dataset",
        "billing_export_table": "@table",
        "currency": "@currency",
        "notification_emails": "@emails",
        "credential_id": "@cred",
        "status": "'ACTIVE'",
        "created_at": "@now",
        "updated_at": "@now",
    }
    params = {"provider": body.provider, "now": now, **_field_params(body)}
    if not CONFIGS.insert_reserved(
        warehouse,
        tenant_id,
        config_id,
        columns=values,
        params=params,
        now=deps.clock(),
        component="provider_configs",
    ):
        raise unavailable("the provider config could not be stored in time; retry")
    return public_view(
        {
            **body.model_dump(),
            "notification_emails": [str(e) for e in body.notification_emails],
            "config_id": config_id,
            "status": "ACTIVE",
            "created_at": now,
            "updated_at": now,
        }
    )


def replace_config(
    deps: Deps, tenant_id: str, config_id: str, body: ProviderConfigFields
) -> dict[str, Any]:
    """PUT: every field is replaced; the provider stays."""
    warehouse = deps.warehouse
    current = _active(warehouse, tenant_id, config_id)
    _check_fields(deps, tenant_id, current["provider"], body)
    changed = warehouse.execute(
        f"UPDATE {_table(warehouse)} SET source_project_id = @project, "
        "billing_export_dataset = @dataset, billing_export_table = @table, "
        "currency = @currency, notification_emails = @emails, credential_id = @cred, "
        "updated_at = @now WHERE tenant_id = @t AND config_id = @id AND status = 'ACTIVE'",
        {"t": tenant_id, "id": config_id, "now": deps.clock(), **_field_params(body)},
        component="provider_configs",
        tenant_id=tenant_id,
    )
    if changed != 1:
        raise not_found("no such provider config")
    return get_config(deps, tenant_id, config_id)


def delete_config(deps: Deps, tenant_id: str, config_id: str) -> dict[str, Any]:
    """Soft delete (status DELETED); idempotent; afterwards the provider may get a new config."""
    warehouse = deps.warehouse
    if not CONFIG_ID_RE.match(config_id):
        raise not_found("no such provider config")
    warehouse.execute(
        f"UPDATE {_table(warehouse)} SET status = 'DELETED', deleted_at = @now, "
        "updated_at = @now WHERE tenant_id = @t AND config_id = @id AND status = 'ACTIVE'",
        {"t": tenant_id, "id": config_id, "now": deps.clock()},
        component="provider_configs",
        tenant_id=tenant_id,
    )
    rows = warehouse.query(
        f"SELECT deleted_at FROM {_table(warehouse)} "
        "WHERE tenant_id = @t AND config_id = @id AND status = 'DELETED'",
        {"t": tenant_id, "id": config_id},
        component="provider_configs",
        tenant_id=tenant_id,
    )
    if not rows:
        raise not_found("no such provider config")
    return {"config_id": config_id, "status": "DELETED", "deleted_at": _iso(rows[0]["deleted_at"])}

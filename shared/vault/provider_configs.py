"""Provider configs: per tenant and provider, where its billing data lives and who is notified."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import uuid
from typing import Any, Literal

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
    "settings_json, currency, notification_emails, credential_id, status, created_at, updated_at"
)
# Where AWS and Azure exports live: a validated JSON object in `settings_json`
# (STRING, not JSON: bqemulator mishandles JSON columns), under the provider's key.
_SETTINGS_KEYS = {"AWS": "aws", "AZURE": "azure"}

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# Object-key "safe characters", '/'-separated, no empty, '.' or '..' segment:
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html
_KEY_SEGMENT = r"[A-Za-z0-9!_.*'()-]+"
_PREFIX_RE = re.compile(rf"^{_KEY_SEGMENT}(?:/{_KEY_SEGMENT})*$")
# https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html
# (us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-5 ...)
_REGION_RE = r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]{4,9}-[1-9][0-9]?$"


def _segments(value: str) -> str:
    if any(part in (".", "..") for part in value.split("/")):
        raise ValueError("must not contain '.' or '..' path segments")
    return value


class AwsExportSettings(BaseModel):
    """A Data Export (CUR 2.0 or FOCUS) in the customer's S3 bucket."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    bucket: str = Field(min_length=3, max_length=63)
    # The export's S3 prefix: files land under <prefix>/<export_name>/data/...
    prefix: str = Field(min_length=1, max_length=512, pattern=_PREFIX_RE.pattern)
    # Data Exports' Export.Name: https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_bcm-data-exports_Export.html
    export_name: str = Field(pattern=r"^[0-9A-Za-z!_.*'()-]{1,128}$")
    export_type: Literal["FOCUS_1_2_AWS", "FOCUS_1_0_AWS", "CUR2"]
    region: str = Field(pattern=_REGION_RE)

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET_RE.match(value):
            raise ValueError(
                "must be 3-63 lower-case letters, digits, '.' or '-', "
                "starting and ending with a letter or digit"
            )
        if ".." in value:
            raise ValueError("must not contain two adjacent periods")
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            pass
        else:
            raise ValueError("must not be formatted as an IP address")
        if value.startswith(_BUCKET_PREFIXES) or value.endswith(_BUCKET_SUFFIXES):
            raise ValueError("uses a prefix or suffix that S3 reserves")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _segments(value)


# https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftstorage
# https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata
# 3-63 characters; letters and digits, each '-' between two of them.
_CONTAINER_RE = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_DIRECTORY_SEGMENT = r"[A-Za-z0-9!_.*'() -]+"


class AzureExportSettings(BaseModel):
    """A Cost Management FocusCost export in the customer's storage container."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    storage_account: str = Field(pattern=r"^[a-z0-9]{3,24}$")
    container: str = Field(min_length=3, max_length=63, pattern=_CONTAINER_RE)
    # The export's directory; runs land under <directory>/<export_name>/<date range>/...
    directory: str = Field(
        min_length=1,
        max_length=512,
        pattern=rf"^{_DIRECTORY_SEGMENT}(?:/{_DIRECTORY_SEGMENT})*$",
    )
    # Microsoft documents no pattern beyond ARM names; we accept what sits safely in a blob path.
    export_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    # FocusCost only: it holds both actual and amortized cost, and it is what
    # the FOCUS readers map. ActualCost/AmortizedCost exports are refused.
    dataset_version: Literal["1.0", "1.0r2", "1.2-preview"]

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str) -> str:
        return _segments(value)


class ProviderConfigFields(BaseModel):
    """The replaceable part of a config (PUT body); unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    source_project_id: str | None = Field(default=None, pattern=PROJECT_ID_RE)
    billing_export_dataset: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,1024}$")
    billing_export_table: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,1024}$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    notification_emails: list[EmailStr] = Field(default_factory=list, max_length=20)
    credential_id: str | None = Field(default=None, max_length=64)
    aws: AwsExportSettings | None = None
    azure: AzureExportSettings | None = None

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


def export_settings(row: dict[str, Any]) -> dict[str, Any] | None:
    """The provider's export settings of a stored row (AWS, Azure), or None."""
    raw = row.get("settings_json")
    return dict(json.loads(raw)) if raw else None


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    settings = export_settings(row)
    return {
        "config_id": row["config_id"],
        "provider": row["provider"],
        "source_project_id": row.get("source_project_id"),
        "billing_export_dataset": row.get("billing_export_dataset"),
        "billing_export_table": row.get("billing_export_table"),
        "aws": settings if row["provider"] == "AWS" else None,
        "azure": settings if row["provider"] == "AZURE" else None,
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
    for key in ("aws", "azure"):
        given = getattr(body, key) is not None
        if _SETTINGS_KEYS.get(provider) == key and not given:
            raise unprocessable(
                "validation_failed", f"{key}: required for provider {provider}", field=key
            )
        if _SETTINGS_KEYS.get(provider) != key and given:
            raise unprocessable(
                "validation_failed", f"{key}: only for provider {key.upper()}", field=key
            )
    if body.credential_id is not None:
        credential_type = _check_credential(deps.warehouse, tenant_id, provider, body.credential_id)
        _check_access(deps, tenant_id, provider, credential_type, body)


def _check_access(
    deps: Deps, tenant_id: str, provider: str, credential_type: str, body: ProviderConfigFields
) -> None:
    """AWS and Azure: the credential must list the export's prefix or directory (422 if not).

    Checked here, not on the credential's create: only the config knows where
    the export lives. A PUT that names a credential checks again.
    """
    if provider not in _SETTINGS_KEYS:
        return
    from shared.sources.identity import AccessProblem
    from shared.vault.credentials import decrypt_credential

    secret = decrypt_credential(deps, tenant_id, str(body.credential_id))
    try:
        # The request model requires the provider's settings block (aws / azure).
        if provider == "AWS" and body.aws is not None:
            from shared.sources.aws.access import aws_access

            aws_access(deps, tenant_id, credential_type, secret, body.aws).check()
        elif body.azure is not None:
            from shared.sources.azure.access import azure_access

            azure_access(deps, tenant_id, credential_type, secret, body.azure).check()
    except AccessProblem as problem:
        raise problem.to_api_error() from None


def _check_credential(warehouse: Warehouse, tenant_id: str, provider: str, cred_id: str) -> str:
    """The credential's type, if it is an ACTIVE one of this tenant and provider; 422 if not."""
    rows = warehouse.query(
        f"SELECT provider, credential_type FROM {warehouse.central('tenant_cloud_credentials')} "
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
    return str(rows[0]["credential_type"])


def _settings_json(body: ProviderConfigFields) -> str | None:
    settings = body.aws or body.azure
    return None if settings is None else json.dumps(settings.model_dump(), sort_keys=True)


def _field_params(body: ProviderConfigFields) -> dict[str, Any]:
    return {
        "project": Typed("STRING", body.source_project_id),
        "dataset": Typed("STRING", body.billing_export_dataset),
        "table": Typed("STRING", body.billing_export_table),
        "settings": Typed("STRING", _settings_json(body)),
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
        "settings_json": "@settings",
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
            "settings_json": _settings_json(body),
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
        "settings_json = @settings, currency = @currency, notification_emails = @emails, "
        "credential_id = @cred, "
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

"""The credentials vault: encrypted storage, plan provider slots, rotation and decryption."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from shared.deps import Deps
from shared.platform import audit
from shared.platform.errors import conflict, not_found, too_many_requests, unavailable
from shared.platform.identifiers import derived_id
from shared.platform.warehouse import Typed, Warehouse
from shared.vault.credential_validation import (
    CreateCredentialRequest,
    CredentialValidator,
    ValidatedSecret,
    check_tenant_binding,
    validate_secret,
)
from shared.vault.crypto import credential_aad
from shared.vault.reservations import LEASE, Reservations

log = logging.getLogger(__name__)

CREDENTIAL_ID_RE = re.compile(r"^cred_[0-9a-f]{32}$")
# A create reserves its provider slot on the usage row, then inserts its
# credential row under the reservation (shared.vault.reservations).
CREDENTIALS = Reservations("provider_reservations", "credential_id", "tenant_cloud_credentials")

# Every column but the ciphertext: nothing that reads metadata ever loads the secret.
_PUBLIC_COLUMNS = (
    "credential_id, provider, credential_type, credential_name, fingerprint, metadata_json, "
    "validation_status, validated_at, status, created_at, updated_at, rotated_at, deleted_at"
)


class CredentialUnavailable(LookupError):
    """No ACTIVE credential with this id for this tenant (deleted, shredded or never there)."""


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    """What a tenant may see of a credential: metadata, never the secret."""
    return {
        "credential_id": row["credential_id"],
        "provider": row["provider"],
        "credential_type": row["credential_type"],
        "credential_name": row["credential_name"],
        "status": row["status"],
        "fingerprint": row.get("fingerprint"),
        "validation_status": row.get("validation_status"),
        "validated_at": _iso(row.get("validated_at")),
        "metadata": json.loads(row.get("metadata_json") or "{}"),
        "created_at": _iso(row.get("created_at")),
        "updated_at": _iso(row.get("updated_at")),
        "rotated_at": _iso(row.get("rotated_at")),
    }


def _encrypt(deps: Deps, tenant_id: str, credential_id: str, secret: ValidatedSecret) -> Any:
    """Base64 ciphertext for FROM_BASE64(@ciphertext_b64), or a typed NULL without a secret."""
    if secret.payload is None:
        return Typed("STRING", None)
    sealed = deps.crypto.encrypt(
        tenant_id, secret.to_bytes(), credential_aad(tenant_id, credential_id)
    )
    return base64.b64encode(sealed).decode("ascii")


def _rows(warehouse: Warehouse, tenant_id: str, where: str, **params: Any) -> list[dict[str, Any]]:
    return warehouse.query(
        f"SELECT {_PUBLIC_COLUMNS} FROM {warehouse.central('tenant_cloud_credentials')} "
        f"WHERE tenant_id = @t AND {where} ORDER BY created_at, credential_id",
        {"t": tenant_id, **params},
        component="credentials",
        tenant_id=tenant_id,
    )


def _active_row(warehouse: Warehouse, tenant_id: str, credential_id: str) -> dict[str, Any]:
    # A malformed id, another tenant's id and an unknown id all look the same: 404.
    if CREDENTIAL_ID_RE.match(credential_id):
        rows = _rows(
            warehouse, tenant_id, "credential_id = @c AND status = 'ACTIVE'", c=credential_id
        )
        if rows:
            return rows[0]
    raise not_found("no such credential")


def list_credentials(deps: Deps, tenant_id: str) -> list[dict[str, Any]]:
    return [public_view(r) for r in _rows(deps.warehouse, tenant_id, "status = 'ACTIVE'")]


def get_credential(deps: Deps, tenant_id: str, credential_id: str) -> dict[str, Any]:
    return public_view(_active_row(deps.warehouse, tenant_id, credential_id))


# ----------------------------------------------------------------- provider slots


def _reserve_provider(
    warehouse: Warehouse, tenant_id: str, credential_id: str, provider: str, now: dt.datetime
) -> bool:
    """Admits a create: one conditional UPDATE on the tenant's usage row.

    The providers held are those of ACTIVE credentials plus those of
    reservations in flight. The create is admitted iff its provider is among
    them or they are fewer than the plan's `provider_limit`, read inside the
    same statement. A deleted credential or a crashed create frees its slot
    with no statement of its own. With an Idempotency-Key the id is the key's,
    and an id already reserved or stored is never admitted again, so a retried
    create stores one credential.
    """
    credentials = warehouse.central("tenant_cloud_credentials")
    held = (
        "SELECT provider FROM in_flight UNION DISTINCT "
        f"SELECT provider FROM {credentials} WHERE tenant_id = @t AND status = 'ACTIVE'"
    )
    return CREDENTIALS.reserve(
        warehouse,
        tenant_id,
        credential_id,
        provider,
        now,
        admitted=(
            f"@p IN ({held}) OR (SELECT COUNT(*) FROM ({held})) < ("
            f"SELECT provider_limit FROM {warehouse.central('tenant_subscriptions')} "
            "WHERE tenant_id = @t ORDER BY created_at LIMIT 1)"
        ),
        component="credentials",
    )


@dataclass(frozen=True)
class _Refusal:
    """Why an admission did not take a slot, read in one statement after it."""

    limit: int
    providers_held: list[str]
    in_flight_providers: bool
    # The same credential id: already stored (a replay), or reserved by a create in flight.
    existing: dict[str, Any] | None
    reserved: bool


def _refusal(
    warehouse: Warehouse, tenant_id: str, credential_id: str, now: dt.datetime
) -> _Refusal:
    credentials = warehouse.central("tenant_cloud_credentials")
    in_flight = CREDENTIALS.in_flight_sql(warehouse)
    rows = warehouse.query(
        f"SELECT (SELECT provider_limit FROM {warehouse.central('tenant_subscriptions')} "
        "WHERE tenant_id = @t ORDER BY created_at LIMIT 1) AS provider_limit, "
        f"ARRAY(SELECT DISTINCT provider FROM {credentials} WHERE tenant_id = @t "
        "AND status = 'ACTIVE') AS active, "
        f"ARRAY(SELECT DISTINCT provider FROM ({in_flight})) AS in_flight, "
        f"@c IN (SELECT credential_id FROM ({in_flight})) AS reserved, "
        f"ARRAY(SELECT AS STRUCT {_PUBLIC_COLUMNS} FROM {credentials} "
        "WHERE tenant_id = @t AND credential_id = @c LIMIT 1) AS existing",
        {"t": tenant_id, "c": credential_id, "fresh": now - LEASE},
        component="credentials",
        tenant_id=tenant_id,
    )
    row = rows[0]
    if row["provider_limit"] is None:
        raise not_found(f"no tenant '{tenant_id}'")
    active = set(row["active"] or [])
    in_flight_only = set(row["in_flight"] or []) - active
    existing = list(row["existing"] or [])
    return _Refusal(
        limit=int(row["provider_limit"]),
        providers_held=sorted(active | in_flight_only),
        in_flight_providers=bool(in_flight_only),
        existing=dict(existing[0]) if existing else None,
        reserved=bool(row["reserved"]),
    )


def credential_id_for(tenant_id: str, idempotency_key: str | None) -> str:
    """A fresh id, or the one id a tenant's Idempotency-Key always names."""
    if idempotency_key is None:
        return "cred_" + uuid.uuid4().hex
    return derived_id("cred_", tenant_id, idempotency_key)


def _same_request(stored: dict[str, Any], row: dict[str, Any]) -> bool:
    fields = ("provider", "credential_type", "credential_name", "fingerprint", "metadata_json")
    return all(stored.get(f) == row.get(f) for f in fields)


def _replay_or_refuse(refusal: _Refusal, row: dict[str, Any]) -> dict[str, Any]:
    """The answer to a create that was not admitted: a replay, a 409, or the plan's 429."""
    stored = refusal.existing
    if stored is not None:
        if not _same_request(stored, row):
            raise conflict(
                "Idempotency-Key was already used with a different credential",
                field="Idempotency-Key",
            )
        if stored["status"] != "ACTIVE":
            raise conflict(
                "Idempotency-Key was used for a credential that has since been deleted; "
                "use a new key",
                field="Idempotency-Key",
            )
        return public_view(stored)
    if refusal.reserved:
        raise conflict(
            "a create with this Idempotency-Key is in progress; retry",
            field="Idempotency-Key",
            headers={"Retry-After": "5"},
        )
    raise too_many_requests(
        f"plan limit reached: {refusal.limit} distinct providers "
        f"({', '.join(refusal.providers_held)}); delete every credential of one of them "
        f"or upgrade the plan to add {row['provider']}",
        # Only an in-flight create's slot frees itself; otherwise a delete must.
        retry_after_seconds=int(LEASE.total_seconds()) if refusal.in_flight_providers else 3600,
        limit=refusal.limit,
        providers_in_use=refusal.providers_held,
    )


# ----------------------------------------------------------------- lifecycle


def _insert_reserved(deps: Deps, tenant_id: str, row: dict[str, Any], ciphertext_b64: Any) -> bool:
    """Writes the ACTIVE row iff its reservation is still held (one INSERT ... SELECT).

    DML, not streaming: the row is UPDATEd later (rotation, deletion).
    """
    values = {
        "credential_id": "@id",
        "tenant_id": "@t",
        "provider": "@provider",
        "credential_type": "@type",
        "credential_name": "@name",
        "ciphertext": "FROM_BASE64(@ciphertext_b64)",
        "key_reference": "@key_ref",
        "fingerprint": "@fingerprint",
        "metadata_json": "@metadata",
        "validation_status": "@validation",
        "validated_at": "@now",
        "status": "'ACTIVE'",
        "created_at": "@now",
        "updated_at": "@now",
    }
    params = {
        "provider": row["provider"],
        "type": row["credential_type"],
        "name": row["credential_name"],
        "ciphertext_b64": ciphertext_b64,
        "key_ref": deps.crypto.key_reference(tenant_id),
        "fingerprint": Typed("STRING", row["fingerprint"]),
        "metadata": row["metadata_json"],
        "validation": row["validation_status"],
        "now": row["created_at"],
    }
    return CREDENTIALS.insert_reserved(
        deps.warehouse,
        tenant_id,
        row["credential_id"],
        columns=values,
        params=params,
        now=deps.clock(),
        component="credentials",
    )


def create_credential(
    deps: Deps,
    tenant_id: str,
    request: CreateCredentialRequest,
    validator: CredentialValidator,
    idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Validate and encrypt, reserve the provider slot, insert the row: two statements.

    Returns the credential and whether this call created it: with an
    Idempotency-Key, a retry of a create that succeeded returns the same
    credential (a different body under the same key is a 409). Nothing is
    written before admission, so a refusal leaves nothing behind. A crash
    between the two statements leaves only a reservation, which holds its
    slot until LEASE has passed.
    """
    warehouse = deps.warehouse
    secret = validate_secret(request.provider, request.credential_type, request.credentials)
    check_tenant_binding(tenant_id, secret)
    validation_status = validator.check(secret)
    credential_id = credential_id_for(tenant_id, idempotency_key)
    now = deps.clock()
    row = {
        "credential_id": credential_id,
        "provider": request.provider,
        "credential_type": request.credential_type,
        "credential_name": request.credential_name,
        "fingerprint": secret.fingerprint,
        "metadata_json": json.dumps(request.metadata, sort_keys=True),
        "validation_status": validation_status,
        "validated_at": now,
        "status": "ACTIVE",
        "created_at": now,
        "updated_at": now,
        "rotated_at": None,
    }
    ciphertext_b64 = _encrypt(deps, tenant_id, credential_id, secret)
    if not _reserve_provider(warehouse, tenant_id, credential_id, request.provider, now):
        return _replay_or_refuse(_refusal(warehouse, tenant_id, credential_id, now), row), False
    if not _insert_reserved(deps, tenant_id, row, ciphertext_b64):
        raise unavailable("the credential could not be stored in time; retry")
    _audit(deps, tenant_id, "credential.created", row)
    return public_view(row), True


def rotate_credential(
    deps: Deps,
    tenant_id: str,
    credential_id: str,
    credentials: Any,
    validator: CredentialValidator,
) -> dict[str, Any]:
    """A new secret under the same id (same associated data), same checks as a create."""
    warehouse = deps.warehouse
    row = _active_row(warehouse, tenant_id, credential_id)
    if row["credential_type"] == "WORKLOAD_IDENTITY":
        raise conflict("a WORKLOAD_IDENTITY credential holds no secret to rotate")
    secret = validate_secret(row["provider"], row["credential_type"], credentials)
    check_tenant_binding(tenant_id, secret)
    validation_status = validator.check(secret)
    now = deps.clock()
    changed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_cloud_credentials')} SET "
        "ciphertext = FROM_BASE64(@ciphertext_b64), key_reference = @key_ref, "
        "fingerprint = @fingerprint, validation_status = @validation, validated_at = @now, "
        "rotated_at = @now, updated_at = @now "
        "WHERE tenant_id = @t AND credential_id = @c AND status = 'ACTIVE'",
        {
            "ciphertext_b64": _encrypt(deps, tenant_id, credential_id, secret),
            "key_ref": deps.crypto.key_reference(tenant_id),
            "fingerprint": Typed("STRING", secret.fingerprint),
            "validation": validation_status,
            "now": now,
            "t": tenant_id,
            "c": credential_id,
        },
        component="credentials",
        tenant_id=tenant_id,
    )
    if changed != 1:
        raise not_found("no such credential")  # deleted meanwhile
    row.update(
        fingerprint=secret.fingerprint,
        validation_status=validation_status,
        validated_at=now,
        rotated_at=now,
        updated_at=now,
    )
    _audit(deps, tenant_id, "credential.rotated", row)
    return public_view(row)


def delete_credential(deps: Deps, tenant_id: str, credential_id: str) -> dict[str, Any]:
    """Marks it DELETED and drops the ciphertext; frees the provider slot if it was the last.

    Idempotent: deleting a deleted credential answers the same. A credential
    that an active provider config names is refused (409) so no pipeline loses
    its credential silently.
    """
    warehouse = deps.warehouse
    if not CREDENTIAL_ID_RE.match(credential_id):
        raise not_found("no such credential")
    users = warehouse.query(
        f"SELECT config_id FROM {warehouse.central('tenant_provider_configs')} "
        "WHERE tenant_id = @t AND credential_id = @c AND status = 'ACTIVE' ORDER BY config_id",
        {"t": tenant_id, "c": credential_id},
        component="credentials",
        tenant_id=tenant_id,
    )
    if users:
        ids = [u["config_id"] for u in users]
        raise conflict(
            f"credential is used by provider config(s) {', '.join(ids)}; "
            "point them at another credential or delete them first",
            config_ids=ids,
        )
    now = deps.clock()
    changed = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_cloud_credentials')} SET status = 'DELETED', "
        "ciphertext = NULL, deleted_at = @now, updated_at = @now "
        "WHERE tenant_id = @t AND credential_id = @c AND status = 'ACTIVE'",
        {"now": now, "t": tenant_id, "c": credential_id},
        component="credentials",
        tenant_id=tenant_id,
    )
    if changed:
        # The slot frees itself: admission counts ACTIVE credentials only.
        _audit(deps, tenant_id, "credential.deleted", {"credential_id": credential_id})
    rows = _rows(warehouse, tenant_id, "credential_id = @c AND status = 'DELETED'", c=credential_id)
    if not rows:
        raise not_found("no such credential")
    return {
        "credential_id": credential_id,
        "status": "DELETED",
        "deleted_at": _iso(rows[0]["deleted_at"]),
    }


def decrypt_credential(deps: Deps, tenant_id: str, credential_id: str) -> dict[str, Any]:
    """The secret of an ACTIVE credential, for the pipeline runner only; {} if it has none.

    Raises CredentialUnavailable, or shared.vault.crypto.DecryptionError when the
    ciphertext is not this tenant's and this credential's (copied, tampered, shredded).
    """
    warehouse = deps.warehouse
    rows = warehouse.query(
        f"SELECT ciphertext FROM {warehouse.central('tenant_cloud_credentials')} "
        "WHERE tenant_id = @t AND credential_id = @c AND status = 'ACTIVE'",
        {"t": tenant_id, "c": credential_id},
        component="credentials",
        tenant_id=tenant_id,
    )
    if not rows:
        raise CredentialUnavailable(credential_id)
    ciphertext = rows[0]["ciphertext"]
    if ciphertext is None:
        return {}
    plaintext = deps.crypto.decrypt(
        tenant_id, bytes(ciphertext), credential_aad(tenant_id, credential_id)
    )
    secret: dict[str, Any] = json.loads(plaintext)
    return secret


def _audit(deps: Deps, tenant_id: str, action: str, row: dict[str, Any]) -> None:
    # Ids, provider and fingerprint only: the audit log is read by operators.
    detail = {
        k: row.get(k) for k in ("credential_id", "provider", "credential_type", "fingerprint")
    }
    audit.record(
        deps.warehouse,
        actor="tenant",
        action=action,
        now=deps.clock(),
        tenant_id=tenant_id,
        target=row.get("credential_id"),
        detail={k: v for k, v in detail.items() if v is not None},
    )

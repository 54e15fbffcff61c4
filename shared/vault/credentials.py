"""The credentials vault: encrypted storage, plan provider slots, rotation and decryption."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import uuid
from typing import Any

from shared.deps import Deps
from shared.platform import audit
from shared.platform.errors import conflict, not_found, too_many_requests, unavailable
from shared.platform.warehouse import Typed, Warehouse
from shared.tenancy.profiles import tenant_rows
from shared.vault.credential_validation import (
    CreateCredentialRequest,
    CredentialValidator,
    ValidatedSecret,
    validate_secret,
)
from shared.vault.crypto import credential_aad

log = logging.getLogger(__name__)

CREDENTIAL_ID_RE = re.compile(r"^cred_[0-9a-f]{32}$")
# A create inserts its row PENDING, takes a provider slot, then activates the
# row. A PENDING row older than this is a crashed create: its slot is reclaimed.
PENDING_LEASE = dt.timedelta(minutes=10)

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


def _quotas(warehouse: Warehouse) -> str:
    return warehouse.central("tenant_usage_quotas")


def _admit_provider(
    warehouse: Warehouse, tenant_id: str, provider: str, limit: int | None = None
) -> bool:
    """Takes (or re-confirms) the provider's slot on the tenant's one usage row.

    The plan's limit is read inside the same UPDATE (from the subscription row)
    unless given, so the check and the admission are one statement. The row is
    written even when the provider already holds a slot: that write conflicts
    with a concurrent slot release (`recompute_providers`), so BigQuery
    serialises the two and the release sees this create's PENDING row.
    IFNULL: the emulator reads a never-set REPEATED column as NULL (BigQuery: []).
    """
    if limit is None:
        limit_sql = (
            f"(SELECT provider_limit FROM {warehouse.central('tenant_subscriptions')} "
            "WHERE tenant_id = @t ORDER BY created_at LIMIT 1)"
        )
        params: dict[str, Any] = {"t": tenant_id, "p": provider}
    else:
        limit_sql = "@limit"
        params = {"t": tenant_id, "p": provider, "limit": limit}
    changed = warehouse.execute(
        f"UPDATE {_quotas(warehouse)} SET providers_in_use = IF("
        "@p IN UNNEST(IFNULL(providers_in_use, [])), providers_in_use, "
        "ARRAY_CONCAT(IFNULL(providers_in_use, []), [@p])), updated_at = CURRENT_TIMESTAMP() "
        "WHERE tenant_id = @t AND (@p IN UNNEST(IFNULL(providers_in_use, [])) "
        f"OR ARRAY_LENGTH(IFNULL(providers_in_use, [])) < {limit_sql})",
        params,
        component="credentials",
        tenant_id=tenant_id,
    )
    return changed == 1


def recompute_providers(warehouse: Warehouse, tenant_id: str, now: dt.datetime) -> None:
    """Slots = providers of ACTIVE credentials + slots of creates still in flight.

    One UPDATE, so it is atomic against admissions on the same row. A fresh
    PENDING row keeps its provider only if that provider already held a slot,
    so a recompute never admits anything by itself.
    """
    credentials = warehouse.central("tenant_cloud_credentials")
    warehouse.execute(
        f"UPDATE {_quotas(warehouse)} AS q SET providers_in_use = ARRAY("
        f"SELECT DISTINCT c.provider FROM {credentials} AS c WHERE c.tenant_id = @t "
        "AND (c.status = 'ACTIVE' OR (c.status = 'PENDING' AND c.created_at >= @fresh "
        "AND c.provider IN UNNEST(IFNULL(q.providers_in_use, [])))) ORDER BY c.provider), "
        "updated_at = CURRENT_TIMESTAMP() WHERE q.tenant_id = @t",
        {"t": tenant_id, "fresh": now - PENDING_LEASE},
        component="credentials",
        tenant_id=tenant_id,
    )


def _reclaim_stale_slots(warehouse: Warehouse, tenant_id: str, now: dt.datetime) -> bool:
    """Frees slots left by crashed creates; True if anything was reclaimed."""
    credentials = warehouse.central("tenant_cloud_credentials")
    rows = warehouse.query(
        f"SELECT (SELECT IFNULL(providers_in_use, []) FROM {_quotas(warehouse)} "
        "WHERE tenant_id = @t LIMIT 1) AS reserved, "
        f"ARRAY(SELECT DISTINCT provider FROM {credentials} WHERE tenant_id = @t "
        "AND (status = 'ACTIVE' OR (status = 'PENDING' AND created_at >= @fresh))) AS backed, "
        f"(SELECT COUNT(*) FROM {credentials} WHERE tenant_id = @t AND status = 'PENDING' "
        "AND created_at < @fresh) AS stale_rows",
        {"t": tenant_id, "fresh": now - PENDING_LEASE},
        component="credentials",
        tenant_id=tenant_id,
    )
    row = rows[0]
    stale_slots = set(row["reserved"] or []) - set(row["backed"] or [])
    if not stale_slots and not row["stale_rows"]:
        return False
    # Crashed creates left ciphertext behind: drop it with the rows.
    warehouse.execute(
        f"DELETE FROM {credentials} WHERE tenant_id = @t AND status = 'PENDING' "
        "AND created_at < @fresh",
        {"t": tenant_id, "fresh": now - PENDING_LEASE},
        component="credentials",
        tenant_id=tenant_id,
    )
    recompute_providers(warehouse, tenant_id, now)
    log.info("stale provider slots reclaimed", extra={"tenant_id": tenant_id})
    return bool(stale_slots)


def _refusal_facts(warehouse: Warehouse, tenant_id: str) -> tuple[int, list[str]]:
    """The plan's provider limit and the providers holding slots, for a 429 (one statement)."""
    rows = tenant_rows(warehouse, tenant_id, ("tenant_subscriptions", "tenant_usage_quotas"))
    subscription = rows["tenant_subscriptions"]
    if subscription is None:
        raise not_found(f"no tenant '{tenant_id}'")
    usage = rows["tenant_usage_quotas"] or {}
    return int(subscription["provider_limit"]), sorted(usage.get("providers_in_use") or [])


# ----------------------------------------------------------------- lifecycle


def _delete_pending(warehouse: Warehouse, tenant_id: str, credential_id: str) -> None:
    warehouse.execute(
        f"DELETE FROM {warehouse.central('tenant_cloud_credentials')} "
        "WHERE tenant_id = @t AND credential_id = @c AND status = 'PENDING'",
        {"t": tenant_id, "c": credential_id},
        component="credentials",
        tenant_id=tenant_id,
    )


def insert_pending(
    deps: Deps,
    tenant_id: str,
    request: CreateCredentialRequest,
    secret: ValidatedSecret,
    validation_status: str,
) -> dict[str, Any]:
    """Step 1 of a create: the encrypted row, invisible (PENDING) until its slot is held."""
    warehouse = deps.warehouse
    credential_id = "cred_" + uuid.uuid4().hex
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
    # DML, not streaming: the row is UPDATEd later (activation, rotation, deletion).
    warehouse.execute(
        f"INSERT INTO {warehouse.central('tenant_cloud_credentials')} (credential_id, "
        "tenant_id, provider, credential_type, credential_name, ciphertext, key_reference, "
        "fingerprint, metadata_json, validation_status, validated_at, status, created_at, "
        "updated_at) VALUES (@c, @t, @provider, @type, @name, FROM_BASE64(@ciphertext_b64), "
        "@key_ref, @fingerprint, @metadata, @validation, @now, 'PENDING', @now, @now)",
        {
            "c": credential_id,
            "t": tenant_id,
            "provider": request.provider,
            "type": request.credential_type,
            "name": request.credential_name,
            "ciphertext_b64": _encrypt(deps, tenant_id, credential_id, secret),
            "key_ref": deps.crypto.key_reference(tenant_id),
            "fingerprint": Typed("STRING", secret.fingerprint),
            "metadata": row["metadata_json"],
            "validation": validation_status,
            "now": now,
        },
        component="credentials",
        tenant_id=tenant_id,
    )
    return row


def create_credential(
    deps: Deps,
    tenant_id: str,
    request: CreateCredentialRequest,
    validator: CredentialValidator,
) -> dict[str, Any]:
    """Validate, encrypt, insert PENDING, take the provider slot, activate.

    A crash after the insert leaves an invisible PENDING row whose slot (if it
    took one) is reclaimed once PENDING_LEASE has passed; nothing leaks forever.
    """
    warehouse = deps.warehouse
    secret = validate_secret(request.provider, request.credential_type, request.credentials)
    validation_status = validator.check(secret)
    # Three statements on the happy path (insert, admit with the plan's limit
    # read inside the UPDATE, activate) plus one streamed audit row.
    row = insert_pending(deps, tenant_id, request, secret, validation_status)
    credential_id = row["credential_id"]
    admitted = _admit_provider(warehouse, tenant_id, request.provider)
    if not admitted and _reclaim_stale_slots(warehouse, tenant_id, deps.clock()):
        admitted = _admit_provider(warehouse, tenant_id, request.provider)
    if not admitted:
        _delete_pending(warehouse, tenant_id, credential_id)
        limit, in_use = _refusal_facts(warehouse, tenant_id)
        raise too_many_requests(
            f"plan limit reached: {limit} distinct providers ({', '.join(in_use)}); delete "
            f"every credential of one of them or upgrade the plan to add {request.provider}",
            retry_after_seconds=int(PENDING_LEASE.total_seconds()),
            limit=limit,
            providers_in_use=in_use,
        )
    activated = warehouse.execute(
        f"UPDATE {warehouse.central('tenant_cloud_credentials')} SET status = 'ACTIVE' "
        "WHERE tenant_id = @t AND credential_id = @c AND status = 'PENDING' "
        "AND created_at >= @fresh",
        {"t": tenant_id, "c": credential_id, "fresh": deps.clock() - PENDING_LEASE},
        component="credentials",
        tenant_id=tenant_id,
    )
    if activated != 1:
        # Slower than the lease: its slot may have been reclaimed meanwhile.
        _delete_pending(warehouse, tenant_id, credential_id)
        raise unavailable("the credential could not be stored in time; retry")
    _audit(deps, tenant_id, "credential.created", row)
    return public_view(row)


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
        recompute_providers(warehouse, tenant_id, now)
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

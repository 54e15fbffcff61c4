"""Append-only audit trail of admin, tenant and Stripe actions."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

from shared.platform.logs import request_id_var
from shared.platform.warehouse import Warehouse

log = logging.getLogger(__name__)


def record(
    warehouse: Warehouse,
    *,
    actor: str,
    action: str,
    now: dt.datetime,
    tenant_id: str | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit row. Streamed: the table is append-only, never UPDATEd or DELETEd.

    A failed audit write is logged, not raised: the action it records already
    happened and must still be reported to the caller.
    """
    row = {
        "audit_id": uuid.uuid4().hex,
        "tenant_id": tenant_id,
        "actor": actor,
        "action": action,
        "target": target,
        "detail_json": json.dumps(detail or {}, default=str, sort_keys=True),
        "request_id": request_id_var.get(),
        "occurred_at": now.isoformat(),
    }
    table = f"{warehouse.project}.{warehouse.settings.central_dataset}.tenant_audit_log"
    try:
        errors = warehouse.client.insert_rows_json(
            table, [row], row_ids=[row["audit_id"]], retry=warehouse.api_retry
        )
    except Exception:
        log.exception("audit write failed", extra={"action": action, "tenant_id": tenant_id})
        return
    if errors:
        log.error("audit write refused", extra={"action": action, "errors": str(errors)[:500]})

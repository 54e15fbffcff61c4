"""Who changed what: one append-only audit row per mutating tenant request, and its reader."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.platform.errors import unprocessable
from shared.platform.logs import request_id_var

if TYPE_CHECKING:
    from shared.http import ApiRequest, Handler
    from shared.platform.warehouse import Warehouse

log = logging.getLogger(__name__)

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Only ids go into target_ids: path arguments and `*_id` fields of the reply,
# never any other value of a body (secrets, keys, tokens live in those).
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
PAGE_SIZE_MAX = 200


def _target_ids(request: ApiRequest, body: Any) -> list[str]:
    ids = [v for v in request.args.values() if _ID_RE.match(v)]
    if isinstance(body, dict):
        for key, value in body.items():
            if key.endswith("_id") and isinstance(value, str) and _ID_RE.match(value):
                ids.append(value)
            elif key.endswith("_ids") and isinstance(value, list):
                ids.extend(v for v in value if isinstance(v, str) and _ID_RE.match(v))
    return list(dict.fromkeys(ids))[:50]


def record_request(
    request: ApiRequest,
    *,
    function_name: str,
    handler: Handler,
    status: int,
    error_code: str | None,
    body: Any,
) -> None:
    """Streams one row for a mutating request whose caller was authenticated.

    Streamed (the table is never updated). A failed write is logged, never
    raised: the action already happened and its answer must still reach the caller.
    """
    principal = request.principal
    if principal is None or request.raw.method not in MUTATING_METHODS:
        return
    warehouse = request.deps.warehouse
    row: dict[str, Any] = {
        "audit_id": uuid.uuid4().hex,
        "tenant_id": principal.tenant_id,
        "actor": f"member:{principal.member_id}",
        "action": f"{function_name}.{handler.__name__}",
        "target": request.raw.method + " " + request.raw.path[:200],
        "detail_json": None,
        "request_id": request_id_var.get(),
        "occurred_at": request.deps.clock().isoformat(),
        "member_id": principal.member_id,
        "role": principal.role,
        "target_ids": _target_ids(request, body),
        "outcome": "ok" if status < 400 else (error_code or "error"),
        "status_code": status,
    }
    table = f"{warehouse.project}.{warehouse.settings.central_dataset}.tenant_audit_log"
    try:
        errors = warehouse.client.insert_rows_json(
            table, [row], row_ids=[row["audit_id"]], retry=warehouse.api_retry
        )
    except Exception:
        log.exception("audit write failed", extra={"action": row["action"]})
        return
    if errors:
        log.error("audit write refused", extra={"action": row["action"]})


class AuditFilters(BaseModel):
    """GET /audit query: a time window, optional member and action, a page cursor."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: dt.datetime | None = Field(default=None, alias="from")
    to: dt.datetime | None = None
    member: str | None = Field(default=None, pattern=r"^mem_[A-Za-z0-9_]{1,80}$")
    action: str | None = Field(default=None, pattern=r"^[a-z_]{1,40}\.[a-z_]{1,60}$")
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=PAGE_SIZE_MAX)


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        occurred, audit_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return dt.datetime.fromisoformat(occurred), str(audit_id)
    except (ValueError, TypeError, binascii.Error):
        raise unprocessable(
            "invalid_cursor", "cursor is not one this API issued", field="cursor"
        ) from None


def _encode_cursor(occurred: dt.datetime, audit_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([occurred.isoformat(), audit_id]).encode()).decode()


def list_entries(warehouse: Warehouse, tenant_id: str, filters: AuditFilters) -> dict[str, Any]:
    """The tenant's audit rows, newest first, one page; `next_cursor` continues after it."""
    conditions = ["tenant_id = @t"]
    params: dict[str, Any] = {"t": tenant_id, "n": filters.limit + 1}
    if filters.from_ is not None:
        conditions.append("occurred_at >= @from_ts")
        params["from_ts"] = filters.from_
    if filters.to is not None:
        conditions.append("occurred_at < @to_ts")
        params["to_ts"] = filters.to
    if filters.member is not None:
        conditions.append("member_id = @member")
        params["member"] = filters.member
    if filters.action is not None:
        conditions.append("action = @action")
        params["action"] = filters.action
    if filters.cursor is not None:
        occurred, audit_id = _decode_cursor(filters.cursor)
        conditions.append("(occurred_at < @c_at OR (occurred_at = @c_at AND audit_id < @c_id))")
        params.update(c_at=occurred, c_id=audit_id)
    rows = warehouse.query(
        "SELECT audit_id, member_id, role, action, target_ids, outcome, status_code, "
        "request_id, occurred_at "
        f"FROM {warehouse.central('tenant_audit_log')} WHERE {' AND '.join(conditions)} "
        "ORDER BY occurred_at DESC, audit_id DESC LIMIT @n",
        params,
        component="audit",
        tenant_id=tenant_id,
    )
    page = rows[: filters.limit]
    entries = [{**row, "target_ids": list(row.get("target_ids") or [])} for row in page]
    next_cursor = (
        _encode_cursor(page[-1]["occurred_at"], str(page[-1]["audit_id"]))
        if len(rows) > filters.limit
        else None
    )
    return {"entries": entries, "next_cursor": next_cursor}

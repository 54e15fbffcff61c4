"""The outbox: alerts decided and recorded in one MERGE, then claimed, delivered and marked.

Rows are created by MERGE (DML), never streamed: the sender updates them.
Claiming is conditional DML, so two sender passes never hold the same message
at once; a pass that crashes after sending leaves the message PENDING with a
later `next_attempt_at`, so it is sent again (a duplicate, never a loss).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.platform.warehouse import Records, Warehouse

KINDS = (
    "budget_actual",
    "budget_forecast",
    "anomaly",
    "quota",
    "pipeline_failed",
    "pipeline_recovered",
    "welcome",
)
# Retry backoff: 1 min, doubling, at most 6 h between attempts.
BACKOFF_FIRST_SECONDS = 60
BACKOFF_MAX_SECONDS = 6 * 3600
_IN_FLIGHT = "in flight: "


def merge_statement(table: str, decisions_sql: str) -> str:
    """`MERGE outbox USING (<decisions>)`: the decision and the row are one statement.

    The decisions SELECT yields tenant_id, dedupe_key, kind, subject,
    facts_json and recipients_json; a key already in the outbox inserts
    nothing, so evaluating again (a repeated run, a retried tick) alerts once.
    """
    return (
        f"MERGE {table} AS o USING ({decisions_sql}) AS d "
        "ON o.tenant_id = d.tenant_id AND o.dedupe_key = d.dedupe_key "
        "WHEN NOT MATCHED THEN INSERT (message_id, tenant_id, dedupe_key, kind, subject, "
        "facts_json, recipients_json, created_at, status, attempts, next_attempt_at) "
        "VALUES (CONCAT('msg_', REPLACE(GENERATE_UUID(), '-', '')), d.tenant_id, d.dedupe_key, "
        "d.kind, d.subject, d.facts_json, d.recipients_json, @now, 'PENDING', 0, @now)"
    )


def record(
    warehouse: Warehouse,
    decisions_sql: str,
    params: Mapping[str, Any],
    now: dt.datetime,
    *,
    component: str,
    tenant_id: str | None = None,
    maximum_bytes_billed: int | None = None,
) -> int:
    """Runs one alert rule's MERGE; returns how many new messages it recorded.

    A rule that reads tenant cost data passes the plan's byte cap: its scan
    grows with the tenant's data, like a cost API query.
    """
    return warehouse.execute(
        merge_statement(warehouse.central("tenant_notification_outbox"), decisions_sql),
        {**params, "now": now},
        component=component,
        tenant_id=tenant_id,
        maximum_bytes_billed=maximum_bytes_billed,
    )


@dataclass(frozen=True)
class Message:
    message_id: str
    tenant_id: str
    kind: str
    subject: str
    facts: dict[str, Any]
    recipients: list[str]
    attempts: int
    created_at: dt.datetime


def claim(
    warehouse: Warehouse, now: dt.datetime, *, limit: int, max_attempts: int
) -> tuple[str, list[Message]]:
    """Takes up to `limit` due PENDING messages for this pass: two statements.

    The UPDATE counts the attempt and moves `next_attempt_at` past the
    backoff before anything is sent, so a crash mid-send retries later; a
    message out of attempts becomes FAILED instead of being claimed.
    """
    table = warehouse.central("tenant_notification_outbox")
    lease = _IN_FLIGHT + uuid.uuid4().hex
    warehouse.execute(
        f"UPDATE {table} SET "
        "status = IF(attempts >= @max, 'FAILED', status), "
        "last_error = IF(attempts >= @max, COALESCE(last_error, 'out of attempts'), @lease), "
        "attempts = IF(attempts >= @max, attempts, attempts + 1), "
        "next_attempt_at = IF(attempts >= @max, NULL, TIMESTAMP_ADD(@now, INTERVAL "
        "LEAST(@first * CAST(POW(2, LEAST(attempts, 20)) AS INT64), @most) SECOND)) "
        "WHERE status = 'PENDING' AND message_id IN (SELECT message_id FROM "
        f"{table} WHERE status = 'PENDING' AND next_attempt_at <= @now "
        "ORDER BY next_attempt_at, message_id LIMIT @limit)",
        {
            "now": now,
            "max": max_attempts,
            "lease": lease,
            "first": BACKOFF_FIRST_SECONDS,
            "most": BACKOFF_MAX_SECONDS,
            "limit": limit,
        },
        component="notify_sender",
    )
    rows = warehouse.query(
        "SELECT message_id, tenant_id, kind, subject, facts_json, recipients_json, attempts, "
        f"created_at FROM {table} WHERE status = 'PENDING' AND last_error = @lease "
        "ORDER BY created_at, message_id",
        {"lease": lease},
        component="notify_sender",
    )
    return lease, [
        Message(
            message_id=str(r["message_id"]),
            tenant_id=str(r["tenant_id"]),
            kind=str(r["kind"]),
            subject=str(r["subject"]),
            facts=dict(json.loads(r["facts_json"] or "{}")),
            recipients=[str(e) for e in json.loads(r["recipients_json"] or "[]")],
            attempts=int(r["attempts"]),
            created_at=r["created_at"],
        )
        for r in rows
    ]


def finish(
    warehouse: Warehouse,
    lease: str,
    outcomes: dict[str, str | None],
    now: dt.datetime,
    *,
    max_attempts: int,
) -> int:
    """Marks each claimed message once, in one MERGE: SENT, or PENDING/FAILED with its error.

    `outcomes` maps message id to None (delivered) or a safe error text.
    Only rows still holding this pass's lease change, so a late pass never
    overwrites a newer one.
    """
    if not outcomes:
        return 0
    results = Records(
        [
            {"message_id": ("STRING", mid), "error": ("STRING", (err or "")[:500] or None)}
            for mid, err in outcomes.items()
        ]
    )
    return warehouse.execute(
        f"MERGE {warehouse.central('tenant_notification_outbox')} AS o "
        "USING (SELECT r.message_id, r.error FROM UNNEST(@results) AS r) AS r "
        "ON o.message_id = r.message_id AND o.status = 'PENDING' AND o.last_error = @lease "
        "WHEN MATCHED THEN UPDATE SET "
        "status = IF(r.error IS NULL, 'SENT', IF(o.attempts >= @max, 'FAILED', 'PENDING')), "
        "sent_at = IF(r.error IS NULL, @now, NULL), "
        "next_attempt_at = IF(r.error IS NULL OR o.attempts >= @max, NULL, o.next_attempt_at), "
        "last_error = r.error",
        {"results": results, "lease": lease, "now": now, "max": max_attempts},
        component="notify_sender",
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def list_messages(warehouse: Warehouse, tenant_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """A tenant's recent messages (newest first), as the tenant may see them."""
    rows = warehouse.query(
        "SELECT message_id, kind, subject, facts_json, status, attempts, created_at, sent_at, "
        f"next_attempt_at, last_error FROM {warehouse.central('tenant_notification_outbox')} "
        "WHERE tenant_id = @t ORDER BY created_at DESC, message_id LIMIT @limit",
        {"t": tenant_id, "limit": limit},
        component="notifications",
        tenant_id=tenant_id,
    )
    return [
        {
            "message_id": r["message_id"],
            "kind": r["kind"],
            "subject": r["subject"],
            "facts": json.loads(r["facts_json"] or "{}"),
            "status": r["status"],
            "attempts": r["attempts"],
            "created_at": _iso(r["created_at"]),
            "sent_at": _iso(r["sent_at"]),
            "next_attempt_at": _iso(r["next_attempt_at"]),
            "last_error": None
            if (r["last_error"] or "").startswith(_IN_FLIGHT)
            else r["last_error"],
        }
        for r in rows
    ]

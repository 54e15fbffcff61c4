"""Reading runs: a tenant's run history with filters and cursor pagination, one run in detail."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.deps import Deps
from shared.platform.errors import bad_request, not_found

RUN_ID_RE = re.compile(r"^run_[0-9a-f]{32}$")
# Every run's created_at is within these bounds; a cursor outside them was not
# one we issued, and extreme instants (year 1 or 9999 with an offset) overflow
# the BigQuery client's conversion to UTC.
_CURSOR_MIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_CURSOR_MAX = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
_COLUMNS = (
    "run_id, config_id, pipeline, state, trigger, scheduled_for, run_date, attempt, retry_of, "
    "skip_reason, cancel_requested, admitted_at, started_at, finished_at, rows_written, "
    "error_code, error_message, created_at, date_from, date_to"
)


class RunFilters(BaseModel):
    """Query-string filters of GET /pipelines/runs."""

    model_config = ConfigDict(extra="forbid")

    state: str | None = Field(
        default=None, pattern=r"^(QUEUED|RUNNING|SUCCEEDED|FAILED|CANCELLED|SKIPPED)$"
    )
    config_id: str | None = Field(default=None, max_length=64)
    pipeline: str | None = Field(default=None, max_length=64)
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


def run_view(row: dict[str, Any]) -> dict[str, Any]:
    view = {k: row.get(k) for k in _COLUMNS.split(", ")}
    view["cancel_requested"] = bool(row.get("cancel_requested"))
    # Runs written before ranged runs existed cover their run_date alone.
    view["date_from"] = row.get("date_from") or row.get("run_date")
    view["date_to"] = row.get("date_to") or row.get("run_date")
    return view


def _encode_cursor(row: dict[str, Any]) -> str:
    raw = json.dumps([row["created_at"].isoformat(), row["run_id"]])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, run_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = dt.datetime.fromisoformat(created)
        if when.tzinfo is None or not RUN_ID_RE.match(run_id):
            raise ValueError
        # Normalised here, not by the client, so an out-of-range instant fails inside the try.
        when = when.astimezone(dt.UTC)
        if not _CURSOR_MIN <= when < _CURSOR_MAX:
            raise ValueError
    # Anything a crafted cursor can make decoding raise is the caller's error, never a 5xx.
    except (ValueError, TypeError, OverflowError, AttributeError):
        raise bad_request(
            "invalid_cursor", "cursor is not one this API returned", field="cursor"
        ) from None
    return when, run_id


def list_runs(deps: Deps, tenant_id: str, filters: RunFilters) -> dict[str, Any]:
    """Newest first; the cursor is the last row's (created_at, run_id), so pages never
    overlap or skip a row even while new runs arrive."""
    warehouse = deps.warehouse
    where = ["tenant_id = @t", "state != 'PENDING'"]
    params: dict[str, Any] = {"t": tenant_id, "limit": filters.limit + 1}
    for name in ("state", "config_id", "pipeline"):
        value = getattr(filters, name)
        if value is not None:
            where.append(f"{name} = @{name}")
            params[name] = value
    # A run matches when the data dates it covers overlap the filter's dates.
    if filters.date_from is not None:
        where.append("IFNULL(date_to, run_date) >= @date_from")
        params["date_from"] = filters.date_from
    if filters.date_to is not None:
        where.append("IFNULL(date_from, run_date) <= @date_to")
        params["date_to"] = filters.date_to
    if filters.cursor:
        created, run_id = _decode_cursor(filters.cursor)
        where.append("(created_at < @c_at OR (created_at = @c_at AND run_id < @c_id))")
        params.update(c_at=created, c_id=run_id)
    rows = warehouse.query(
        f"SELECT {_COLUMNS} FROM {warehouse.central('tenant_pipeline_runs')} "
        f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, run_id DESC LIMIT @limit",
        params,
        component="runs",
        tenant_id=tenant_id,
    )
    page = rows[: filters.limit]
    more = len(rows) > filters.limit
    return {
        "runs": [run_view(r) for r in page],
        "next_cursor": _encode_cursor(page[-1]) if more and page else None,
    }


def get_run_row(deps: Deps, tenant_id: str, run_id: str) -> dict[str, Any]:
    """The run's row; another tenant's run and an unknown id are the same 404."""
    if RUN_ID_RE.match(run_id):
        warehouse = deps.warehouse
        rows = warehouse.query(
            f"SELECT {_COLUMNS} FROM {warehouse.central('tenant_pipeline_runs')} "
            "WHERE tenant_id = @t AND run_id = @r AND state != 'PENDING'",
            {"t": tenant_id, "r": run_id},
            component="runs",
            tenant_id=tenant_id,
        )
        if rows:
            return rows[0]
    raise not_found("no such run")


def get_run(deps: Deps, tenant_id: str, run_id: str) -> dict[str, Any]:
    """The run with its step logs and DQ results, in one statement."""
    if not RUN_ID_RE.match(run_id):
        raise not_found("no such run")
    warehouse = deps.warehouse
    columns = ", ".join(f"r.{c}" for c in _COLUMNS.split(", "))
    rows = warehouse.query(
        f"SELECT {columns}, "
        "ARRAY(SELECT AS STRUCT s.step_name, s.status, s.message, s.error_code, s.attempts, "
        "s.started_at, s.finished_at, s.duration_ms, s.rows_processed, s.bytes_billed "
        f"FROM {warehouse.central('tenant_step_logs')} AS s "
        "WHERE s.tenant_id = r.tenant_id AND s.run_id = r.run_id "
        "ORDER BY s.started_at, s.step_name) AS steps, "
        "ARRAY(SELECT AS STRUCT d.step_name, d.check_name, d.status, d.expected, d.actual, "
        f"d.detail, d.checked_at FROM {warehouse.central('tenant_dq_results')} AS d "
        "WHERE d.tenant_id = r.tenant_id AND d.run_id = r.run_id "
        "ORDER BY d.checked_at, d.check_name) AS dq_results "
        f"FROM {warehouse.central('tenant_pipeline_runs')} AS r "
        "WHERE r.tenant_id = @t AND r.run_id = @r AND r.state != 'PENDING'",
        {"t": tenant_id, "r": run_id},
        component="runs",
        tenant_id=tenant_id,
    )
    if not rows:
        raise not_found("no such run")
    row = rows[0]
    return {
        **run_view(row),
        "steps": [dict(step) for step in row["steps"] or []],
        "dq_results": [dict(result) for result in row["dq_results"] or []],
    }


def get_retry_source(deps: Deps, tenant_id: str, run_id: str) -> dict[str, Any]:
    """The run with its earliest retry (`retry`: run_id and state, or None), in one statement;
    the retry is found by `retry_of` at any age, so a retry made long ago is still found."""
    if not RUN_ID_RE.match(run_id):
        raise not_found("no such run")
    warehouse = deps.warehouse
    table = warehouse.central("tenant_pipeline_runs")
    columns = ", ".join(f"r.{c}" for c in _COLUMNS.split(", "))
    rows = warehouse.query(
        f"SELECT {columns}, ARRAY(SELECT AS STRUCT x.run_id, x.state FROM {table} AS x "
        "WHERE x.tenant_id = r.tenant_id AND x.retry_of = r.run_id "
        "ORDER BY x.created_at, x.run_id LIMIT 1) AS retries "
        f"FROM {table} AS r WHERE r.tenant_id = @t AND r.run_id = @r AND r.state != 'PENDING'",
        {"t": tenant_id, "r": run_id},
        component="runs",
        tenant_id=tenant_id,
    )
    if not rows:
        raise not_found("no such run")
    row = dict(rows[0])
    retries = row.pop("retries") or []
    row["retry"] = dict(retries[0]) if retries else None
    return row

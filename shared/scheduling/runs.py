"""Run rows in `tenant_pipeline_runs`: creation, settling after admission, claim, finish, cancel.

Every state change is a conditional UPDATE whose `num_dml_affected_rows`
says whether it happened, so duplicated deliveries and concurrent callers
are harmless. Rows are created by DML (never streamed) because every one of
them is UPDATEd later.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from shared.pipelines.context import DqResult, PipelineOutcome, StepLog
from shared.platform.identifiers import derived_id
from shared.platform.warehouse import Records, Typed, Warehouse
from shared.scheduling.admission import LIVE_HORIZON, live_runs_sql

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED")
# A run admitted but never claimed this long is failed: its task is lost.
QUEUED_TIMEOUT = dt.timedelta(hours=1)
# A PENDING row this old lost its admission half-way (the caller crashed).
PENDING_TIMEOUT = dt.timedelta(minutes=10)
_MAX_ERROR_MESSAGE = 1000


def scheduled_run_id(config_id: str, scheduled_for: dt.datetime) -> str:
    """The same schedule instant of a config always gets the same run id (and task name)."""
    return derived_id("run_", config_id, scheduled_for.astimezone(dt.UTC).isoformat())


def manual_run_id() -> str:
    return "run_" + uuid.uuid4().hex


def retry_run_id(tenant_id: str, run_id: str) -> str:
    """A run has at most one retry: every retry request of it names the same new run."""
    return derived_id("run_", "retry", tenant_id, run_id)


def keyed_run_id(tenant_id: str, idempotency_key: str) -> str:
    """The run of a manual request with an Idempotency-Key: the same key names the same run."""
    return derived_id("run_", "key", tenant_id, idempotency_key, "0")


@dataclass(frozen=True)
class NewRun:
    run_id: str
    tenant_id: str
    config_id: str
    pipeline: str
    trigger: str  # SCHEDULE, MANUAL or RETRY
    run_date: dt.date
    scheduled_for: dt.datetime | None = None
    attempt: int = 1
    retry_of: str | None = None
    # The data dates the run covers; None: run_date alone (scheduled runs, single days).
    date_from: dt.date | None = None

    @property
    def date_to(self) -> dt.date:
        """A run's last data date is its run_date, for every kind of run."""
        return self.run_date


def _runs(warehouse: Warehouse) -> str:
    return warehouse.central("tenant_pipeline_runs")


def insert_pending(
    warehouse: Warehouse, runs: list[NewRun], now: dt.datetime, *, unless_exists: str | None = None
) -> int:
    """PENDING rows for runs about to ask for admission; an existing run id is left alone.

    With `unless_exists` (a run id) nothing is inserted if that run exists, at any
    age: a keyed request whose first run is there already is a replay or a
    conflict, never a partial insert of another body's runs.
    """
    if not runs:
        return 0
    guard = ""
    extra: dict[str, Any] = {}
    if unless_exists is not None:
        guard = (
            f" WHERE NOT EXISTS (SELECT 1 FROM {_runs(warehouse)} AS x WHERE x.run_id = @anchor)"
        )
        extra["anchor"] = unless_exists
    rows = Records(
        [
            dict(
                run_id=("STRING", r.run_id),
                tenant_id=("STRING", r.tenant_id),
                config_id=("STRING", r.config_id),
                pipeline=("STRING", r.pipeline),
                trigger=("STRING", r.trigger),
                run_date=("DATE", r.run_date),
                scheduled_for=("TIMESTAMP", r.scheduled_for),
                attempt=("INT64", r.attempt),
                retry_of=("STRING", r.retry_of),
                date_from=("DATE", r.date_from or r.run_date),
                date_to=("DATE", r.date_to),
            )
            for r in runs
        ],
    )
    # MERGE, not INSERT: two deliveries of one tick insert each run once
    # (concurrent MERGEs into one partition conflict and the loser reruns).
    return warehouse.execute(
        f"MERGE {_runs(warehouse)} AS r USING ("
        f"SELECT n.*, @now AS now FROM UNNEST(@rows) AS n{guard}) AS n "
        "ON r.run_id = n.run_id AND r.created_at >= n.now - INTERVAL 7 DAY "
        "WHEN NOT MATCHED THEN INSERT (run_id, tenant_id, config_id, pipeline, state, trigger, "
        "scheduled_for, run_date, attempt, retry_of, cancel_requested, created_at, updated_at, "
        "date_from, date_to) "
        "VALUES (n.run_id, n.tenant_id, n.config_id, n.pipeline, 'PENDING', n.trigger, "
        "n.scheduled_for, n.run_date, n.attempt, n.retry_of, FALSE, n.now, n.now, "
        "n.date_from, n.date_to)",
        {"rows": rows, "now": now, **extra},
        component="runs",
    )


def runs_by_id(warehouse: Warehouse, tenant_id: str, run_ids: list[str]) -> list[dict[str, Any]]:
    """The tenant's rows among `run_ids`, in any state (PENDING included), in no order."""
    return warehouse.query(
        f"SELECT run_id, config_id, run_date, date_from, date_to, state FROM {_runs(warehouse)} "
        "WHERE tenant_id = @t AND run_id IN UNNEST(@ids)",
        {"t": tenant_id, "ids": Typed("STRING", run_ids)},
        component="runs",
        tenant_id=tenant_id,
    )


def all_admitted(
    warehouse: Warehouse, tenant_id: str, run_ids: list[str], now: dt.datetime
) -> bool:
    """Whether every run is past admission or holds a slot: a concurrent duplicate request
    admitted them, so a refusal of ours must not discard them."""
    usage = warehouse.central("tenant_usage_quotas")
    rows = warehouse.query(
        f"SELECT COUNT(DISTINCT r.run_id) AS n FROM {_runs(warehouse)} AS r "
        "WHERE r.created_at >= @horizon AND r.tenant_id = @t AND r.run_id IN UNNEST(@ids) "
        "AND (r.state != 'PENDING' OR r.run_id IN (SELECT id FROM "
        f"{usage} AS u, UNNEST(IFNULL(u.active_run_ids, [])) AS id WHERE u.tenant_id = @t))",
        {"t": tenant_id, "ids": Typed("STRING", run_ids), "horizon": now - LIVE_HORIZON},
        component="runs",
        tenant_id=tenant_id,
    )
    return bool(rows) and rows[0]["n"] == len(set(run_ids))


def queue_admitted(warehouse: Warehouse, run_ids: list[str], now: dt.datetime) -> int:
    """PENDING -> QUEUED for runs admitted all at once (manual runs, backfills, retries)."""
    return warehouse.execute(
        f"UPDATE {_runs(warehouse)} SET state = 'QUEUED', admitted_at = @now, updated_at = @now "
        "WHERE created_at >= @horizon AND run_id IN UNNEST(@ids) AND state = 'PENDING'",
        {"now": now, "ids": Typed("STRING", run_ids), "horizon": now - LIVE_HORIZON},
        component="runs",
    )


def discard_pending(warehouse: Warehouse, run_ids: list[str], now: dt.datetime) -> int:
    """Refused manual runs leave nothing behind: their PENDING rows are deleted."""
    return warehouse.execute(
        f"DELETE FROM {_runs(warehouse)} "
        "WHERE created_at >= @horizon AND run_id IN UNNEST(@ids) AND state = 'PENDING'",
        {"ids": Typed("STRING", run_ids), "horizon": now - LIVE_HORIZON},
        component="runs",
    )


def settle(
    warehouse: Warehouse,
    tick_run_ids: list[str],
    tenant_ids: list[str],
    now: dt.datetime,
    stale_after: dt.timedelta,
) -> int:
    """One UPDATE after a tick's admission: its PENDING runs become QUEUED or SKIPPED (with
    the reason), and the reaper's work is done in the same statement: RUNNING runs
    silent for `stale_after` and QUEUED runs never claimed fail, PENDING rows a
    crashed caller left are skipped. Terminal states free their slots.
    """
    usage = warehouse.central("tenant_usage_quotas")
    subscriptions = warehouse.central("tenant_subscriptions")
    beats = warehouse.central("tenant_run_heartbeats")
    runs = _runs(warehouse)
    sql = f"""
UPDATE {runs} AS r
SET state = d.new_state, skip_reason = d.skip_reason, error_code = d.error_code,
    error_message = d.error_message,
    admitted_at = IF(d.new_state = 'QUEUED', d.now, r.admitted_at),
    finished_at = IF(d.new_state = 'QUEUED', r.finished_at, d.now), updated_at = d.now
FROM (
  WITH held AS ({live_runs_sql(warehouse)}),
  reasons AS (
    SELECT u.tenant_id, CASE
      WHEN IF(u.usage_date = @today, u.daily_runs, 0) >= s.daily_run_limit
        THEN 'daily_quota_exceeded'
      WHEN IF(u.usage_month = @month, u.monthly_runs, 0) >= s.monthly_run_limit
        THEN 'monthly_quota_exceeded'
      ELSE 'concurrent_limit_reached' END AS reason
    FROM {usage} AS u JOIN {subscriptions} AS s ON s.tenant_id = u.tenant_id
    WHERE u.tenant_id IN UNNEST(@tenants)
  ),
  ticked AS (
    SELECT p.run_id, p.state AS old_state,
      IF(h.run_id IS NULL, 'SKIPPED', 'QUEUED') AS new_state,
      IF(h.run_id IS NULL, IFNULL(x.reason, 'not_admitted'), CAST(NULL AS STRING)) AS skip_reason,
      CAST(NULL AS STRING) AS error_code, CAST(NULL AS STRING) AS error_message
    FROM {runs} AS p
    LEFT JOIN held AS h ON h.run_id = p.run_id
    LEFT JOIN reasons AS x ON x.tenant_id = p.tenant_id
    WHERE p.created_at >= @horizon AND p.state = 'PENDING' AND p.run_id IN UNNEST(@tick_ids)
  ),
  reaped AS (
    SELECT q.run_id, q.state AS old_state,
      IF(q.state = 'PENDING', 'SKIPPED', 'FAILED') AS new_state,
      IF(q.state = 'PENDING', 'admission_interrupted', CAST(NULL AS STRING)) AS skip_reason,
      CASE q.state WHEN 'RUNNING' THEN 'lost_heartbeat' WHEN 'QUEUED' THEN 'never_started'
        ELSE CAST(NULL AS STRING) END AS error_code,
      CASE q.state WHEN 'RUNNING' THEN 'lost heartbeat: the runner stopped reporting'
        WHEN 'QUEUED' THEN 'never started: the run was not picked up in time'
        ELSE CAST(NULL AS STRING) END AS error_message
    FROM {runs} AS q
    WHERE q.created_at >= @horizon AND (
      (q.state = 'RUNNING' AND IFNULL(q.started_at, q.created_at) < @stale_before
        AND q.run_id NOT IN (SELECT b.run_id FROM {beats} AS b WHERE b.beat_at >= @stale_before))
      OR (q.state = 'QUEUED' AND IFNULL(q.admitted_at, q.created_at) < @queued_before
        AND NOT {_sibling_running_sql(warehouse, "q")})
      OR (q.state = 'PENDING' AND q.created_at < @pending_before
        AND q.run_id NOT IN UNNEST(@tick_ids)))
  )
  SELECT t.*, @now AS now FROM (SELECT * FROM ticked UNION ALL SELECT * FROM reaped) AS t
  -- Twin rows (usage, subscription or run rows written twice by concurrent
  -- INSERT-only MERGEs) must not give a run two source rows: BigQuery refuses
  -- an UPDATE that matches a target row more than once.
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY t.run_id, t.old_state ORDER BY t.new_state) = 1
) AS d
WHERE r.run_id = d.run_id AND r.state = d.old_state AND r.created_at >= @horizon
"""
    return warehouse.execute(
        sql,
        {
            "tick_ids": Typed("STRING", tick_run_ids),
            "tenants": Typed("STRING", tenant_ids),
            "today": now.astimezone(dt.UTC).date(),
            "month": now.astimezone(dt.UTC).date().replace(day=1),
            "now": now,
            "horizon": now - LIVE_HORIZON,
            "stale_before": now - stale_after,
            "queued_before": now - QUEUED_TIMEOUT,
            "pending_before": now - PENDING_TIMEOUT,
        },
        component="trigger",
    )


def _sibling_running_sql(warehouse: Warehouse, alias: str) -> str:
    """True while another run of `alias`'s config is RUNNING."""
    return (
        f"EXISTS (SELECT 1 FROM {_runs(warehouse)} AS o WHERE o.tenant_id = {alias}.tenant_id "
        f"AND o.config_id = {alias}.config_id AND o.run_id != {alias}.run_id "
        "AND o.state = 'RUNNING' AND o.created_at >= @horizon)"
    )


def claim(warehouse: Warehouse, run_id: str, now: dt.datetime) -> bool:
    """QUEUED -> RUNNING; False if another delivery has it, it was cancelled, or it must wait.

    One run of a config runs at a time: each step replaces its window's rows with
    a DELETE and then an INSERT, and windows of nearby dates overlap, so two
    interleaved runs (a backfill, a manual run beside a scheduled one) could
    insert the overlap twice. Claims are UPDATEs of this table, so BigQuery runs
    two concurrent claims one after the other when their rows share a
    partition (runs created the same day), and the second sees the first.
    """
    return (
        warehouse.execute(
            f"UPDATE {_runs(warehouse)} AS r SET state = 'RUNNING', started_at = @now, "
            "updated_at = @now WHERE r.created_at >= @horizon AND r.run_id = @r "
            "AND r.state = 'QUEUED' AND NOT IFNULL(r.cancel_requested, FALSE) "
            f"AND NOT {_sibling_running_sql(warehouse, 'r')}",
            {"now": now, "r": run_id, "horizon": now - LIVE_HORIZON},
            component="runner",
        )
        # > 0, not == 1: should two concurrent ticks ever both insert a run id
        # (if BigQuery did not serialise their MERGEs), the twin rows move together.
        > 0
    )


def finish(warehouse: Warehouse, run_id: str, outcome: PipelineOutcome, now: dt.datetime) -> bool:
    """RUNNING -> the outcome's state (which frees the slot); False if the run was reaped."""
    message = (outcome.error_message or "")[:_MAX_ERROR_MESSAGE] or None
    return (
        warehouse.execute(
            f"UPDATE {_runs(warehouse)} SET state = @state, finished_at = @now, updated_at = @now, "
            "rows_written = @rows, error_code = @code, error_message = @message "
            "WHERE created_at >= @horizon AND run_id = @r AND state = 'RUNNING'",
            {
                "state": outcome.state,
                "now": now,
                "rows": outcome.rows_written,
                "code": Typed("STRING", outcome.error_code),
                "message": Typed("STRING", message),
                "r": run_id,
                "horizon": now - LIVE_HORIZON,
            },
            component="runner",
        )
        > 0
    )


def write_logs(
    warehouse: Warehouse,
    run: dict[str, Any],
    steps: list[StepLog],
    dq_results: list[DqResult],
    now: dt.datetime,
) -> None:
    """Step logs and DQ results of a run, one INSERT each (append-only, never mutated)."""
    _insert_for_run(
        warehouse,
        "tenant_step_logs",
        run,
        [
            {
                "log_id": ("STRING", uuid.uuid4().hex),
                "step_name": ("STRING", s.step_name),
                "status": ("STRING", s.status),
                "message": ("STRING", (s.message or "")[:_MAX_ERROR_MESSAGE] or None),
                "error_code": ("STRING", s.error_code),
                "attempts": ("INT64", s.attempts),
                "started_at": ("TIMESTAMP", s.started_at),
                "finished_at": ("TIMESTAMP", s.finished_at),
                "duration_ms": ("INT64", s.duration_ms),
                "rows_processed": ("INT64", s.rows_processed),
                "bytes_billed": ("INT64", s.bytes_billed),
                "logged_at": ("TIMESTAMP", now),
            }
            for s in steps
        ],
    )
    _insert_for_run(
        warehouse,
        "tenant_dq_results",
        run,
        [
            {
                "result_id": ("STRING", uuid.uuid4().hex),
                "step_name": ("STRING", d.step_name),
                "check_name": ("STRING", d.check_name),
                "status": ("STRING", d.status),
                "expected": ("STRING", d.expected),
                "actual": ("STRING", d.actual),
                "detail": ("STRING", d.detail),
                "checked_at": ("TIMESTAMP", d.checked_at),
            }
            for d in dq_results
        ],
    )


def _insert_for_run(
    warehouse: Warehouse, table: str, run: dict[str, Any], rows: list[dict[str, tuple[str, Any]]]
) -> None:
    """One INSERT of `rows` into a central log table, each row tagged with the run's keys.

    Column names come from this module's literals above, never from input.
    """
    if not rows:
        return
    columns = list(rows[0])
    warehouse.execute(
        f"INSERT INTO {warehouse.central(table)} (run_id, tenant_id, config_id, "
        f"{', '.join(columns)}) SELECT @run_id, @tenant_id, @config_id, "
        f"{', '.join(f'r.{c}' for c in columns)} FROM UNNEST(@rows) AS r",
        {
            "rows": Records(rows),
            "run_id": run["run_id"],
            "tenant_id": run["tenant_id"],
            "config_id": run["config_id"],
        },
        component="runner",
        tenant_id=str(run["tenant_id"]),
    )


def beat(warehouse: Warehouse, run_id: str, tenant_id: str, now: dt.datetime) -> None:
    """A liveness beat, streamed: beats never contend with the DML on run rows."""
    table = f"{warehouse.project}.{warehouse.settings.central_dataset}.tenant_run_heartbeats"
    errors = warehouse.client.insert_rows_json(
        table,
        [{"run_id": run_id, "tenant_id": tenant_id, "beat_at": now.isoformat()}],
        retry=warehouse.api_retry,
    )
    if errors:
        raise RuntimeError(f"heartbeat refused: {str(errors)[:200]}")


def waiting_for_its_turn(warehouse: Warehouse, run_id: str, now: dt.datetime) -> bool:
    """True if the run is QUEUED, not cancelled, and another run of its config is RUNNING."""
    rows = warehouse.query(
        f"SELECT {_sibling_running_sql(warehouse, 'r')} AS blocked FROM {_runs(warehouse)} AS r "
        "WHERE r.created_at >= @horizon AND r.run_id = @r AND r.state = 'QUEUED' "
        "AND NOT IFNULL(r.cancel_requested, FALSE) LIMIT 1",
        {"r": run_id, "horizon": now - LIVE_HORIZON},
        component="runner",
    )
    return bool(rows) and bool(rows[0]["blocked"])


def still_wanted(warehouse: Warehouse, run_id: str, now: dt.datetime) -> bool:
    """False once the run was cancelled or reaped: the runner should stop."""
    rows = warehouse.query(
        f"SELECT state, cancel_requested FROM {_runs(warehouse)} "
        "WHERE created_at >= @horizon AND run_id = @r",
        {"r": run_id, "horizon": now - LIVE_HORIZON},
        component="runner",
    )
    return bool(rows) and rows[0]["state"] == "RUNNING" and not rows[0]["cancel_requested"]


def request_cancel(warehouse: Warehouse, tenant_id: str, run_id: str, now: dt.datetime) -> int:
    """A queued run is cancelled at once (its slot freed); a running one is asked to stop."""
    return warehouse.execute(
        f"UPDATE {_runs(warehouse)} SET cancel_requested = TRUE, updated_at = @now, "
        "state = IF(state = 'RUNNING', state, 'CANCELLED'), "
        "finished_at = IF(state = 'RUNNING', finished_at, @now), "
        "error_code = IF(state = 'RUNNING', error_code, 'cancelled') "
        "WHERE created_at >= @horizon AND tenant_id = @t AND run_id = @r "
        "AND state IN ('PENDING', 'QUEUED', 'RUNNING')",
        {"now": now, "t": tenant_id, "r": run_id, "horizon": now - LIVE_HORIZON},
        component="runs",
        tenant_id=tenant_id,
    )

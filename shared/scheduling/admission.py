"""Quota admission: one conditional UPDATE on the usage rows admits runs for every entry point.

The usage row is the serialisation point. Two admissions for one tenant both
UPDATE its row, so production BigQuery runs one and aborts the other with
"concurrent update"; `job_retry` re-issues the loser, which then sees the
winner's counts. Nothing is read first and written later.

Daily and monthly counts are taken at admission and roll over in UTC without
a reset job (a stale `usage_date` counts as zero). A concurrency slot is the
run's id in `active_run_ids`: it is held from admission until the run row is
terminal, and the next admission prunes ids whose runs have ended, so a run
that finishes (or is reaped) releases its slot without another statement.
Run rows are inserted PENDING before they are admitted, so an id without a
live run row is never a slot anybody still needs.

bqemulator binds the parameters of `UPDATE ... SET @p ... FROM (... @q ...)`
in the wrong order, so every parameter is referenced inside FROM and the SET
clause reads them as columns; the statement means the same on BigQuery.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shared.platform.warehouse import Records, Warehouse

# Runs still holding a slot. PENDING counts: an admitted run is PENDING until
# its row is marked QUEUED, and must not lose its slot in between.
LIVE_STATES = ("PENDING", "QUEUED", "RUNNING")
# Run rows are partitioned by day of creation; no live run is older than this
# (the reaper ends stuck ones long before), so reads prune old partitions.
LIVE_HORIZON = dt.timedelta(days=7)


@dataclass(frozen=True)
class Request:
    """One run asking for admission; `order` ranks a tenant's runs (lower first)."""

    tenant_id: str
    run_id: str
    order: int = 0


def _requests_param(requests: list[Request]) -> Records:
    return Records(
        [
            {
                "tenant_id": ("STRING", r.tenant_id),
                "run_id": ("STRING", r.run_id),
                "ord": ("INT64", r.order),
            }
            for r in requests
        ]
    )


def utc_day(now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The UTC day and the first day of its month: the counters' windows."""
    today = now.astimezone(dt.UTC).date()
    return today, today.replace(day=1)


def live_runs_sql(warehouse: Warehouse) -> str:
    """(tenant_id, run_id) of every slot still held: ids in usage rows whose run is live."""
    return (
        "SELECT h.tenant_id, h.run_id FROM ("
        f"SELECT u.tenant_id, id AS run_id FROM {warehouse.central('tenant_usage_quotas')} AS u, "
        "UNNEST(IFNULL(u.active_run_ids, [])) AS id) AS h "
        f"JOIN {warehouse.central('tenant_pipeline_runs')} AS r "
        "ON r.run_id = h.run_id AND r.tenant_id = h.tenant_id "
        "WHERE r.created_at >= @horizon AND r.state IN ('PENDING', 'QUEUED', 'RUNNING')"
    )


def admit(
    warehouse: Warehouse, requests: list[Request], now: dt.datetime, *, all_or_nothing: bool
) -> int:
    """Admits as many requested runs per tenant as its daily, monthly and concurrent limits allow.

    One statement for any number of tenants. With `all_or_nothing` a tenant
    gets all of its requested runs or none (manual runs and backfills).
    Only PENDING runs are candidates and ids already holding a slot are not
    counted again, so a retried tick or request is harmless. Returns how many
    usage rows changed; the admitted ids are then in `active_run_ids`.
    """
    if not requests:
        return 0
    today, month = utc_day(now)
    usage = warehouse.central("tenant_usage_quotas")
    subscriptions = warehouse.central("tenant_subscriptions")
    runs = warehouse.central("tenant_pipeline_runs")
    sql = f"""
UPDATE {usage} AS u
SET usage_date = a.today, daily_runs = a.daily_used + a.granted,
    usage_month = a.month, monthly_runs = a.monthly_used + a.granted,
    active_run_ids = ARRAY_CONCAT(a.live_ids, a.granted_ids),
    running_runs = ARRAY_LENGTH(a.live_ids) + a.granted, updated_at = a.now
FROM (
  WITH asked AS (
    SELECT q.tenant_id, q.run_id, q.ord FROM UNNEST(@requests) AS q
  ),
  live AS (
    SELECT tenant_id, ARRAY_AGG(DISTINCT run_id ORDER BY run_id) AS ids
    FROM ({live_runs_sql(warehouse)}) AS l
    WHERE tenant_id IN (SELECT tenant_id FROM asked)
    GROUP BY tenant_id
  ),
  now_used AS (
    SELECT u2.tenant_id,
      IF(u2.usage_date = @today, u2.daily_runs, 0) AS daily_used,
      IF(u2.usage_month = @month, u2.monthly_runs, 0) AS monthly_used,
      IFNULL(l.ids, []) AS live_ids,
      s.daily_run_limit, s.monthly_run_limit, s.concurrent_run_limit
    FROM {usage} AS u2
    JOIN {subscriptions} AS s ON s.tenant_id = u2.tenant_id
    LEFT JOIN live AS l ON l.tenant_id = u2.tenant_id
    WHERE u2.tenant_id IN (SELECT tenant_id FROM asked)
    -- One row per tenant even if a usage or subscription row has a twin: the
    -- UPDATE may match each target row to one source row only.
    QUALIFY ROW_NUMBER() OVER (
      PARTITION BY u2.tenant_id ORDER BY u2.created_at, s.created_at) = 1
  ),
  fresh AS (
    SELECT k.tenant_id, k.run_id,
      ROW_NUMBER() OVER (PARTITION BY k.tenant_id ORDER BY k.ord, k.run_id) AS rn
    FROM asked AS k
    JOIN now_used AS n ON n.tenant_id = k.tenant_id
    WHERE k.run_id NOT IN UNNEST(n.live_ids) AND EXISTS (
      SELECT 1 FROM {runs} AS r WHERE r.run_id = k.run_id AND r.tenant_id = k.tenant_id
        AND r.created_at >= @horizon AND r.state = 'PENDING')
  ),
  decided AS (
    SELECT n.tenant_id, n.daily_used, n.monthly_used, n.live_ids, w.wanted,
      GREATEST(0, LEAST(w.wanted, n.daily_run_limit - n.daily_used,
        n.monthly_run_limit - n.monthly_used,
        n.concurrent_run_limit - ARRAY_LENGTH(n.live_ids))) AS possible
    FROM now_used AS n
    JOIN (SELECT tenant_id, COUNT(*) AS wanted FROM fresh GROUP BY tenant_id) AS w
      ON w.tenant_id = n.tenant_id
  ),
  granted AS (
    SELECT d.tenant_id, d.daily_used, d.monthly_used, d.live_ids,
      IF(@all_or_nothing AND d.possible < d.wanted, 0, d.possible) AS granted
    FROM decided AS d
  )
  SELECT g.tenant_id, g.daily_used, g.monthly_used, g.live_ids, g.granted,
    @today AS today, @month AS month, @now AS now,
    ARRAY(SELECT f.run_id FROM fresh AS f
          WHERE f.tenant_id = g.tenant_id AND f.rn <= g.granted ORDER BY f.rn) AS granted_ids
  FROM granted AS g
) AS a
WHERE u.tenant_id = a.tenant_id AND a.granted > 0
"""
    return warehouse.execute(
        sql,
        {
            "requests": _requests_param(requests),
            "today": today,
            "month": month,
            "now": now,
            "horizon": now - LIVE_HORIZON,
            "all_or_nothing": all_or_nothing,
        },
        component="admission",
        tenant_id=requests[0].tenant_id if len({r.tenant_id for r in requests}) == 1 else None,
    )

"""Pipeline alerts at run end: failed after a success, and the first success after failures."""

from __future__ import annotations

import datetime as dt
import logging

from google.api_core import exceptions as api_errors

from shared.notify import outbox
from shared.platform.warehouse import Warehouse

log = logging.getLogger(__name__)

# How far back the previous finished run of the same config is looked for.
LOOKBACK = dt.timedelta(days=35)


def decisions_sql(warehouse: Warehouse) -> str:
    """One row when this run changes its config's health, none otherwise.

    A config's first finished run counts as coming after a success, so a
    pipeline that never worked alerts once on its first failure.
    """
    runs = warehouse.central("tenant_pipeline_runs")
    return f"""
WITH this_run AS (
  SELECT run_id, tenant_id, config_id, pipeline, state, finished_at, run_date, error_code
  FROM {runs}
  WHERE created_at >= @since AND run_id = @r AND state IN ('SUCCEEDED', 'FAILED')
),
previous AS (
  SELECT ARRAY_AGG(p.state ORDER BY p.finished_at DESC, p.run_id DESC LIMIT 1)[SAFE_OFFSET(0)]
    AS state
  FROM {runs} AS p JOIN this_run AS t
    ON p.tenant_id = t.tenant_id AND p.config_id = t.config_id AND p.run_id != t.run_id
  WHERE p.created_at >= @since AND p.state IN ('SUCCEEDED', 'FAILED')
    AND p.finished_at <= t.finished_at
),
decided AS (
  SELECT t.*, CASE
      WHEN t.state = 'FAILED' AND IFNULL(p.state, 'SUCCEEDED') = 'SUCCEEDED' THEN 'pipeline_failed'
      WHEN t.state = 'SUCCEEDED' AND p.state = 'FAILED' THEN 'pipeline_recovered'
    END AS kind
  FROM this_run AS t CROSS JOIN previous AS p
)
SELECT tenant_id, CONCAT(kind, ':', config_id, ':', run_id) AS dedupe_key, kind,
  IF(kind = 'pipeline_failed',
    CONCAT('Pipeline ', pipeline, ' failed (', IFNULL(error_code, 'error'), ')'),
    CONCAT('Pipeline ', pipeline, ' succeeded again')) AS subject,
  TO_JSON_STRING(STRUCT(pipeline, config_id, run_id, CAST(run_date AS STRING) AS run_date,
    error_code, FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%SZ', finished_at) AS finished_at)) AS facts_json,
  CAST(NULL AS STRING) AS recipients_json
FROM decided WHERE kind IS NOT NULL"""


def record_run_end(warehouse: Warehouse, run_id: str, now: dt.datetime) -> int:
    """One MERGE after a run finished; best effort (the run's outcome is already stored)."""
    try:
        return outbox.record(
            warehouse,
            decisions_sql(warehouse),
            {"r": run_id, "since": now - LOOKBACK},
            now,
            component="notify_runs",
        )
    except api_errors.GoogleAPIError:
        log.exception("pipeline alert not recorded", extra={"run_id": run_id})
        return 0

"""Plan quota alerts: daily and monthly pipeline runs at 80 % (warning) and 100 % (blocked)."""

from __future__ import annotations

import datetime as dt

from shared.notify import outbox
from shared.platform.warehouse import Warehouse

THRESHOLDS = (80, 100)


def decisions_sql(warehouse: Warehouse) -> str:
    """Every tenant whose usage row changed lately, both windows and thresholds, in one SELECT."""
    usage = warehouse.central("tenant_usage_quotas")
    subscriptions = warehouse.central("tenant_subscriptions")
    return f"""
WITH current_use AS (
  SELECT u.tenant_id,
    IF(u.usage_date = @today, u.daily_runs, 0) AS daily_used, s.daily_run_limit,
    IF(u.usage_month = @month, u.monthly_runs, 0) AS monthly_used, s.monthly_run_limit
  FROM {usage} AS u JOIN {subscriptions} AS s ON s.tenant_id = u.tenant_id
  WHERE u.updated_at >= @since
  QUALIFY ROW_NUMBER() OVER (PARTITION BY u.tenant_id ORDER BY u.created_at, s.created_at) = 1
),
windows AS (
  SELECT tenant_id, 'daily' AS window_name, CAST(@today AS STRING) AS period,
    daily_used AS used, daily_run_limit AS run_limit FROM current_use
  UNION ALL
  SELECT tenant_id, 'monthly', FORMAT_DATE('%Y-%m', @month), monthly_used, monthly_run_limit
  FROM current_use
)
SELECT w.tenant_id,
  CONCAT('quota:', w.window_name, ':', w.period, ':', CAST(pct AS STRING)) AS dedupe_key,
  'quota' AS kind,
  IF(pct >= 100,
    CONCAT('The ', w.window_name, ' pipeline-run limit is reached: new runs wait for the next ',
      IF(w.window_name = 'daily', 'day', 'month')),
    CONCAT(w.window_name, ' pipeline runs at ', CAST(pct AS STRING), '% of the plan limit'))
    AS subject,
  TO_JSON_STRING(STRUCT(w.window_name AS `window`, w.period, w.used, w.run_limit AS `limit`,
    pct AS threshold_percent)) AS facts_json,
  CAST(NULL AS STRING) AS recipients_json
FROM windows AS w CROSS JOIN UNNEST(@thresholds) AS pct
WHERE w.run_limit > 0 AND w.used * 100 >= pct * w.run_limit"""


def record_quota_alerts(warehouse: Warehouse, now: dt.datetime) -> int:
    """One MERGE for every tenant whose usage changed in the last day."""
    today = now.astimezone(dt.UTC).date()
    return outbox.record(
        warehouse,
        decisions_sql(warehouse),
        {
            "today": today,
            "month": today.replace(day=1),
            "since": now - dt.timedelta(days=1),
            "thresholds": list(THRESHOLDS),
        },
        now,
        component="notify_quota",
    )

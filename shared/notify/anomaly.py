"""Cost anomalies: a (provider, service) day far outside its trailing 28-day median and MAD.

The rule (docs/notifications.md): over the 28 days before the evaluated day
(missing days count as zero), take the median m and the median absolute
deviation MAD. The day is an anomaly when |cost - m| > 3 x 1.4826 x MAD
(about three standard deviations for normal noise, but blind to the spikes
it is looking for) AND |cost - m| >= MIN_ABSOLUTE_CHANGE, so pennies never
page anyone, AND the series has at least MIN_HISTORY_DAYS days of cost in
the window (a new service is not an anomaly of itself). One MERGE for every
series of the tenant, however many there are.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging

from google.api_core import exceptions as api_errors

from shared.notify import outbox
from shared.platform.warehouse import Warehouse

log = logging.getLogger(__name__)

BASELINE_DAYS = 28
MAD_FACTOR = decimal.Decimal("4.4478")  # 3 x 1.4826: MAD scaled to a standard deviation
MIN_ABSOLUTE_CHANGE = decimal.Decimal("50")
MIN_HISTORY_DAYS = 14


def decisions_sql(warehouse: Warehouse, dataset_id: str) -> str:
    focus = warehouse.table(dataset_id, "focus_cost")
    return f"""
WITH daily AS (
  SELECT ProviderName AS provider, ServiceName AS service, BillingCurrency AS currency,
    DATE(ChargePeriodStart) AS day, SUM(BilledCost) AS cost
  FROM {focus}
  WHERE ChargePeriodStart >= TIMESTAMP(DATE_SUB(@day, INTERVAL {BASELINE_DAYS} DAY))
    AND ChargePeriodStart < TIMESTAMP(DATE_ADD(@day, INTERVAL 1 DAY))
    AND ProviderName IS NOT NULL AND ServiceName IS NOT NULL AND BillingCurrency IS NOT NULL
  GROUP BY provider, service, currency, day
),
series AS (SELECT DISTINCT provider, service, currency FROM daily),
filled AS (
  SELECT s.provider, s.service, s.currency, d AS day, IFNULL(x.cost, NUMERIC '0') AS cost,
    x.cost IS NOT NULL AS has_cost
  FROM series AS s
  CROSS JOIN UNNEST(GENERATE_DATE_ARRAY(DATE_SUB(@day, INTERVAL {BASELINE_DAYS} DAY),
    DATE_SUB(@day, INTERVAL 1 DAY))) AS d
  LEFT JOIN daily AS x
    ON x.provider = s.provider AND x.service = s.service AND x.currency = s.currency AND x.day = d
),
sorted_costs AS (
  SELECT provider, service, currency, COUNTIF(has_cost) AS history_days,
    ARRAY_AGG(cost ORDER BY cost) AS sorted
  FROM filled GROUP BY provider, service, currency
),
medians AS (
  SELECT provider, service, currency, history_days,
    (sorted[OFFSET(DIV({BASELINE_DAYS} - 1, 2))] + sorted[OFFSET(DIV({BASELINE_DAYS}, 2))]) / 2
      AS median
  FROM sorted_costs
),
mads AS (
  SELECT f.provider, f.service, f.currency, m.median, m.history_days,
    ARRAY_AGG(ABS(f.cost - m.median) ORDER BY ABS(f.cost - m.median)) AS deviations
  FROM filled AS f JOIN medians AS m
    ON m.provider = f.provider AND m.service = f.service AND m.currency = f.currency
  GROUP BY f.provider, f.service, f.currency, m.median, m.history_days
),
scored AS (
  SELECT a.provider, a.service, a.currency, a.median, a.history_days,
    (a.deviations[OFFSET(DIV({BASELINE_DAYS} - 1, 2))]
      + a.deviations[OFFSET(DIV({BASELINE_DAYS}, 2))]) / 2 AS mad,
    IFNULL(t.cost, NUMERIC '0') AS cost
  FROM mads AS a LEFT JOIN daily AS t
    ON t.provider = a.provider AND t.service = a.service AND t.currency = a.currency
      AND t.day = @day
)
SELECT @tenant AS tenant_id,
  CONCAT('anomaly:', provider, '/', service, '/', currency, ':', CAST(@day AS STRING))
    AS dedupe_key,
  'anomaly' AS kind,
  CONCAT(service, ' (', provider, ') cost on ', CAST(@day AS STRING), ': ',
    CAST(cost AS STRING), ' ', currency, ' against a usual ', CAST(median AS STRING))
    AS subject,
  TO_JSON_STRING(STRUCT(provider, service, currency, CAST(@day AS STRING) AS day,
    CAST(cost AS STRING) AS cost, CAST(median AS STRING) AS baseline_median,
    CAST(mad AS STRING) AS baseline_mad, IF(cost > median, 'spike', 'drop') AS direction,
    history_days)) AS facts_json,
  CAST(NULL AS STRING) AS recipients_json
FROM scored
WHERE history_days >= @min_history AND ABS(cost - median) >= @min_change
  AND ABS(cost - median) > @factor * mad"""


def record_anomalies(
    warehouse: Warehouse,
    tenant_id: str,
    dataset_id: str,
    day: dt.date,
    now: dt.datetime,
    *,
    maximum_bytes_billed: int | None = None,
) -> int:
    """One MERGE for all of a tenant's series on `day`; best effort after a run.

    The MERGE reads the tenant's focus_cost history: callers pass the plan's
    byte cap (cost_query.PLAN_CAPS) so it is bounded like a cost API query.
    """
    try:
        return outbox.record(
            warehouse,
            decisions_sql(warehouse, dataset_id),
            {
                "tenant": tenant_id,
                "day": day,
                "min_history": MIN_HISTORY_DAYS,
                "min_change": MIN_ABSOLUTE_CHANGE,
                "factor": MAD_FACTOR,
            },
            now,
            component="notify_anomaly",
            tenant_id=tenant_id,
            maximum_bytes_billed=maximum_bytes_billed,
        )
    except api_errors.GoogleAPIError:
        log.exception("anomaly alerts not recorded", extra={"tenant_id": tenant_id})
        return 0

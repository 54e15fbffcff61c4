"""Budget alerts: one MERGE per batch of tenants decides crossed thresholds and writes the outbox.

Each (budget, month, kind, threshold) is one dedupe key
`budget_<actual|forecast>:<budget_id>:<YYYY-MM>:<pct>`, so however often runs
repeat, each crossing is recorded (and sent) once per month. The decision and
the row are the same statement: no window where one exists without the other.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from google.api_core import exceptions as api_errors

from shared.deps import Deps
from shared.insights.cost_query import PLAN_CAPS
from shared.insights.forecast import RUN_RATE_DAYS, days_left, forecast_sql, month_bounds
from shared.notify import outbox
from shared.platform.identifiers import TENANT_ID_RE
from shared.platform.warehouse import Warehouse
from shared.tenancy.tenant_dataset import dataset_id_for

log = logging.getLogger(__name__)

# BigQuery references at most 1,000 tables per query; half leaves room.
TENANTS_PER_STATEMENT = 500
_DIMENSION_COLUMNS = {
    "provider": "ProviderName",
    "service": "ServiceName",
    "sub_account": "SubAccountId",
    "region": "RegionId",
    "charge_category": "ChargeCategory",
}


# Tag scopes are matched in the canonical scope JSON (budgets.scope_json) against
# the compact Tags JSON of focus_cost (`,"key":"value",` inside `,...,`); both
# hold only characters JSON leaves unescaped (shared.insights.dimensions).
def _literal(expr: str) -> str:
    """A regex matching `expr`'s text: the allowed characters' only metacharacters are . and +."""
    return f"REPLACE(REPLACE({expr}, '.', '[.]'), '+', '[+]')"


_KEY = _literal("""REGEXP_EXTRACT(entry, r'"tag:([^"]+)"')""")
_VALUES = _literal(r"""REGEXP_EXTRACT(entry, r':\[([^\]]*)\]')""")
_TAG_ENTRIES = r"""REGEXP_EXTRACT_ALL(b.scope_json, r'[{,]"tag:[^"]+":\[[^\]]*\]')"""
# Each scope entry `,"tag:k":["v1","v2"]` becomes the pattern `,"k":("v1"|"v2"),`.
# Joins and GROUP BY only, no subquery in an expression: bqemulator answers a
# statement holding a correlated scalar subquery (even in a CTE nobody reads)
# with no rows at all (docs/decisions.md, "Cost API and budgets").
_TAG_CTES = (
    "  budget_tags AS (\n"
    f"""    SELECT b.budget_id, CONCAT(',"', {_KEY}, '":(', """
    f"""REPLACE({_VALUES}, '","', '"|"'), '),') AS pattern\n"""
    f"    FROM budgets AS b CROSS JOIN UNNEST({_TAG_ENTRIES}) AS entry\n"
    "  ),\n"
    "  tagsets AS (SELECT DISTINCT tenant_id, tagset FROM costs),\n"
    "  tag_ok AS (\n"
    "    SELECT b.budget_id, s.tagset\n"
    "    FROM budgets AS b JOIN tagsets AS s ON s.tenant_id = b.tenant_id\n"
    "      LEFT JOIN budget_tags AS t ON t.budget_id = b.budget_id\n"
    "    GROUP BY b.budget_id, s.tagset\n"
    "    HAVING COUNTIF(NOT REGEXP_CONTAINS(s.tagset, t.pattern)) = 0\n"
    "  ),\n"
)


def _costs_sql(tables: list[str]) -> str:
    columns = ", ".join(f"c.{col} AS {name}" for name, col in _DIMENSION_COLUMNS.items())
    parts = [
        f"SELECT @tenant_{i} AS tenant_id, DATE(c.ChargePeriodStart) AS day, "
        f"c.BillingCurrency AS currency, {columns}, "
        "CONCAT(',', SUBSTR(IFNULL(c.Tags, '{}'), 2, LENGTH(IFNULL(c.Tags, '{}')) - 2), ',') "
        "AS tagset, SUM(c.BilledCost) AS cost "
        f"FROM {table} AS c "
        "WHERE c.ChargePeriodStart >= @start_ts AND c.ChargePeriodStart < @end_ts "
        f"GROUP BY day, currency, {', '.join(_DIMENSION_COLUMNS)}, tagset"
        for i, table in enumerate(tables)
    ]
    return "\n    UNION ALL ".join(parts)


def decisions_sql(budgets: str, tables: list[str]) -> str:
    """The outbox decisions (outbox.merge_statement) of every budget of the batch's tenants."""
    scope = " AND ".join(
        f"(JSON_QUERY(b.scope_json, '$.{name}') IS NULL OR "
        f"c.{name} IN UNNEST(JSON_VALUE_ARRAY(b.scope_json, '$.{name}')))"
        for name in _DIMENSION_COLUMNS
    )
    forecast = forecast_sql(
        "IFNULL(s.complete, 0)", "IFNULL(s.today_cost, 0)", "IFNULL(s.rate_sum, 0)", "@days_left"
    )
    facts = (
        "CONCAT('{\"budget_id\":', TO_JSON_STRING(d.budget_id), ',\"name\":', "
        "TO_JSON_STRING(d.name), ',\"period\":', TO_JSON_STRING(@period), "
        "',\"threshold_percent\":', CAST(d.pct AS STRING), ',\"amount\":', "
        "TO_JSON_STRING(CAST(d.amount AS STRING)), ',\"currency\":', TO_JSON_STRING(d.currency), "
        "',\"actual\":', TO_JSON_STRING(CAST(d.actual AS STRING)), ',\"forecast\":', "
        "TO_JSON_STRING(CAST(d.forecast AS STRING)), ',\"scope\":', d.scope_json, '}')"
    )
    return (
        "  WITH budgets AS (\n"
        "    SELECT b.budget_id, b.tenant_id, b.name, b.scope_json, b.amount, b.currency, "
        "b.actual_thresholds, b.forecast_thresholds\n"
        f"    FROM {budgets} AS b WHERE b.tenant_id IN UNNEST(@tenants) AND b.deleted_at IS NULL\n"
        "  ),\n"
        f"  costs AS (\n    {_costs_sql(tables)}\n  ),\n"
        f"{_TAG_CTES}"
        "  matched AS (\n"
        "    SELECT b.budget_id, c.day, c.cost FROM budgets AS b JOIN costs AS c\n"
        "      ON c.tenant_id = b.tenant_id AND c.currency = b.currency\n"
        "      JOIN tag_ok AS k ON k.budget_id = b.budget_id AND k.tagset = c.tagset\n"
        f"    WHERE {scope}\n"
        "  ),\n"
        "  spend AS (\n"
        "    SELECT budget_id,\n"
        "      SUM(IF(day >= @month_start AND day < @today, cost, NULL)) AS complete,\n"
        "      SUM(IF(day = @today, cost, NULL)) AS today_cost,\n"
        "      SUM(IF(day >= @rate_start AND day < @today, cost, NULL)) AS rate_sum\n"
        "    FROM matched GROUP BY budget_id\n"
        "  ),\n"
        "  status AS (\n"
        "    SELECT b.*, IFNULL(s.complete, 0) + IFNULL(s.today_cost, 0) AS actual,\n"
        f"      {forecast} AS forecast\n"
        "    FROM budgets AS b LEFT JOIN spend AS s ON s.budget_id = b.budget_id\n"
        "  ),\n"
        "  decided AS (\n"
        "    SELECT 'budget_actual' AS kind, st.*, pct FROM status AS st, "
        "UNNEST(st.actual_thresholds) AS pct WHERE st.actual >= st.amount * pct / 100\n"
        "    UNION ALL\n"
        "    SELECT 'budget_forecast' AS kind, st.*, pct FROM status AS st, "
        "UNNEST(st.forecast_thresholds) AS pct WHERE st.forecast >= st.amount * pct / 100\n"
        "  )\n"
        "  SELECT d.tenant_id, d.kind,\n"
        "    CONCAT(d.kind, ':', d.budget_id, ':', @period, ':', CAST(d.pct AS STRING)) "
        "AS dedupe_key,\n"
        "    CONCAT('Budget \"', d.name, '\" ', IF(d.kind = 'budget_actual', 'reached ', "
        "'is forecast to reach '), CAST(d.pct AS STRING), '% of ', CAST(d.amount AS STRING), "
        "' ', d.currency, ' in ', @period) AS subject,\n"
        f"    {facts} AS facts_json, CAST(NULL AS STRING) AS recipients_json\n"
        "  FROM decided AS d"
    )


def tenants_with_budgets(warehouse: Warehouse, tenant_ids: list[str]) -> list[str]:
    """Which of the tenants have a live budget (one statement): only their tables are read."""
    tenants = sorted({t for t in tenant_ids if TENANT_ID_RE.match(t)})
    if not tenants:
        return []
    rows = warehouse.query(
        f"SELECT DISTINCT tenant_id FROM {warehouse.central('tenant_budgets')} "
        "WHERE tenant_id IN UNNEST(@tenants) AND deleted_at IS NULL",
        {"tenants": tenants},
        component="budget_alerts",
    )
    return sorted(str(r["tenant_id"]) for r in rows)


def evaluate_budgets(deps: Deps, tenant_ids: list[str], now: dt.datetime) -> int:
    """Records every newly crossed threshold of the tenants' budgets; how many were recorded.

    One SELECT for which tenants have budgets, then one MERGE per
    TENANTS_PER_STATEMENT of those: a constant number, however many budgets
    (plus a plan lookup per tenant when its byte cap is not cached).
    """
    warehouse = deps.warehouse
    tenants = tenants_with_budgets(warehouse, tenant_ids)
    today = now.astimezone(dt.UTC).date()
    month_start, _ = month_bounds(today)
    rate_start = today - dt.timedelta(days=RUN_RATE_DAYS)
    window_start = min(month_start, rate_start)
    suffix = deps.settings.tenant_dataset_suffix
    recorded = 0
    for offset in range(0, len(tenants), TENANTS_PER_STATEMENT):
        batch = tenants[offset : offset + TENANTS_PER_STATEMENT]
        tables = [warehouse.table(dataset_id_for(t, suffix), "focus_cost") for t in batch]
        params: dict[str, Any] = {f"tenant_{i}": t for i, t in enumerate(batch)}
        params.update(
            tenants=batch,
            start_ts=dt.datetime.combine(window_start, dt.time(), dt.UTC),
            end_ts=dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC),
            month_start=month_start,
            today=today,
            rate_start=rate_start,
            days_left=days_left(today),
            period=today.strftime("%Y-%m"),
        )
        recorded += outbox.record(
            warehouse,
            decisions_sql(warehouse.central("tenant_budgets"), tables),
            params,
            now,
            component="budget_alerts",
            tenant_id=batch[0] if len(batch) == 1 else None,
            # The statement scans each tenant's focus_cost, each within its
            # plan's cap: the batch's cap is their sum.
            maximum_bytes_billed=sum(PLAN_CAPS.cap(deps, t) for t in batch),
        )
    return recorded


def record_budget_alerts(deps: Deps, tenant_id: str, now: dt.datetime) -> int:
    """Best effort after a run that changed focus_cost: a failure is logged, never raised."""
    try:
        return evaluate_budgets(deps, [tenant_id], now)
    except api_errors.GoogleAPIError:
        log.exception("budget alerts not recorded", extra={"tenant_id": tenant_id})
        return 0

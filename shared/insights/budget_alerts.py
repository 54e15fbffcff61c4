"""Budget alerts: one MERGE per batch of tenants decides crossed thresholds and writes the outbox.

Each (budget, month, kind, threshold) is one dedupe key
`budget_<actual|forecast>:<budget_id>:<YYYY-MM>:<pct>`, so however often runs
repeat, each crossing is recorded (and sent) once per month. The decision and
the row are the same statement: no window where one exists without the other.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.deps import Deps
from shared.insights.forecast import RUN_RATE_DAYS, days_left, forecast_sql, month_bounds
from shared.platform.identifiers import TENANT_ID_RE
from shared.tenancy.tenant_dataset import dataset_id_for

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
# One level of correlation only (the emulator mis-evaluates nested ones): each
# scope entry `,"tag:k":["v1","v2"]` becomes the pattern `,"k":("v1"|"v2"),`.
_TAG_MATCH = (
    "(SELECT COUNTIF(NOT REGEXP_CONTAINS(c.tagset, "
    f"""CONCAT(',"', {_KEY}, '":(', REPLACE({_VALUES}, '","', '"|"'), '),')))) """
    r"""FROM UNNEST(REGEXP_EXTRACT_ALL(b.scope_json, r'[{,]"tag:[^"]+":\[[^\]]*\]')) """
    "AS entry) = 0"
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


def evaluation_sql(outbox: str, budgets: str, tables: list[str]) -> str:
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
        f"MERGE {outbox} AS T\nUSING (\n"
        "  WITH budgets AS (\n"
        "    SELECT b.budget_id, b.tenant_id, b.name, b.scope_json, b.amount, b.currency, "
        "b.actual_thresholds, b.forecast_thresholds\n"
        f"    FROM {budgets} AS b WHERE b.tenant_id IN UNNEST(@tenants) AND b.deleted_at IS NULL\n"
        "  ),\n"
        f"  costs AS (\n    {_costs_sql(tables)}\n  ),\n"
        "  matched AS (\n"
        "    SELECT b.budget_id, c.day, c.cost FROM budgets AS b JOIN costs AS c\n"
        "      ON c.tenant_id = b.tenant_id AND c.currency = b.currency\n"
        f"    WHERE {scope}\n      AND {_TAG_MATCH}\n"
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
        f"    {facts} AS facts_json\n"
        "  FROM decided AS d\n"
        ") AS S\n"
        "ON T.tenant_id = S.tenant_id AND T.dedupe_key = S.dedupe_key\n"
        "WHEN NOT MATCHED THEN INSERT (message_id, tenant_id, dedupe_key, kind, subject, "
        "facts_json, recipients_json, created_at, status, attempts, next_attempt_at, sent_at, "
        "last_error)\n"
        "VALUES (CONCAT('msg_', REPLACE(GENERATE_UUID(), '-', '')), S.tenant_id, S.dedupe_key, "
        "S.kind, S.subject, S.facts_json, NULL, @now, 'PENDING', 0, @now, NULL, NULL)"
    )


def evaluate_budgets(deps: Deps, tenant_ids: list[str], now: dt.datetime) -> int:
    """Records every newly crossed threshold of the tenants' budgets; how many were recorded.

    One MERGE per TENANTS_PER_STATEMENT tenants (one for a single tenant).
    """
    tenants = sorted({t for t in tenant_ids if TENANT_ID_RE.match(t)})
    warehouse = deps.warehouse
    today = now.astimezone(dt.UTC).date()
    month_start, _ = month_bounds(today)
    rate_start = today - dt.timedelta(days=RUN_RATE_DAYS)
    window_start = min(month_start, rate_start)
    recorded = 0
    for offset in range(0, len(tenants), TENANTS_PER_STATEMENT):
        batch = tenants[offset : offset + TENANTS_PER_STATEMENT]
        suffix = deps.settings.tenant_dataset_suffix
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
            now=now,
        )
        sql = evaluation_sql(
            warehouse.central("tenant_notification_outbox"),
            warehouse.central("tenant_budgets"),
            tables,
        )
        recorded += warehouse.execute(sql, params, component="budget_alerts")
    return recorded

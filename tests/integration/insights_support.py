"""Helpers for the cost API and budget tests: FOCUS rows written straight into a tenant's table."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from shared.platform.warehouse import Records, Warehouse

# (day, provider, service, sub_account, region, currency, billed, effective, tags)
CostRow = tuple[dt.date, str, str, str, str | None, str, str, str, dict[str, str]]


def seed_focus(
    warehouse: Warehouse, dataset: str, tenant_id: str, rows: list[CostRow], hour: int = 0
) -> None:
    """INSERTs the rows (DML, as the FOCUS steps write) with lineage columns filled."""
    now = dt.datetime.now(dt.UTC)
    records = Records(
        [
            {
                "start": ("TIMESTAMP", dt.datetime.combine(day, dt.time(hour), dt.UTC)),
                "provider": ("STRING", provider),
                "service": ("STRING", service),
                "sub_account": ("STRING", sub_account),
                "region": ("STRING", region),
                "currency": ("STRING", currency),
                "billed": ("NUMERIC", decimal.Decimal(billed)),
                "effective": ("NUMERIC", decimal.Decimal(effective)),
                "tags": ("STRING", json.dumps(tags, separators=(",", ":"), sort_keys=True)),
                "run_date": ("DATE", day),
            }
            for (
                day,
                provider,
                service,
                sub_account,
                region,
                currency,
                billed,
                effective,
                tags,
            ) in (rows)
        ]
    )
    warehouse.execute(
        f"INSERT INTO {warehouse.table(dataset, 'focus_cost')} (ChargePeriodStart, "
        "ProviderName, ServiceName, SubAccountId, RegionId, ChargeCategory, BillingCurrency, "
        "BilledCost, EffectiveCost, Tags, x_tenant_id, x_pipeline_id, x_run_date, x_run_id, "
        "x_ingested_at) "
        "SELECT r.start, r.provider, r.service, r.sub_account, r.region, 'Usage', r.currency, "
        "r.billed, r.effective, r.tags, @t, 'pcf_test', r.run_date, 'run_test', @now "
        "FROM UNNEST(@rows) AS r",
        {"rows": records, "t": tenant_id, "now": now},
    )


def amounts(items: list[dict[str, Any]], field: str = "billed_cost") -> dict[Any, str]:
    return {item.get("currency"): item[field] for item in items}

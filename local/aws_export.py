"""Writes realistic AWS Data Exports (CUR 2.0, FOCUS 1.0 / 1.2) to S3 (moto), deterministic by seed.

Layout, as Data Exports delivers it
(https://docs.aws.amazon.com/cur/latest/userguide/dataexports-export-delivery.html):
    <prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/<export>-0000N.snappy.parquet | .csv.gz
and only after every data file, the manifest
(https://docs.aws.amazon.com/cur/latest/userguide/dataexports-manifest.html):
    <prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json
with `executionId`, `exportArn`, `columns` [{name, type}], `dataFiles` (s3:// URIs)
and `billingPeriod`.

Line items cover what breaks naive converters: on-demand usage with
`resource_tags` (a map), Savings Plan covered usage + negation + recurring fee,
RI discounted usage + RI fee + upfront fee, marketplace fees, credits, a refund,
tax. CUR money columns are doubles (as AWS writes them); the exact totals the
pipeline must reproduce are returned as Decimals of their shortest decimal text.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shared.sources.aws.columns import (
    CUR2,
    FOCUS_10_MONEY,
    FOCUS_10_STRINGS,
    FOCUS_12_ONLY_MONEY,
    FOCUS_12_ONLY_STRINGS,
    FOCUS_TIMES,
)

EXPORT_TYPES = ("CUR2", "FOCUS_1_2_AWS", "FOCUS_1_0_AWS")
NINE = Decimal("0.000000001")
ACCOUNTS = ("111122223333", "444455556666", "777788889999")
PAYER = "123456789012"
# (product code, service name, usage type, operation, unit, on-demand rate, family)
PRODUCTS = (
    ("AmazonEC2", "Amazon Elastic Compute Cloud", "BoxUsage:m5.large", "RunInstances", "Hrs", 0.096, "Compute Instance"),  # noqa: E501
    ("AmazonS3", "Amazon Simple Storage Service", "TimedStorage-ByteHrs", "PutObject", "GB-Mo", 0.023, "Storage"),  # noqa: E501
    ("AmazonRDS", "Amazon Relational Database Service", "InstanceUsage:db.r5.large", "CreateDBInstance", "Hrs", 0.25, "Database Instance"),  # noqa: E501
    ("AWSLambda", "AWS Lambda", "Request", "Invoke", "Requests", 0.0000002, "Serverless"),
    ("AmazonCloudWatch", "AmazonCloudWatch", "CW:MetricMonitorUsage", "MetricStorage", "Metrics", 0.3, "Metric"),  # noqa: E501
)  # fmt: skip
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
TEAMS = ("payments", "search", "platform", None)
# Line item types and their share of rows.
LINE_TYPES = (
    ("Usage", 0.55),
    ("SavingsPlanCoveredUsage", 0.12),
    ("SavingsPlanNegation", 0.12),
    ("SavingsPlanRecurringFee", 0.03),
    ("DiscountedUsage", 0.08),
    ("RIFee", 0.02),
    ("Fee", 0.03),
    ("Credit", 0.02),
    ("Refund", 0.01),
    ("Tax", 0.02),
)
MARKETPLACE_NAME = "Acme Observability SaaS"
SP_ARN = "arn:aws:savingsplans::123456789012:savingsplan/sp-0a1b2c3d"
RI_ARN = "arn:aws:ec2:us-east-1:123456789012:reserved-instances/ri-0f9e8d7c"

CUR2_STRINGS, CUR2_TIMES, CUR2_MONEY, CUR2_MAPS = CUR2.strings, CUR2.times, CUR2.money, CUR2.maps
FOCUS_STRINGS_10 = FOCUS_10_STRINGS
FOCUS_STRINGS_12 = (*FOCUS_10_STRINGS, *FOCUS_12_ONLY_STRINGS)
FOCUS_MONEY_10 = FOCUS_10_MONEY
FOCUS_MONEY_12 = (*FOCUS_10_MONEY, *FOCUS_12_ONLY_MONEY)
FOCUS_MAPS_10 = ("Tags", "x_CostCategories", "x_Discounts")
FOCUS_MAPS_12 = ("Tags", "x_Discounts")


def columns_of(
    export_type: str,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(strings, timestamps, decimals, maps) of an export type's files."""
    if export_type == "CUR2":
        return CUR2_STRINGS, CUR2_TIMES, CUR2_MONEY, CUR2_MAPS
    if export_type == "FOCUS_1_2_AWS":
        return FOCUS_STRINGS_12, FOCUS_TIMES, FOCUS_MONEY_12, FOCUS_MAPS_12
    if export_type == "FOCUS_1_0_AWS":
        return FOCUS_STRINGS_10, FOCUS_TIMES, FOCUS_MONEY_10, FOCUS_MAPS_10
    raise ValueError(f"unknown export type {export_type}")


def billed_column(export_type: str) -> str:
    """The column whose sum is the source's own total (what BilledCost must add up to)."""
    return "BilledCost" if export_type.startswith("FOCUS") else "line_item_unblended_cost"


def exact(value: float | None) -> Decimal:
    """A double as the decimal its shortest text says, at NUMERIC's 9 places (half away from 0)."""
    if value is None or np.isnan(value):
        return Decimal(0)
    return Decimal(repr(float(value))).quantize(NINE, rounding=ROUND_HALF_UP)


@dataclass
class Delivered:
    """What the generator wrote: keys, and the totals the pipeline must reproduce."""

    manifest_key: str
    data_keys: list[str]
    rows: int
    billed_total: Decimal
    columns: list[str] = field(default_factory=list)


def _period_bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.strptime(period + "-01", "%Y-%m-%d").replace(tzinfo=dt.UTC)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def _money(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    # 10 decimal places, as AWS writes costs; doubles, so the text is what matters.
    return np.round(rng.gamma(1.5, scale, n), 10)


def cur2_table(  # noqa: PLR0915 - one column per statement reads best here
    period: str, rows: int, seed: int, *, currency: str = "USD", net: bool = True
) -> pa.Table:
    """A CUR 2.0 period's line items, as an Arrow table of AWS's column types."""
    rng = np.random.default_rng(seed)
    start, end = _period_bounds(period)
    hours = int((end - start).total_seconds() // 3600)
    names = np.array([t for t, _ in LINE_TYPES])
    kind = rng.choice(names, size=rows, p=[p for _, p in LINE_TYPES])
    product = rng.integers(0, len(PRODUCTS), rows)
    hour = rng.integers(0, hours, rows)
    usage_start = np.datetime64(start.replace(tzinfo=None), "us") + hour.astype("timedelta64[h]")
    usage_end = usage_start + np.timedelta64(1, "h")
    amount = np.round(rng.gamma(2.0, 3.0, rows), 6)
    rate = np.array([PRODUCTS[p][5] for p in product])
    on_demand = np.round(amount * rate, 10)
    unblended = on_demand.copy()
    is_ = {t: kind == t for t, _ in LINE_TYPES}
    sp_eff = np.where(is_["SavingsPlanCoveredUsage"], np.round(on_demand * 0.72, 10), 0.0)
    ri_eff = np.where(is_["DiscountedUsage"], np.round(on_demand * 0.6, 10), 0.0)
    commitment = _money(rng, rows, 20.0)
    used = np.round(commitment * rng.uniform(0.7, 1.0, rows), 10)
    unused_upfront = _money(rng, rows, 0.5)
    unused_recurring = _money(rng, rows, 0.5)
    # Covered usage is billed at 0 under the plan; the negation cancels its on-demand cost.
    unblended = np.where(is_["SavingsPlanNegation"], -on_demand, unblended)
    unblended = np.where(is_["SavingsPlanRecurringFee"], commitment, unblended)
    unblended = np.where(is_["DiscountedUsage"], 0.0, unblended)
    unblended = np.where(is_["RIFee"], _money(rng, rows, 30.0), unblended)
    unblended = np.where(is_["Fee"], _money(rng, rows, 50.0), unblended)
    unblended = np.where(is_["Credit"] | is_["Refund"], -_money(rng, rows, 5.0), unblended)
    unblended = np.where(is_["Tax"], _money(rng, rows, 8.0), unblended)
    unblended = np.round(unblended, 10)
    net_cost = np.round(unblended * 0.95, 10)  # an EDP discount, where the account has one
    fee = is_["Fee"]
    upfront = fee & (rng.random(rows) < 0.3)  # an RI's upfront fee is a Fee line with its ARN
    marketplace = fee & ~upfront
    sp = (
        is_["SavingsPlanCoveredUsage"] | is_["SavingsPlanNegation"] | is_["SavingsPlanRecurringFee"]
    )
    ri = is_["DiscountedUsage"] | is_["RIFee"] | upfront
    usage_like = (
        is_["Usage"]
        | is_["SavingsPlanCoveredUsage"]
        | is_["DiscountedUsage"]
        | is_["SavingsPlanNegation"]
    )
    account = rng.integers(0, len(ACCOUNTS), rows)
    region = rng.integers(0, len(REGIONS), rows)
    team = rng.integers(0, len(TEAMS), rows)

    def pick(
        values: tuple[Any, ...], index: np.ndarray, where: np.ndarray | None = None
    ) -> list[Any]:
        out = [values[i] for i in index]
        return out if where is None else [v if w else None for v, w in zip(out, where, strict=True)]

    product_code = [PRODUCTS[p][0] for p in product]
    product_code = [
        "AWSMarketplace" if m else c for c, m in zip(product_code, marketplace, strict=True)
    ]
    kinds = kind.tolist()
    bill_type = [
        "Refund" if k == "Refund" else "Purchase" if u else "Anniversary"
        for k, u in zip(kinds, upfront, strict=True)
    ]
    resource = [f"i-{seed:04x}{i % 997:08x}" if u else None for i, u in enumerate(usage_like)]
    tags = [
        (
            [("user_team", TEAMS[t]), ("user_env", "prod" if t % 2 else "dev")]
            if TEAMS[t] and u
            else []
        )
        for t, u in zip(team, usage_like, strict=True)
    ]
    description = [
        "Tax for product code " + c if k == "Tax" else f"{k} {c}"
        for k, c in zip(kinds, product_code, strict=True)
    ]
    iso_start = np.full(rows, np.datetime64(start.replace(tzinfo=None), "us"))
    iso_end = np.full(rows, np.datetime64(end.replace(tzinfo=None), "us"))
    ts = pa.timestamp("us", tz="UTC")
    data: dict[str, pa.Array] = {
        "bill_bill_type": pa.array(bill_type),
        "bill_billing_entity": pa.array(["AWS Marketplace" if m else "AWS" for m in marketplace]),
        "bill_invoice_id": pa.array([None] * rows, pa.string()),
        "bill_invoicing_entity": pa.array(["Amazon Web Services, Inc."] * rows),
        "bill_payer_account_id": pa.array([PAYER] * rows),
        "bill_payer_account_name": pa.array(["Acme Payer"] * rows),
        "line_item_usage_account_id": pa.array(pick(ACCOUNTS, account)),
        "line_item_usage_account_name": pa.array([f"acme-{ACCOUNTS[a][-4:]}" for a in account]),
        "line_item_line_item_type": pa.array(kinds),
        "line_item_product_code": pa.array(product_code),
        "line_item_usage_type": pa.array([PRODUCTS[p][2] for p in product]),
        "line_item_operation": pa.array([PRODUCTS[p][3] for p in product]),
        "line_item_availability_zone": pa.array(
            [REGIONS[r] + "a" if u else None for r, u in zip(region, usage_like, strict=True)]
        ),
        "line_item_resource_id": pa.array(resource, pa.string()),
        "line_item_currency_code": pa.array([currency] * rows),
        "line_item_line_item_description": pa.array(description),
        "line_item_legal_entity": pa.array(["Amazon Web Services, Inc."] * rows),
        "pricing_unit": pa.array(pick(tuple(p[4] for p in PRODUCTS), product, usage_like)),
        "pricing_term": pa.array(
            [
                "Reserved" if r else "OnDemand" if u else None
                for r, u in zip(ri, usage_like, strict=True)
            ]
        ),
        "pricing_rate_code": pa.array(
            [f"{PRODUCTS[p][0][:4].upper()}{p:04d}.JRTCKXETXF.6YS6EN2CT7" for p in product]
        ),
        "pricing_purchase_option": pa.array(
            [
                "Reserved Instances" if r else "On-Demand" if u else None
                for r, u in zip(ri, usage_like, strict=True)
            ]
        ),
        # A marketplace line names the seller's product, never the AWS service it runs on.
        "product_product_name": pa.array(
            [
                MARKETPLACE_NAME if m else PRODUCTS[p][1]
                for p, m in zip(product, marketplace, strict=True)
            ]
        ),
        "product_region_code": pa.array(pick(REGIONS, region)),
        "product_servicecode": pa.array([PRODUCTS[p][0] for p in product]),
        "product_sku": pa.array([f"SKU{p:04d}{r}" for p, r in zip(product, region, strict=True)]),
        "product_product_family": pa.array([PRODUCTS[p][6] for p in product]),
        "reservation_reservation_a_r_n": pa.array([RI_ARN if r else None for r in ri], pa.string()),
        "savings_plan_savings_plan_a_r_n": pa.array(
            [SP_ARN if s else None for s in sp], pa.string()
        ),
        "bill_billing_period_start_date": pa.array(iso_start, ts),
        "bill_billing_period_end_date": pa.array(iso_end, ts),
        "line_item_usage_start_date": pa.array(usage_start, ts),
        "line_item_usage_end_date": pa.array(usage_end, ts),
        "line_item_usage_amount": pa.array(np.where(usage_like, amount, 0.0)),
        "line_item_unblended_rate": pa.array(rate),
        "line_item_unblended_cost": pa.array(unblended),
        "pricing_public_on_demand_cost": pa.array(np.where(usage_like, on_demand, 0.0)),
        "pricing_public_on_demand_rate": pa.array(rate),
        "reservation_effective_cost": pa.array(ri_eff),
        "reservation_unused_amortized_upfront_fee_for_billing_period": pa.array(
            np.where(is_["RIFee"], unused_upfront, 0.0)
        ),
        "reservation_unused_recurring_fee": pa.array(np.where(is_["RIFee"], unused_recurring, 0.0)),
        "savings_plan_savings_plan_effective_cost": pa.array(sp_eff),
        "savings_plan_total_commitment_to_date": pa.array(
            np.where(is_["SavingsPlanRecurringFee"], commitment, 0.0)
        ),
        "savings_plan_used_commitment": pa.array(
            np.where(is_["SavingsPlanRecurringFee"], used, 0.0)
        ),
        "resource_tags": pa.array(tags, pa.map_(pa.string(), pa.string())),
    }
    if net:
        # Net = 5 % under gross wherever a gross amount is, so a mapping that reads a gross
        # column where FOCUS wants the net one gives a different EffectiveCost.
        data["line_item_net_unblended_cost"] = pa.array(net_cost)
        for gross, net_name in (
            ("reservation_effective_cost", "reservation_net_effective_cost"),
            (
                "reservation_unused_amortized_upfront_fee_for_billing_period",
                "reservation_net_unused_amortized_upfront_fee_for_billing_period",
            ),
            ("reservation_unused_recurring_fee", "reservation_net_unused_recurring_fee"),
            (
                "savings_plan_savings_plan_effective_cost",
                "savings_plan_net_savings_plan_effective_cost",
            ),
        ):
            data[net_name] = pa.array(np.round(data[gross].to_numpy() * 0.95, 10))
    order = [c for c in CUR2_STRINGS + CUR2_TIMES + CUR2_MONEY + CUR2_MAPS if c in data]
    return pa.table({c: data[c] for c in order})


_CATEGORY = {
    "Usage": "Usage", "SavingsPlanCoveredUsage": "Usage", "SavingsPlanNegation": "Usage",
    "DiscountedUsage": "Usage", "SavingsPlanRecurringFee": "Purchase", "RIFee": "Purchase",
    "Fee": "Purchase", "Credit": "Credit", "Refund": "Adjustment", "Tax": "Tax",
}  # fmt: skip
_SERVICE_CATEGORY = {
    "AmazonEC2": ("Compute", "Virtual Machines"), "AmazonS3": ("Storage", "Object Storage"),
    "AmazonRDS": ("Databases", "Relational Databases"),
    "AWSLambda": ("Compute", "Serverless Compute"),
    "AmazonCloudWatch": ("Management and Governance", "Observability"),
    "AWSMarketplace": ("Other", "Other (Other)"),
}  # fmt: skip


def focus_table(
    period: str, rows: int, seed: int, version: str, *, currency: str = "USD"
) -> pa.Table:
    """A native FOCUS export (as AWS fills it) derived from the same line items as CUR 2.0."""
    cur = cur2_table(period, rows, seed, currency=currency, net=False).to_pydict()
    kind = cur["line_item_line_item_type"]
    billed = cur["line_item_unblended_cost"]
    effective = [
        c if k not in ("SavingsPlanCoveredUsage", "DiscountedUsage", "SavingsPlanNegation") else
        (s if k == "SavingsPlanCoveredUsage" else r if k == "DiscountedUsage" else 0.0)
        for k, c, s, r in zip(
            kind,
            billed,
            cur["savings_plan_savings_plan_effective_cost"],
            cur["reservation_effective_cost"],
            strict=True,
        )
    ]  # fmt: skip
    commit = [
        s or r
        for s, r in zip(
            cur["savings_plan_savings_plan_a_r_n"],
            cur["reservation_reservation_a_r_n"],
            strict=True,
        )
    ]
    usage = [k in ("Usage", "SavingsPlanCoveredUsage", "DiscountedUsage") for k in kind]
    code = cur["line_item_product_code"]
    data: dict[str, Any] = {
        "AvailabilityZone": cur["line_item_availability_zone"],
        "BillingAccountId": cur["bill_payer_account_id"],
        "BillingAccountName": cur["bill_payer_account_name"],
        "BillingCurrency": cur["line_item_currency_code"],
        "ChargeCategory": [_CATEGORY[k] for k in kind],
        "ChargeClass": [None] * rows,
        "ChargeDescription": cur["line_item_line_item_description"],
        "ChargeFrequency": [
            "Usage-Based"
            if k in _CATEGORY and _CATEGORY[k] == "Usage"
            else "Recurring"
            if k in ("RIFee", "SavingsPlanRecurringFee")
            else "One-Time"
            for k in kind
        ],
        "CommitmentDiscountCategory": [
            "Spend" if s else "Usage" if r else None
            for s, r in zip(
                cur["savings_plan_savings_plan_a_r_n"],
                cur["reservation_reservation_a_r_n"],
                strict=True,
            )
        ],
        "CommitmentDiscountId": commit,
        "CommitmentDiscountName": [None] * rows,
        "CommitmentDiscountStatus": [
            "Used" if c and u else None for c, u in zip(commit, usage, strict=True)
        ],
        "CommitmentDiscountType": [
            "Savings Plan" if s else "Reserved Instance" if r else None
            for s, r in zip(
                cur["savings_plan_savings_plan_a_r_n"],
                cur["reservation_reservation_a_r_n"],
                strict=True,
            )
        ],
        "ConsumedUnit": [
            u_ if u else None for u_, u in zip(cur["pricing_unit"], usage, strict=True)
        ],
        "InvoiceIssuerName": ["Amazon Web Services, Inc."] * rows,
        "PricingCategory": [
            "Committed" if c else "Standard" if u else None
            for c, u in zip(commit, usage, strict=True)
        ],
        "PricingUnit": [
            u_ if u else None for u_, u in zip(cur["pricing_unit"], usage, strict=True)
        ],
        "ProviderName": ["AWS"] * rows,
        "PublisherName": [
            "Acme Marketplace Seller" if c == "AWSMarketplace" else "AWS" for c in code
        ],
        "RegionId": cur["product_region_code"],
        "RegionName": cur["product_region_code"],
        "ResourceId": cur["line_item_resource_id"],
        "ResourceName": [None] * rows,
        "ResourceType": [None] * rows,
        "ServiceCategory": [_SERVICE_CATEGORY[c][0] for c in code],
        "ServiceName": cur["product_product_name"],
        "SkuId": cur["product_sku"],
        "SkuPriceId": cur["pricing_rate_code"],
        "SubAccountId": cur["line_item_usage_account_id"],
        "SubAccountName": cur["line_item_usage_account_name"],
        "x_Operation": cur["line_item_operation"],
        "x_ServiceCode": code,
        "x_UsageType": cur["line_item_usage_type"],
        "BillingAccountType": ["Billing Account"] * rows,
        "CapacityReservationId": [None] * rows,
        "CapacityReservationStatus": [None] * rows,
        "CommitmentDiscountUnit": [None] * rows,
        "InvoiceId": [None] * rows,
        "PricingCurrency": cur["line_item_currency_code"],
        "ServiceSubcategory": [_SERVICE_CATEGORY[c][1] for c in code],
        "SkuMeter": cur["line_item_usage_type"],
        "SkuPriceDetails": [None] * rows,
        "SubAccountType": ["Linked Account"] * rows,
        "BillingPeriodStart": cur["bill_billing_period_start_date"],
        "BillingPeriodEnd": cur["bill_billing_period_end_date"],
        "ChargePeriodStart": cur["line_item_usage_start_date"],
        "ChargePeriodEnd": cur["line_item_usage_end_date"],
        "BilledCost": billed,
        "ConsumedQuantity": [
            a if u else None for a, u in zip(cur["line_item_usage_amount"], usage, strict=True)
        ],
        "ContractedCost": billed,
        "ContractedUnitPrice": [
            r if u else None for r, u in zip(cur["line_item_unblended_rate"], usage, strict=True)
        ],
        "EffectiveCost": effective,
        "ListCost": cur["pricing_public_on_demand_cost"],
        "ListUnitPrice": cur["pricing_public_on_demand_rate"],
        "PricingQuantity": [
            a if u else None for a, u in zip(cur["line_item_usage_amount"], usage, strict=True)
        ],
        "CommitmentDiscountQuantity": [None] * rows,
        "PricingCurrencyContractedUnitPrice": [
            r if u else None for r, u in zip(cur["line_item_unblended_rate"], usage, strict=True)
        ],
        "PricingCurrencyEffectiveCost": effective,
        "PricingCurrencyListUnitPrice": cur["pricing_public_on_demand_rate"],
        "Tags": cur["resource_tags"],
        "x_Discounts": [[] for _ in range(rows)],
        "x_CostCategories": [[("project", "convergence")] for _ in range(rows)],
    }
    strings, times, money, maps = columns_of(
        "FOCUS_1_2_AWS" if version == "1.2" else "FOCUS_1_0_AWS"
    )
    ts = pa.timestamp("us", tz="UTC")
    out: dict[str, pa.Array] = {}
    for c in strings:
        out[c] = pa.array(data[c], pa.string())
    for c in times:
        out[c] = pa.array(data[c], ts)
    for c in money:
        out[c] = pa.array(data[c], pa.float64())
    for c in maps:
        out[c] = pa.array(data[c], pa.map_(pa.string(), pa.string()))
    return pa.table(out)


def export_table(export_type: str, period: str, rows: int, seed: int, **kw: Any) -> pa.Table:
    if export_type == "CUR2":
        return cur2_table(period, rows, seed, **kw)
    return focus_table(period, rows, seed, "1.2" if export_type == "FOCUS_1_2_AWS" else "1.0", **kw)


def _csv_bytes(table: pa.Table) -> bytes:
    # Maps are written as JSON objects in CSV exports.
    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_map(col.type):
            columns[name] = pa.array(
                [json.dumps(dict(v), sort_keys=True) if v else "" for v in col.to_pylist()]
            )
        else:
            columns[name] = col
    out = io.BytesIO()
    pacsv.write_csv(pa.table(columns), out)
    return gzip.compress(out.getvalue(), compresslevel=1)


def billed_total(table: pa.Table, export_type: str) -> Decimal:
    column = billed_column(export_type)
    if column not in table.column_names:
        return Decimal(0)  # a deliberately malformed export (tests): nothing to total
    if export_type == "CUR2" and "line_item_net_unblended_cost" in table.column_names:
        column = "line_item_net_unblended_cost"
    return sum((exact(v) for v in table.column(column).to_pylist()), Decimal(0))


def write_export(  # noqa: PLR0917 - the export's S3 address, then what to write
    s3: Any,
    bucket: str,
    prefix: str,
    export_name: str,
    export_type: str,
    period: str,
    *,
    rows: int = 200,
    seed: int = 1,
    files: int = 2,
    fmt: str = "parquet",
    table: pa.Table | None = None,
    manifest_extra: dict[str, Any] | None = None,
) -> Delivered:
    """Uploads a period's data files, then its manifest; returns the keys and exact totals."""
    table = table if table is not None else export_table(export_type, period, rows, seed)
    root = f"{prefix}/{export_name}"
    execution = str(uuid.UUID(int=seed * 7919 + rows))
    keys: list[str] = []
    step = -(-table.num_rows // files) if table.num_rows else 1
    for part in range(files):
        chunk = table.slice(part * step, step)
        if fmt == "parquet":
            buf = io.BytesIO()
            pq.write_table(chunk, buf, compression="snappy", row_group_size=50_000)
            body, ext = buf.getvalue(), "snappy.parquet"
        else:
            body, ext = _csv_bytes(chunk), "csv.gz"
        key = f"{root}/data/BILLING_PERIOD={period}/{export_name}-{part + 1:05d}.{ext}"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        keys.append(key)
    start, end = _period_bounds(period)
    manifest = {
        "executionId": execution,
        "exportArn": (
            f"arn:aws:bcm-data-exports:us-east-1:{PAYER}:export/{export_name}-{execution[:8]}"
        ),
        "exportName": export_name,
        "billingPeriod": {"start": start.isoformat(), "end": end.isoformat()},
        "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
        "dataFiles": [f"s3://{bucket}/{k}" for k in keys],
        **(manifest_extra or {}),
    }
    manifest_key = f"{root}/metadata/BILLING_PERIOD={period}/{export_name}-Manifest.json"
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())
    return Delivered(
        manifest_key, keys, table.num_rows, billed_total(table, export_type), table.column_names
    )


# The local stack's export layout (its moto: `<data dir>/clouds/moto`).
LOCAL_PREFIX = "exports"
LOCAL_REGION = "us-east-1"


@dataclass(frozen=True)
class LocalAwsExport:
    """An export seeded into the local stack's moto: where it is, and exactly what was written."""

    bucket: str
    export_name: str
    export_type: str
    period: str
    delivered: Delivered
    table: pa.Table

    def settings(self) -> dict[str, str]:
        """The provider config's `aws` block that names this export."""
        return {
            "bucket": self.bucket,
            "prefix": LOCAL_PREFIX,
            "export_name": self.export_name,
            "export_type": self.export_type,
            "region": LOCAL_REGION,
        }


def moto_admin_client(data_dir: Any, service: str) -> Any:
    """A boto3 client of the stack's moto as its bootstrap admin (`moto-admin.json`)."""
    from pathlib import Path

    import boto3

    data_dir = Path(data_dir)
    keys = json.loads((data_dir / "clouds" / "moto" / "moto-admin.json").read_text())
    url = json.loads((data_dir / "endpoints.json").read_text())["moto_url"]
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=LOCAL_REGION,
        aws_access_key_id=keys["access_key_id"],
        aws_secret_access_key=keys["secret_access_key"],
    )


def _within(table: pa.Table, export_type: str, first: dt.date, last: dt.date) -> pa.Table:
    """The rows whose usage starts on first..last (a short demo reads better than a month)."""
    import pyarrow.compute as pc

    column = "line_item_usage_start_date" if export_type == "CUR2" else "ChargePeriodStart"
    start = pa.scalar(dt.datetime.combine(first, dt.time(), dt.UTC), pa.timestamp("us", "UTC"))
    end = pa.scalar(
        dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC),
        pa.timestamp("us", "UTC"),
    )
    keep = pc.and_(pc.greater_equal(table[column], start), pc.less(table[column], end))
    return table.filter(keep)


def seed_local_export(
    data_dir: Any,
    export_type: str,
    period: str,
    *,
    rows: int = 200,
    seed: int = 1,
    days: tuple[dt.date, dt.date] | None = None,
    fmt: str = "parquet",
) -> LocalAwsExport:
    """Writes one delivery of `period` (data files, then manifest) into a fresh bucket.

    `days` keeps only the line items that start on those days (inclusive).
    """
    table = export_table(export_type, period, rows, seed)
    if days is not None:
        table = _within(table, export_type, *days)
    bucket = f"acme-cur-{uuid.uuid4().hex[:12]}"
    export_name = "cost-" + export_type.lower().replace("_", "-")
    s3 = moto_admin_client(data_dir, "s3")
    s3.create_bucket(Bucket=bucket)
    delivered = write_export(
        s3, bucket, LOCAL_PREFIX, export_name, export_type, period, seed=seed, fmt=fmt, table=table
    )
    return LocalAwsExport(bucket, export_name, export_type, period, delivered, table)


def bucket_read_policy(bucket: str, objects: str = "*") -> str:
    """An IAM policy (JSON) that may list `bucket` and read its objects matching `objects`."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{bucket}",
                },
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/{objects}",
                },
            ],
        }
    )


def reader_user_keys(iam: Any, policy: str | None) -> dict[str, str]:
    """A customer's IAM user with `policy` (None: no permission at all) and its access key."""
    name = f"reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=policy)
    made = iam.create_access_key(UserName=name)["AccessKey"]
    return {"access_key_id": made["AccessKeyId"], "secret_access_key": made["SecretAccessKey"]}


def trusting_role(iam: Any, trust: dict[str, Any], bucket: str) -> str:
    """The customer's IAM role: trusts the platform's Google identity for one tenant
    (`GET /credentials/platform-identity`) and nothing else, and may read the exports
    in `bucket`."""
    name = f"convergence-reader-{uuid.uuid4().hex[:8]}"
    assume = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": trust["aws"]["federated_principal"]},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": trust["aws"]["conditions"]},
            }
        ],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(assume))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="read-export",
        PolicyDocument=bucket_read_policy(bucket, f"{LOCAL_PREFIX}/*"),
    )
    return str(arn)


def demo_run(stack: Any, key: dict[str, str], days: int = 3, rows: int = 3000) -> None:
    """`make demo`'s AWS part: seed a CUR 2.0 export, an IAM_ROLE credential (a role trusting
    the platform's identity: no secret changes hands), an AWS provider config, an
    aws_cost_export pipeline, one run over the export's dates; exits the demo with the run's
    error unless it SUCCEEDED (a failed run is never shown as success)."""
    import os
    from pathlib import Path

    from local import demo
    from shared.platform.settings import REPO_ROOT

    data_dir = Path(stack.data_dir or os.environ.get("LOCAL_DATA_DIR", REPO_ROOT / ".local"))
    # The days before today, within one billing period (a run owns its date's month).
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = max(last - dt.timedelta(days=days - 1), last.replace(day=1))
    export = seed_local_export(
        data_dir, "CUR2", f"{last:%Y-%m}", rows=rows, seed=5, days=(first, last)
    )
    demo.say(
        f"seeded an AWS CUR 2.0 export: {export.delivered.rows} line items in "
        f"s3://{export.bucket}/{LOCAL_PREFIX}/{export.export_name}"
    )
    status, trust = demo.http("GET", f"{stack.gateway}/credentials/platform-identity", None, key)
    demo.expect(status, trust, 200, "reading the platform identity")
    role_arn = trusting_role(moto_admin_client(data_dir, "iam"), trust, export.bucket)
    status, credential = demo.http(
        "POST",
        f"{stack.gateway}/credentials/",
        {
            "provider": "AWS",
            "credential_type": "IAM_ROLE",
            "credential_name": "aws export reader",
            "credentials": {"role_arn": role_arn, "external_id": trust["external_id"]},
        },
        key,
    )
    demo.expect(status, credential, 201, "adding the AWS credential")
    status, provider = demo.http(
        "POST",
        f"{stack.gateway}/credentials/provider-configs",
        {
            "provider": "AWS",
            "currency": "USD",
            "credential_id": credential["credential_id"],
            "aws": export.settings(),
        },
        key,
    )
    demo.expect(status, provider, 201, "adding the AWS provider config")
    demo.say(f"aws: role {role_arn}, provider config {provider['config_id']}")
    status, config = demo.http(
        "POST",
        f"{stack.gateway}/pipelines/configs",
        {
            "name": "daily AWS costs",
            "pipeline": "aws_cost_export",
            "provider_config_id": provider["config_id"],
            "schedule_cron": "0 6 * * *",
            "timezone": "UTC",
        },
        key,
    )
    demo.expect(status, config, 201, "scheduling aws_cost_export")
    status, started = demo.http(
        "POST",
        f"{stack.gateway}/pipelines/runs",
        {"config_id": config["config_id"], "date_from": str(first), "date_to": str(last)},
        key,
    )
    demo.expect(status, started, 202, "starting the AWS run")
    run = demo.wait_for_run(stack, key, config["config_id"])
    demo.show_run(run)
    if run["state"] != "SUCCEEDED":
        raise SystemExit(f"[demo] the AWS run {run['state']}: {run.get('error_message') or ''}")

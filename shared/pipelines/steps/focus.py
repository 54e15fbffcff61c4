"""Steps `focus.convert_gcp` and `focus.check`: GCP billing export rows -> FOCUS 1.2, and proofs.

Contract (StepFn signatures, for the executor's step registry):
    convert_gcp(ctx: StepContext) -> StepResult      step type `focus.convert_gcp`
        params (optional): `lookback_days` (int, default 3; MUST equal the extract's),
        `focus_version` ("1.2" default, or "1.3").
        Pure SQL pushed down to BigQuery (no row ever reaches Python): one
        INSERT ... SELECT turns the run window's rows of `{tenant}.gcp_billing_raw`
        (see gcp_billing.WINDOW) into FOCUS rows in `{tenant}.focus_cost`, after a
        DELETE of that window's earlier rows of the same config, so re-running a
        date is idempotent.
    check_gcp(ctx: StepContext) -> StepResult        step type `focus.check`
        params (optional): `lookback_days`, `warn` (bool: report failures as WARN
        and don't fail the step). Returns DqResults (in StepResult.dq_results):
          - `reconciliation_billed_cost`: SUM(BilledCost) of the window's FOCUS rows
            = SUM(cost) + SUM(credits.amount) of its raw rows, exactly (NUMERIC);
          - `reconciliation_list_cost`: SUM(ListCost) = SUM(cost_at_list), exactly;
          - `not_null_mandatory`: no NULL in any mandatory FOCUS column;
          - `allowed_values`: ChargeCategory, ChargeClass, ChargeFrequency,
            PricingCategory, CommitmentDiscountCategory/Status, ServiceCategory,
            ServiceSubcategory within the FOCUS values;
          - `row_count`: as many FOCUS rows as raw rows.
        Raises StepError("dq_failed") after collecting them if any FAILed; the
        executor writes the DqResults either way (they ride on the error as
        `error.dq_results`).
    Plain SQL helpers for a generic `dq.check`: `reconciliation_sql(dataset)`,
    `null_check_sql(dataset)`, `allowed_values_sql(dataset)`; each takes
    @pipeline_id, @date_from, @date_to, @lookback_days and returns one row.

Mapping decisions (column by column in docs/focus-mapping.md): one FOCUS row per
export row; credits are folded into the row (BilledCost = EffectiveCost = cost +
SUM(credits.amount)), as Google's own FOCUS view does, so the export's totals
reconcile row by row; CUD credits name the commitment discount.
"""

from __future__ import annotations

from typing import Any

from shared.pipelines.context import DqResult, DqStatus, StepContext, StepError, StepResult
from shared.pipelines.steps.gcp_billing import (
    RAW_TABLE,
    WINDOW,
    replace_window,
    run_query,
    window_params,
)

FOCUS_TABLE = "focus_cost"
SUPPORTED_VERSIONS = ("1.2", "1.3")
PROVIDER = "Google Cloud"

# GCP service -> (ServiceCategory, ServiceSubcategory), FOCUS 1.2 allowed pairs.
SERVICE_CATEGORIES: dict[str, tuple[str, str]] = {
    "Compute Engine": ("Compute", "Virtual Machines"),
    "Kubernetes Engine": ("Compute", "Containers"),
    "Cloud Run": ("Compute", "Serverless Compute"),
    "Cloud Run Functions": ("Compute", "Serverless Compute"),
    "Cloud Functions": ("Compute", "Serverless Compute"),
    "App Engine": ("Web", "Application Platforms"),
    "Cloud Storage": ("Storage", "Object Storage"),
    "Filestore": ("Storage", "File Storage"),
    "BigQuery": ("Databases", "Data Warehouses"),
    "Cloud SQL": ("Databases", "Relational Databases"),
    "Cloud Spanner": ("Databases", "Relational Databases"),
    "Cloud Bigtable": ("Databases", "NoSQL Databases"),
    "Cloud Firestore": ("Databases", "NoSQL Databases"),
    "Cloud Memorystore for Redis": ("Databases", "Caching"),
    "Dataflow": ("Analytics", "Data Processing"),
    "Cloud Dataproc": ("Analytics", "Data Processing"),
    "Cloud Pub/Sub": ("Integration", "Messaging"),
    "Networking": ("Networking", "Network Connectivity"),
    "Cloud DNS": ("Networking", "Network Routing"),
    "Cloud CDN": ("Networking", "Content Delivery"),
    "Cloud Load Balancing": ("Networking", "Application Networking"),
    "Vertex AI": ("AI and Machine Learning", "AI Platforms"),
    "Gemini API": ("AI and Machine Learning", "Generative AI"),
    "Cloud Logging": ("Management and Governance", "Observability"),
    "Cloud Monitoring": ("Management and Governance", "Observability"),
    "Secret Manager": ("Security", "Secret Management"),
    "Cloud Key Management Service (KMS)": ("Security", "Secret Management"),
    "Support": ("Management and Governance", "Support"),
    "Invoice": ("Other", "Other (Other)"),
}
REGION_NAMES: dict[str, str] = {
    "us-central1": "Iowa",
    "us-east1": "South Carolina",
    "us-east4": "Northern Virginia",
    "us-west1": "Oregon",
    "us-west2": "Los Angeles",
    "europe-west1": "Belgium",
    "europe-west2": "London",
    "europe-west3": "Frankfurt",
    "europe-west4": "Netherlands",
    "asia-east1": "Taiwan",
    "asia-northeast1": "Tokyo",
    "asia-southeast1": "Singapore",
    "australia-southeast1": "Sydney",
}
# GCP's usage and pricing units -> FOCUS UnitFormat (data sizes as B/GiB/..., time units
# capitalized and plural, "<unit>-<Times>" for unit-time products). Unknown units pass as is.
UNITS: dict[str, str] = {
    "seconds": "Seconds",
    "second": "Seconds",
    "hour": "Hours",
    "hours": "Hours",
    "month": "Months",
    "bytes": "B",
    "byte": "B",
    "byte-seconds": "B-Seconds",
    "gibibyte": "GiB",
    "gibibyte hour": "GiB-Hours",
    "gibibyte month": "GiB-Months",
    "gibibyte second": "GiB-Seconds",
    "mebibyte": "MiB",
    "tebibyte": "TiB",
    "vCPU-second": "vCPU-Seconds",
    "count": "Count",
    "requests": "Requests",
    "request": "Requests",
}
CUD_TYPES = ("COMMITTED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE")

ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "ChargeCategory": ("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    "ChargeClass": ("Correction",),
    "ChargeFrequency": ("One-Time", "Recurring", "Usage-Based"),
    "PricingCategory": ("Standard", "Dynamic", "Committed", "Other"),
    "CommitmentDiscountCategory": ("Spend", "Usage"),
    "CommitmentDiscountStatus": ("Used", "Unused"),
    "ServiceCategory": tuple(sorted({c for c, _ in SERVICE_CATEGORIES.values()})),
    "ServiceSubcategory": tuple(sorted({s for _, s in SERVICE_CATEGORIES.values()})),
}
# Mandatory FOCUS 1.2 columns that may never be NULL.
NOT_NULL = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
)


def _quote(value: str) -> str:
    """A GoogleSQL string literal for our own constants (never for tenant data)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _case(expr: str, mapping: dict[str, str], default: str) -> str:
    whens = " ".join(f"WHEN {_quote(k)} THEN {_quote(v)}" for k, v in mapping.items())
    return f"CASE {expr} {whens} ELSE {default} END"


# Credits are aggregated once per row, in one subquery (sum + the commitment credit),
# and only for rows that have any: a correlated UNNEST subquery is the costly part
# of the statement, and most rows carry no credit.
_IS_CUD = "c.type IN ('COMMITTED_USAGE_DISCOUNT', 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE')"
_CREDITS = (
    "IF(ARRAY_LENGTH(r.credits) = 0, NULL, (SELECT AS STRUCT SUM(c.amount) AS total, "
    f"MAX(IF({_IS_CUD}, c.id, NULL)) AS cud_id, "
    f"MAX(IF({_IS_CUD}, c.full_name, NULL)) AS cud_name, "
    f"MAX(IF({_IS_CUD}, c.type, NULL)) AS cud_type "
    "FROM UNNEST(r.credits) AS c))"
)
# Resource labels plus tags (namespaced keys, so they can't clash: labels have no '/').
_TAGS = (
    "(SELECT CONCAT('{', STRING_AGG(TO_JSON_STRING(kv.k) || ':' || TO_JSON_STRING(kv.v), ',' "
    "ORDER BY kv.k), '}') FROM (SELECT l.key AS k, l.value AS v FROM UNNEST(r.labels) AS l "
    "UNION ALL SELECT CONCAT(t.namespace, '/', t.key) AS k, t.value AS v "
    "FROM UNNEST(r.tags) AS t) AS kv)"
)


_BILLED = "r.cost + IFNULL(r.cr.total, 0)"


def _columns(version: str) -> list[tuple[str, str]]:
    """FOCUS column -> expression over one raw row `r` with its credits aggregated in `r.cr`."""
    categories = {k: v[0] for k, v in SERVICE_CATEGORIES.items()}
    subcategories = {k: v[1] for k, v in SERVICE_CATEGORIES.items()}
    regular = "r.cost_type = 'regular'"
    period = "PARSE_DATE('%Y%m', r.invoice.month)"
    columns = [
        ("AvailabilityZone", "r.location.zone"),
        ("BilledCost", _BILLED),
        ("BillingAccountId", "r.billing_account_id"),
        ("BillingAccountName", "CAST(NULL AS STRING)"),
        ("BillingAccountType", "CAST(NULL AS STRING)"),
        ("BillingCurrency", "r.currency"),
        # Google invoices by calendar month in Pacific time; the end is exclusive.
        (
            "BillingPeriodEnd",
            f"TIMESTAMP(DATE_ADD({period}, INTERVAL 1 MONTH), 'America/Los_Angeles')",
        ),
        ("BillingPeriodStart", f"TIMESTAMP({period}, 'America/Los_Angeles')"),
        ("CapacityReservationId", "CAST(NULL AS STRING)"),
        ("CapacityReservationStatus", "CAST(NULL AS STRING)"),
        (
            "ChargeCategory",
            "CASE r.cost_type WHEN 'regular' THEN 'Usage' WHEN 'tax' THEN 'Tax' "
            "WHEN 'adjustment' THEN 'Adjustment' WHEN 'rounding_error' THEN 'Adjustment' END",
        ),
        ("ChargeClass", "IF(r.adjustment_info.id IS NOT NULL, 'Correction', NULL)"),
        ("ChargeDescription", "r.sku.description"),
        ("ChargeFrequency", f"IF({regular}, 'Usage-Based', 'One-Time')"),
        ("ChargePeriodEnd", "r.usage_end_time"),
        ("ChargePeriodStart", "r.usage_start_time"),
        (
            "CommitmentDiscountCategory",
            "CASE r.cr.cud_type WHEN 'COMMITTED_USAGE_DISCOUNT' THEN 'Usage' "
            "WHEN 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE' THEN 'Spend' END",
        ),
        ("CommitmentDiscountId", "r.cr.cud_id"),
        ("CommitmentDiscountName", "r.cr.cud_name"),
        ("CommitmentDiscountQuantity", "CAST(NULL AS NUMERIC)"),
        ("CommitmentDiscountStatus", "IF(r.cr.cud_id IS NOT NULL, 'Used', NULL)"),
        ("CommitmentDiscountType", "IF(r.cr.cud_id IS NOT NULL, 'Committed Use Discount', NULL)"),
        ("CommitmentDiscountUnit", "CAST(NULL AS STRING)"),
        ("ConsumedQuantity", f"IF({regular}, r.usage.amount, NULL)"),
        ("ConsumedUnit", f"IF({regular}, {_case('r.usage.unit', UNITS, 'r.usage.unit')}, NULL)"),
        ("ContractedCost", "r.cost"),
        ("ContractedUnitPrice", f"IF({regular}, r.price.effective_price, NULL)"),
        ("EffectiveCost", _BILLED),
        # The export has no invoice number; Google issues one invoice per billing account
        # and invoice month, so that pair identifies the (provisional) invoice.
        ("InvoiceId", "CONCAT(r.billing_account_id, '/', r.invoice.month)"),
        ("InvoiceIssuerName", _quote(PROVIDER)),
        ("ListCost", "r.cost_at_list"),
        ("ListUnitPrice", "CAST(NULL AS NUMERIC)"),
        (
            "PricingCategory",
            f"IF({regular}, IF(r.cr.cud_id IS NOT NULL, 'Committed', 'Standard'), NULL)",
        ),
        ("PricingCurrency", "r.currency"),
        ("PricingCurrencyContractedUnitPrice", f"IF({regular}, r.price.effective_price, NULL)"),
        ("PricingCurrencyEffectiveCost", _BILLED),
        ("PricingCurrencyListUnitPrice", "CAST(NULL AS NUMERIC)"),
        ("PricingQuantity", f"IF({regular}, r.usage.amount_in_pricing_units, NULL)"),
        (
            "PricingUnit",
            f"IF({regular}, {_case('r.usage.pricing_unit', UNITS, 'r.usage.pricing_unit')}, NULL)",
        ),
        ("ProviderName", _quote(PROVIDER)),
        (
            "PublisherName",
            f"IF(IFNULL(r.transaction_type, 'GOOGLE') = 'GOOGLE', {_quote(PROVIDER)}, "
            f"IFNULL(r.seller_name, {_quote(PROVIDER)}))",
        ),
        ("RegionId", "r.location.region"),
        ("RegionName", _case("r.location.region", REGION_NAMES, "r.location.region")),
        ("ResourceId", "r.resource.global_name"),
        ("ResourceName", "r.resource.name"),
        ("ResourceType", "CAST(NULL AS STRING)"),
        ("ServiceCategory", _case("r.service.description", categories, "'Other'")),
        ("ServiceName", "IFNULL(r.service.description, 'Invoice')"),
        ("ServiceSubcategory", _case("r.service.description", subcategories, "'Other (Other)'")),
        ("SkuId", f"IF({regular}, NULLIF(r.sku.id, ''), NULL)"),
        ("SkuMeter", f"IF({regular}, r.sku.description, NULL)"),
        ("SkuPriceDetails", "CAST(NULL AS STRING)"),
        (
            "SkuPriceId",
            f"IF({regular} AND NULLIF(r.sku.id, '') IS NOT NULL, "
            "CONCAT(r.sku.id, '/', IFNULL(CAST(r.price.tier_start_amount AS STRING), '0')), NULL)",
        ),
        ("SubAccountId", "r.project.id"),
        ("SubAccountName", "r.project.name"),
        ("SubAccountType", "IF(r.project.id IS NOT NULL, 'Project', NULL)"),
        ("Tags", "tg.tags"),
    ]
    if version == "1.3":
        columns += [
            ("ServiceProviderName", _quote(PROVIDER)),
            ("HostProviderName", _quote(PROVIDER)),
        ]
    columns += [
        ("x_export_time", "r.export_time"),
        ("x_focus_version", _quote(version)),
        ("x_tenant_id", "r.x_tenant_id"),
        ("x_pipeline_id", "r.x_pipeline_id"),
        ("x_credential_id", "r.x_credential_id"),
        ("x_run_date", "@run_date"),
        ("x_run_id", "@run_id"),
        ("x_ingested_at", "CURRENT_TIMESTAMP()"),
    ]
    return columns


def focus_columns(version: str = "1.2") -> list[str]:
    """The FOCUS columns (no x_*) a table of `version` has, in order."""
    return [name for name, _ in _columns(version) if not name.startswith("x_")]


def convert_sql(raw_table: str, focus_table: str, version: str = "1.2") -> str:
    """The INSERT ... SELECT of the window's FOCUS rows. Params: @pipeline_id, @date_from,
    @date_to, @lookback_days, @run_date (lineage), @run_id."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"unsupported FOCUS version {version!r}")
    # Always-NULL columns are left out of the INSERT (they default to NULL): less to
    # write, which is most of the statement's time on the emulator.
    columns = [(n, e) for n, e in _columns(version) if not e.startswith("CAST(NULL")]
    select = ",\n  ".join(f"{expr} AS `{name}`" for name, expr in columns)
    source_window = WINDOW.format(start="raw.usage_start_time", export="raw.export_time")
    names = ", ".join(f"`{n}`" for n, _ in columns)
    credits = _CREDITS.replace("r.credits", "raw.credits")
    where = f"raw.x_pipeline_id = @pipeline_id AND {source_window}"
    # Tags are built once per distinct label/tag set, not once per row: rows of
    # one resource or project repeat the same set, and the per-row aggregation
    # was a third of the statement's time.
    tag_key = "TO_JSON_STRING(STRUCT(raw.labels AS l, raw.tags AS t))"
    tags = _TAGS.replace("r.labels", "k.labels").replace("r.tags", "k.tags")
    return (
        f"INSERT INTO {focus_table} ({names})\nSELECT\n  {select}\n"
        f"FROM (\n  SELECT raw.*, {credits} AS cr, {tag_key} AS tag_key\n"
        f"  FROM {raw_table} AS raw\n  WHERE {where}\n) AS r\n"
        f"LEFT JOIN (\n  SELECT k.tag_key, {tags} AS tags FROM (\n"
        f"    SELECT {tag_key} AS tag_key, ANY_VALUE(raw.labels) AS labels, "
        f"ANY_VALUE(raw.tags) AS tags\n    FROM {raw_table} AS raw WHERE {where} "
        "GROUP BY tag_key) AS k\n) AS tg ON tg.tag_key = r.tag_key"
    )


def delete_sql(focus_table: str) -> str:
    """Removes the config's FOCUS rows of the window, before `convert_sql` re-inserts them."""
    window = WINDOW.format(start="T.ChargePeriodStart", export="T.x_export_time")
    return f"DELETE FROM {focus_table} AS T WHERE T.x_pipeline_id = @pipeline_id AND {window}"


def _window_params(ctx: StepContext) -> dict[str, Any]:
    return {"pipeline_id": ctx.run.config_id, **window_params(ctx)}


def convert_gcp(ctx: StepContext) -> StepResult:
    """Maps the run window's raw rows to FOCUS in `focus_cost`, replacing the window's old rows."""
    version = str(ctx.params.get("focus_version", "1.2"))
    if version not in SUPPORTED_VERSIONS:
        raise StepError("invalid_parameter", f"focus_version must be one of {SUPPORTED_VERSIONS}")
    warehouse = ctx.deps.warehouse
    dataset = ctx.run.dataset_id
    focus_table = warehouse.table(dataset, FOCUS_TABLE)
    sql = convert_sql(warehouse.table(dataset, RAW_TABLE), focus_table, version)
    params = {**_window_params(ctx), "run_id": ctx.run.run_id, "run_date": ctx.run.run_date}
    deleted, inserted, billed = replace_window(ctx, delete_sql(focus_table), sql, params)
    # After the replace, the window holds exactly the rows just inserted.
    return StepResult(
        rows_processed=inserted,
        bytes_billed=billed,
        message=f"{inserted} FOCUS {version} rows in the window ({deleted} replaced)",
    )


# ---- data-quality SQL, one row each; params @pipeline_id, @date_from, @date_to, @lookback_days


def reconciliation_sql(raw_table: str, focus_table: str) -> str:
    """Exact totals of the window on both sides: billed = cost + credits, list = cost_at_list."""
    raw_window = WINDOW.format(start="r.usage_start_time", export="r.export_time")
    focus_window = WINDOW.format(start="f.ChargePeriodStart", export="f.x_export_time")
    return (
        "SELECT\n"
        "  (SELECT IFNULL(SUM(f.BilledCost), 0) FROM " + focus_table + " AS f "
        f"WHERE f.x_pipeline_id = @pipeline_id AND {focus_window}) AS billed_cost,\n"
        "  (SELECT IFNULL(SUM(f.ListCost), 0) FROM " + focus_table + " AS f "
        f"WHERE f.x_pipeline_id = @pipeline_id AND {focus_window}) AS list_cost,\n"
        "  (SELECT COUNT(*) FROM " + focus_table + " AS f "
        f"WHERE f.x_pipeline_id = @pipeline_id AND {focus_window}) AS focus_rows,\n"
        "  (SELECT IFNULL(SUM(r.cost), 0) FROM " + raw_table + " AS r "
        f"WHERE r.x_pipeline_id = @pipeline_id AND {raw_window}) AS raw_cost,\n"
        "  (SELECT IFNULL(SUM(c.amount), 0) FROM " + raw_table + " AS r, UNNEST(r.credits) AS c "
        f"WHERE r.x_pipeline_id = @pipeline_id AND {raw_window}) AS raw_credits,\n"
        "  (SELECT IFNULL(SUM(r.cost_at_list), 0) FROM " + raw_table + " AS r "
        f"WHERE r.x_pipeline_id = @pipeline_id AND {raw_window}) AS raw_cost_at_list,\n"
        "  (SELECT COUNT(*) FROM " + raw_table + " AS r "
        f"WHERE r.x_pipeline_id = @pipeline_id AND {raw_window}) AS raw_rows"
    )


def null_check_sql(focus_table: str) -> str:
    """Per mandatory column, how many of the window's FOCUS rows hold NULL."""
    counts = ",\n  ".join(f"COUNTIF(f.`{c}` IS NULL) AS `{c}`" for c in NOT_NULL)
    window = WINDOW.format(start="f.ChargePeriodStart", export="f.x_export_time")
    where = f"WHERE f.x_pipeline_id = @pipeline_id AND {window}"
    return f"SELECT\n  {counts}\nFROM {focus_table} AS f\n{where}"


def allowed_values_sql(focus_table: str) -> str:
    """Per enumerated column, how many of the window's rows hold a value outside FOCUS's list."""
    parts = []
    for column, allowed in ALLOWED_VALUES.items():
        values = ", ".join(_quote(v) for v in allowed)
        parts.append(
            f"COUNTIF(f.`{column}` IS NOT NULL AND f.`{column}` NOT IN ({values})) AS `{column}`"
        )
    window = WINDOW.format(start="f.ChargePeriodStart", export="f.x_export_time")
    body = ",\n  ".join(parts)
    where = f"WHERE f.x_pipeline_id = @pipeline_id AND {window}"
    return f"SELECT\n  {body}\nFROM {focus_table} AS f\n{where}"


class DqFailed(StepError):
    """A failed expectation; carries every DqResult so the executor can still record them."""

    def __init__(self, message: str, dq_results: list[DqResult]) -> None:
        super().__init__("dq_failed", message)
        self.dq_results = dq_results


def check_gcp(ctx: StepContext) -> StepResult:
    """The FOCUS proofs of the run window (see the module docstring)."""
    warehouse = ctx.deps.warehouse
    dataset = ctx.run.dataset_id
    raw_table = warehouse.table(dataset, RAW_TABLE)
    focus_table = warehouse.table(dataset, FOCUS_TABLE)
    params = _window_params(ctx)
    warn = bool(ctx.params.get("warn", False))
    now = ctx.deps.clock()

    def run(sql: str) -> dict[str, Any]:
        return run_query(ctx, sql, params).rows[0]

    def result(name: str, ok: bool, expected: str, actual: str, detail: str) -> DqResult:
        status: DqStatus = "PASS" if ok else ("WARN" if warn else "FAIL")
        return DqResult(ctx.step_name, name, status, now, expected, actual, detail)

    totals = run(reconciliation_sql(raw_table, focus_table))
    expected_billed = totals["raw_cost"] + totals["raw_credits"]
    nulls = {k: v for k, v in run(null_check_sql(focus_table)).items() if v}
    outside = {k: v for k, v in run(allowed_values_sql(focus_table)).items() if v}
    results = [
        result(
            "reconciliation_billed_cost",
            totals["billed_cost"] == expected_billed,
            str(expected_billed),
            str(totals["billed_cost"]),
            "SUM(BilledCost) = SUM(cost) + SUM(credits.amount), exact NUMERIC",
        ),
        result(
            "reconciliation_list_cost",
            totals["list_cost"] == totals["raw_cost_at_list"],
            str(totals["raw_cost_at_list"]),
            str(totals["list_cost"]),
            "SUM(ListCost) = SUM(cost_at_list), exact NUMERIC",
        ),
        result(
            "row_count",
            totals["focus_rows"] == totals["raw_rows"],
            str(totals["raw_rows"]),
            str(totals["focus_rows"]),
            "one FOCUS row per export row",
        ),
        result("not_null_mandatory", not nulls, "0", str(sum(nulls.values())), f"NULLs: {nulls}"),
        result(
            "allowed_values",
            not outside,
            "0",
            str(sum(outside.values())),
            f"values outside FOCUS 1.2: {outside}",
        ),
    ]
    failed = [r.check_name for r in results if r.status == "FAIL"]
    if failed:
        raise DqFailed(f"FOCUS checks failed: {', '.join(failed)}", results)
    return StepResult(
        rows_processed=int(totals["focus_rows"]),
        message=f"{len(results)} FOCUS checks passed",
        dq_results=results,
    )

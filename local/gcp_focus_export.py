"""A stand-in for Google's FOCUS export table (`gcp_billing_export_focus_<ACCOUNT>`, preview).

Columns and types as Google documents them
(https://docs.cloud.google.com/billing/docs/how-to/export-data-bigquery-tables/focus-export),
cross-checked with a public project's INFORMATION_SCHEMA read of a live table
(55 columns; hidden `_PARTITIONTIME`). Google partitions the table by ingestion
time; bqemulator has no ingestion-time partitions, so the stand-in is
column-partitioned on x_ExportTime, which the reader treats the same way.
NUMERIC columns are created through the REST API (`create_table`): DDL NUMERIC
rounds to 3 decimals on the emulator.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

from google.cloud import bigquery

_S, _N, _T = "STRING", "NUMERIC", "TIMESTAMP"
_KV = (bigquery.SchemaField("Key", _S), bigquery.SchemaField("Value", _S))


def _repeated(name: str, *fields: bigquery.SchemaField) -> bigquery.SchemaField:
    return bigquery.SchemaField(name, "RECORD", mode="REPEATED", fields=fields)


FOCUS_EXPORT_SCHEMA: list[bigquery.SchemaField] = [
    *(
        bigquery.SchemaField(name, kind)
        for name, kind in (
            ("AvailabilityZone", _S),
            ("BilledCost", _N),
            ("BillingAccountId", _S),
            ("BillingCurrency", _S),
            ("BillingPeriodStart", _T),
            ("BillingPeriodEnd", _T),
            ("ChargeCategory", _S),
            ("ChargeClass", _S),
            ("ChargeDescription", _S),
            ("ChargePeriodStart", _T),
            ("ChargePeriodEnd", _T),
            ("ConsumedQuantity", _N),
            ("ConsumedUnit", _S),
            ("ContractedCost", _N),
            ("ContractedUnitPrice", _N),
            ("ListCost", _N),
            ("ListUnitPrice", _N),
            ("PricingCategory", _S),
            ("PricingQuantity", _N),
            ("PricingUnit", _S),
            ("ProviderName", _S),
            ("PublisherName", _S),
            ("RegionId", _S),
            ("RegionName", _S),
            ("ResourceId", _S),
            ("ResourceName", _S),
            ("ServiceName", _S),
            ("SkuId", _S),
            ("SkuPriceId", _S),
            ("SubAccountId", _S),
            ("SubAccountName", _S),
        )
    ),
    _repeated(
        "x_Credits",
        bigquery.SchemaField("Name", _S),
        bigquery.SchemaField("Amount", _N),
        bigquery.SchemaField("FullName", _S),
        bigquery.SchemaField("Id", _S),
        bigquery.SchemaField("Type", _S),
    ),
    bigquery.SchemaField("x_CostType", _S),
    bigquery.SchemaField("x_CurrencyConversionRate", "FLOAT64"),
    bigquery.SchemaField("x_ExportTime", _T),
    bigquery.SchemaField("x_Location", _S),
    bigquery.SchemaField(
        "x_Project",
        "RECORD",
        fields=(
            bigquery.SchemaField("Id", _S),
            bigquery.SchemaField("Number", _S),
            bigquery.SchemaField("Name", _S),
        ),
    ),
    bigquery.SchemaField("x_ServiceId", _S),
    _repeated("x_SystemLabels", *_KV),
    _repeated("x_Labels", *_KV),
    _repeated("x_ProjectLabels", *_KV),
    _repeated(
        "x_Tags",
        *_KV,
        bigquery.SchemaField("x_Inherited", "BOOL"),
        bigquery.SchemaField("x_Namespace", _S),
    ),
    *(
        bigquery.SchemaField(name, kind)
        for name, kind in (
            ("EffectiveCost", _N),
            ("PricingCurrency", _S),
            ("PricingCurrencyContractedUnitPrice", _N),
            ("PricingCurrencyEffectiveCost", _N),
            ("PricingCurrencyListUnitPrice", _N),
            ("BillingAccountType", _S),
            ("x_SubscriptionInstanceId", _S),
            ("x_PriceEffectivePriceDefault", _N),
            ("x_PriceListPriceConsumptionModel", _N),
            ("x_CostAtEffectivePriceDefault", _N),
            ("x_CostAtListConsumptionModel", _N),
            ("x_ConsumptionModelId", _S),
            ("x_ConsumptionModelDescription", _S),
        )
    ),
]

# A FOCUS 1.0 export as another provider's reader lands it (the 1.0 column set:
# no PricingCurrency*, no ServiceSubcategory, InvoiceIssuerName and
# ServiceCategory present, no Google x_Labels/x_Tags); tables named
# focus_1_0_export_* have this shape.
_DROPPED_IN_1_0 = {"PricingCurrency", "PricingCurrencyEffectiveCost", "x_Labels", "x_Tags"}
FOCUS_1_0_EXPORT_SCHEMA: list[bigquery.SchemaField] = [
    f for f in FOCUS_EXPORT_SCHEMA if f.name not in _DROPPED_IN_1_0
] + [bigquery.SchemaField("InvoiceIssuerName", _S), bigquery.SchemaField("ServiceCategory", _S)]


def create_focus_export(
    client: bigquery.Client, table_id: str, schema: list[bigquery.SchemaField] | None = None
) -> None:
    """Creates the export table (and its dataset) if missing."""
    project, dataset, _ = table_id.split(".")
    client.create_dataset(bigquery.Dataset(f"{project}.{dataset}"), exists_ok=True)
    table = bigquery.Table(table_id, schema=schema or FOCUS_EXPORT_SCHEMA)
    names = {f.name for f in table.schema}
    if "x_ExportTime" in names:
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field="x_ExportTime"
        )
    client.create_table(table, exists_ok=True)


def seed_focus_export(
    client: bigquery.Client,
    table_id: str,
    rows: Iterable[dict[str, Any]],
    schema: list[bigquery.SchemaField] | None = None,
) -> int:
    """Creates the table if missing and appends the rows (NDJSON load); returns the row count."""
    create_focus_export(client, table_id, schema)
    payload = "".join(json.dumps(r, default=str) + "\n" for r in rows).encode()
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        schema=schema or FOCUS_EXPORT_SCHEMA,
    )
    # No `size`: the client then uses a resumable upload, the path the emulator handles.
    job = client.load_table_from_file(io.BytesIO(payload), table_id, job_config=config)
    job.result(timeout=600)
    return int(job.output_rows or 0)

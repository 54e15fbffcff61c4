"""Writes Cost Management FocusCost exports (1.0, 1.0r2, 1.2-preview) into Azurite, as Azure does.

Layout (learn.microsoft.com/azure/cost-management-billing/costs/tutorial-improved-exports,
and microsoft/finops-toolkit docs-mslearn/toolkit/hubs/data-processing.md):

    <directory>/<export name>/<YYYYMMDD-YYYYMMDD>/<run id>/manifest.json
    <directory>/<export name>/<YYYYMMDD-YYYYMMDD>/<run id>/part_<n>_0001.csv.gz | .parquet

`manifest.json` holds `exportConfig` (exportName, dataVersion, type), `deliveryConfig`
(partitionData, dataOverwriteBehavior, fileFormat, compressionMode), `runInfo` (runId,
submittedTime, startDate, endDate) and `blobs[]` (blobName, byteCount, dataRowCount).

Rows (deterministic by seed): pay-as-you-go usage, usage covered by a reservation
(BilledCost 0, EffectiveCost the amortized share), unused reservation and savings plan
hours, reservation and savings plan purchases, a refund (ChargeClass Correction), tax,
Marketplace charges (another publisher), tags as JSON. Dates are written as each version
writes them: 1.0 "2024-01-01T00:00Z", 1.0r2 and 1.2-preview "2024-01-01T00:00:00Z".
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.sources.azure.focuscost import version_columns

SUBSCRIPTIONS = [
    ("00000000-aaaa-4bbb-8ccc-000000000001", "prod-platform"),
    ("00000000-aaaa-4bbb-8ccc-000000000002", "data-analytics"),
]
# (ServiceName, ServiceCategory, ServiceSubcategory, meter, unit, unit price, resource type)
SERVICES = [
    (
        "Virtual Machines",
        "Compute",
        "Virtual Machines",
        "D4s v5",
        "Hours",
        "0.192",
        "virtualmachines",
    ),
    (
        "Storage",
        "Storage",
        "Object Storage",
        "Hot LRS Data Stored",
        "GB-Months",
        "0.0184",
        "storageaccounts",
    ),
    (
        "Azure SQL Database",
        "Databases",
        "Relational Databases",
        "vCore",
        "Hours",
        "0.5044",
        "servers/databases",
    ),
    (
        "Azure Kubernetes Service",
        "Compute",
        "Containers",
        "Uptime SLA",
        "Hours",
        "0.10",
        "managedclusters",
    ),
    (
        "Bandwidth",
        "Networking",
        "Network Connectivity",
        "Data Transfer Out",
        "GB",
        "0.087",
        "virtualnetworks",
    ),
]
REGIONS = [("westeurope", "West Europe"), ("eastus", "East US"), ("northeurope", "North Europe")]
NINE = Decimal("0.000000001")
RESERVATION = "/providers/Microsoft.Capacity/reservationOrders/ro1/reservations/r1"
SAVINGS_PLAN = "/providers/Microsoft.BillingBenefits/savingsPlanOrders/spo1/savingsPlans/sp1"


@dataclass(frozen=True)
class ExportRun:
    """Where one generated export run landed."""

    manifest: str
    blobs: list[str]
    rows: int
    billed_cost: Decimal


def _ts(value: dt.datetime, version: str) -> str:
    return value.strftime("%Y-%m-%dT%H:%MZ" if version == "1.0" else "%Y-%m-%dT%H:%M:%SZ")


def _month(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, 1)
    end = dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1)
    return start, end


class FocusCostGenerator:
    """Deterministic FocusCost rows of one billing account in one currency."""

    def __init__(self, seed: int = 1, version: str = "1.0r2", currency: str = "EUR") -> None:
        self.rng = random.Random(seed)
        self.version = version
        self.currency = currency
        self.columns = list(version_columns(version))

    def _money(self, low: float, high: float) -> Decimal:
        return Decimal(str(round(self.rng.uniform(low, high), 6))).quantize(NINE)

    def _base(self, day: dt.date, hour: int) -> dict[str, Any]:
        start = dt.datetime(day.year, day.month, day.day, hour)
        period_start, period_end = _month(day)
        sub_id, sub_name = self.rng.choice(SUBSCRIPTIONS)
        region_id, region_name = self.rng.choice(REGIONS)
        return {
            "BillingAccountId": "/providers/Microsoft.Billing/billingAccounts/12345678",
            "BillingAccountName": "Acme Corp",
            "BillingAccountType": "Billing Account",
            "BillingCurrency": self.currency,
            "BillingPeriodStart": period_start,
            "BillingPeriodEnd": period_end,
            "ChargePeriodStart": start,
            "ChargePeriodEnd": start + dt.timedelta(hours=1),
            "InvoiceIssuerName": "Microsoft",
            "ProviderName": "Microsoft",
            "PublisherName": "Microsoft",
            "RegionId": region_id,
            "RegionName": region_name,
            "SubAccountId": f"/subscriptions/{sub_id}",
            "SubAccountName": sub_name,
            "SubAccountType": "Subscription",
            "x_PricingCurrency": self.currency,
            "x_BillingExchangeRate": Decimal("1"),
            "x_PublisherCategory": "Cloud Provider",
            "x_ResourceGroupName": f"rg-{sub_name}",
            "x_InvoiceSectionName": "Engineering",
            "x_SkuIsCreditEligible": "true",
            "PricingCurrency": self.currency,
            # MCA invoice numbers; 1.0 writes it as x_InvoiceId, 1.2-preview as InvoiceId.
            "InvoiceId": f"G{period_start:%y%m}{sub_id[-4:]}",
            "x_InvoiceId": f"G{period_start:%y%m}{sub_id[-4:]}",
        }

    def _usage(self, day: dt.date, hour: int, kind: str) -> dict[str, Any]:
        row = self._base(day, hour)
        name, category, subcategory, meter, unit, price, rtype = self.rng.choice(SERVICES)
        quantity = Decimal(str(round(self.rng.uniform(0.5, 40), 4)))
        unit_price = Decimal(price)
        cost = (quantity * unit_price).quantize(NINE)
        list_cost = (cost * Decimal("1.1")).quantize(NINE)
        rg = row["x_ResourceGroupName"]
        number = self.rng.randint(1, 9)
        resource = (
            f"{row['SubAccountId']}/resourcegroups/{rg}/providers/microsoft.x/{rtype}/r{number}"
        )
        tags = {"env": self.rng.choice(["prod", "dev"]), "team": self.rng.choice(["data", "web"])}
        row.update(
            {
                "ChargeCategory": "Usage",
                "ChargeFrequency": "Usage-Based",
                "ChargeDescription": f"{meter} - {row['RegionName']}",
                "ServiceName": name,
                "ServiceCategory": category,
                "ServiceSubcategory": subcategory,
                "ConsumedQuantity": quantity,
                "ConsumedUnit": unit,
                "PricingQuantity": quantity,
                "PricingUnit": unit,
                "ListUnitPrice": (unit_price * Decimal("1.1")).quantize(NINE),
                "ContractedUnitPrice": unit_price,
                "ListCost": list_cost,
                "ContractedCost": cost,
                "BilledCost": cost,
                "EffectiveCost": cost,
                "PricingCategory": "Standard",
                "ResourceId": resource,
                "ResourceName": resource.rsplit("/", 1)[1],
                "ResourceType": name,
                "SkuId": f"DZH318Z0{self.rng.randint(10, 99)}",
                "SkuPriceId": f"DZH318Z0BQ{self.rng.randint(10, 99)}/0001",
                "SkuMeter": meter,
                "Tags": json.dumps(tags, separators=(",", ":")),
                "x_SkuMeterName": meter,
                "x_SkuMeterCategory": name,
                "x_ResourceType": f"microsoft.x/{rtype}",
                "x_BilledCostInUsd": cost,
                "x_EffectiveCostInUsd": cost,
                "PricingCurrencyContractedUnitPrice": unit_price,
                "PricingCurrencyListUnitPrice": (unit_price * Decimal("1.1")).quantize(NINE),
                "PricingCurrencyEffectiveCost": cost,
            }
        )
        if kind == "reserved":
            # Covered by a reservation: paid by the purchase, amortized here.
            row.update(
                {
                    "BilledCost": Decimal("0"),
                    "EffectiveCost": (cost * Decimal("0.6")).quantize(NINE),
                    "PricingCategory": "Committed",
                    "CommitmentDiscountCategory": "Usage",
                    "CommitmentDiscountId": RESERVATION,
                    "CommitmentDiscountName": "vm-reservation-1y",
                    "CommitmentDiscountStatus": "Used",
                    "CommitmentDiscountType": "Reservation",
                    "x_BilledCostInUsd": Decimal("0"),
                }
            )
            row["x_EffectiveCostInUsd"] = row["EffectiveCost"]
            row["PricingCurrencyEffectiveCost"] = row["EffectiveCost"]
        return row

    def _one_time(self, day: dt.date, kind: str) -> dict[str, Any]:
        row = self._base(day, 0)
        row["ChargePeriodEnd"] = row["ChargePeriodStart"] + dt.timedelta(days=1)
        amount = self._money(50, 900)
        base = {
            "ChargeFrequency": "One-Time",
            "ServiceCategory": "Compute",
            "ServiceSubcategory": "Virtual Machines",
            "ServiceName": "Virtual Machines",
            "ListCost": Decimal("0"),
            "ContractedCost": amount,
            "BilledCost": amount,
            "EffectiveCost": Decimal("0"),
            "PricingQuantity": Decimal("1"),
            "PricingUnit": "Units",
            "PricingCategory": "Committed",
            "CommitmentDiscountCategory": "Usage",
            "CommitmentDiscountId": RESERVATION,
            "CommitmentDiscountName": "vm-reservation-1y",
            "CommitmentDiscountType": "Reservation",
            "ChargeCategory": "Purchase",
            "ChargeDescription": "Reserved VM Instance, D4s v5, 1 Year",
            "Tags": "{}",
            "x_SkuTerm": Decimal("12"),
        }
        row.update(base)
        if kind == "sp_purchase":
            row.update(
                {
                    "CommitmentDiscountCategory": "Spend",
                    "CommitmentDiscountId": SAVINGS_PLAN,
                    "CommitmentDiscountName": "compute-savings-plan",
                    "CommitmentDiscountType": "Savings Plan",
                    "ChargeDescription": "Savings plan for compute, 3 years",
                    "ChargeFrequency": "Recurring",
                    "x_SkuTerm": Decimal("36"),
                }
            )
        elif kind == "refund":
            row.update(
                {
                    "ChargeClass": "Correction",
                    "ContractedCost": -amount,
                    "BilledCost": -amount,
                    "ChargeDescription": "Reserved VM Instance, D4s v5, 1 Year (refund)",
                }
            )
        elif kind == "unused":
            # The unused hours of a savings plan: amortized, not billed.
            row.update(
                {
                    "ChargeCategory": "Usage",
                    "ChargeFrequency": "Usage-Based",
                    "CommitmentDiscountStatus": "Unused",
                    "CommitmentDiscountCategory": "Spend",
                    "CommitmentDiscountId": SAVINGS_PLAN,
                    "CommitmentDiscountName": "compute-savings-plan",
                    "CommitmentDiscountType": "Savings Plan",
                    "ContractedCost": Decimal("0"),
                    "BilledCost": Decimal("0"),
                    "EffectiveCost": self._money(1, 20),
                    "ChargeDescription": None,
                    "PublisherName": None,  # Microsoft leaves it empty here (conformance summary)
                }
            )
        elif kind == "tax":
            row.update(
                {
                    "ChargeCategory": "Tax",
                    "ChargeDescription": "VAT",
                    "ServiceName": "Tax",
                    "ServiceCategory": "Other",
                    "ServiceSubcategory": "Other (Other)",
                    "ContractedCost": self._money(5, 60),
                    "PricingCategory": None,
                    "CommitmentDiscountCategory": None,
                    "CommitmentDiscountId": None,
                    "CommitmentDiscountName": None,
                    "CommitmentDiscountType": None,
                    "PricingQuantity": None,
                    "PricingUnit": None,
                    "x_SkuTerm": None,
                }
            )
            row["BilledCost"] = row["ContractedCost"]
            row["EffectiveCost"] = row["ContractedCost"]
        elif kind == "marketplace":
            row.update(
                {
                    # Metered Marketplace software (billed as used, like the VM it runs on).
                    "ChargeCategory": "Usage",
                    "ChargeFrequency": "Usage-Based",
                    "PublisherName": "Contoso Data Ltd",
                    "ServiceName": "Contoso Analytics SaaS",
                    "ServiceCategory": "Analytics",
                    "ServiceSubcategory": "Analytics Platforms",
                    "ChargeDescription": "Contoso Analytics - per node hour",
                    "PricingQuantity": Decimal("24"),
                    "PricingUnit": "Hours",
                    "ConsumedQuantity": Decimal("24"),
                    "ConsumedUnit": "Hours",
                    "PricingCategory": "Standard",
                    "EffectiveCost": amount,
                    "ListCost": amount,
                    "CommitmentDiscountCategory": None,
                    "CommitmentDiscountId": None,
                    "CommitmentDiscountName": None,
                    "CommitmentDiscountType": None,
                    "x_PublisherCategory": "Marketplace",
                    "x_SkuTerm": None,
                    "Tags": '{"team":"data","cost-center":"CC-42"}',
                }
            )
        row["x_BilledCostInUsd"] = row["BilledCost"]
        row["x_EffectiveCostInUsd"] = row["EffectiveCost"]
        row["PricingCurrencyEffectiveCost"] = row["EffectiveCost"]
        return row

    def rows(self, start: dt.date, days: int, per_day: int) -> Iterator[dict[str, Any]]:
        """`per_day` usage rows a day, plus one of each other kind on the first day."""
        for offset in range(days):
            day = start + dt.timedelta(days=offset)
            for i in range(per_day):
                kind = "reserved" if self.rng.random() < 0.25 else "usage"
                yield self._usage(day, i % 24, kind)
            if offset == 0:
                for kind in ("purchase", "sp_purchase", "refund", "unused", "tax", "marketplace"):
                    yield self._one_time(day, kind)

    def cells(self, row: dict[str, Any]) -> list[str]:
        """One row as the CSV cells of this version (empty = null)."""
        out = []
        for name in self.columns:
            value = row.get(name)
            if value is None:
                out.append("")
            elif isinstance(value, dt.datetime):
                out.append(_ts(value, self.version))
            else:
                out.append(str(value))
        return out


def _amount(value: Any) -> Decimal:
    """A row's money as written; a deliberately broken value (bad-input tests) counts 0."""
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except ArithmeticError:
        return Decimal(0)


def csv_gz(header: list[str], rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return gzip.compress(text.getvalue().encode(), mtime=0)


def parquet(generator: FocusCostGenerator, rows: list[dict[str, Any]]) -> bytes:
    """Typed Parquet, as Azure writes it: decimals, UTC timestamps, strings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = version_columns(generator.version)
    arrays = {}
    for name in generator.columns:
        values = [r.get(name) for r in rows]
        kind = types[name]
        if kind == "NUMERIC":
            arrays[name] = pa.array(values, pa.decimal128(28, 9))
        elif kind == "TIMESTAMP":
            arrays[name] = pa.array(
                [v.replace(tzinfo=dt.UTC) if v else None for v in values], pa.timestamp("us", "UTC")
            )
        else:
            arrays[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    out = io.BytesIO()
    pq.write_table(pa.table(arrays), out, compression="snappy")
    return out.getvalue()


def write_export(
    container: Any,
    directory: str,
    export_name: str,
    generator: FocusCostGenerator,
    rows: list[dict[str, Any]],
    *,
    range_start: dt.date,
    range_end: dt.date,
    file_format: str = "csv",
    rows_per_part: int = 500,
    run_id: str | None = None,
    submitted: dt.datetime | None = None,
) -> ExportRun:
    """Uploads the rows as one export run (parts, then the manifest) and says where they went."""
    run_id = run_id or str(uuid.UUID(int=generator.rng.getrandbits(128)))
    folder = f"{directory}/{export_name}/{range_start:%Y%m%d}-{range_end:%Y%m%d}/{run_id}"
    blobs = []
    parts = [rows[i : i + rows_per_part] for i in range(0, len(rows), rows_per_part)] or [[]]
    for n, part in enumerate(parts):
        if file_format == "parquet":
            name, data = f"{folder}/part_{n}_0001.snappy.parquet", parquet(generator, part)
        else:
            cells = [generator.cells(r) for r in part]
            name, data = f"{folder}/part_{n}_0001.csv.gz", csv_gz(generator.columns, cells)
        container.upload_blob(name, data, overwrite=True)
        blobs.append({"blobName": name, "byteCount": len(data), "dataRowCount": len(part)})
    submitted = submitted or dt.datetime(range_end.year, range_end.month, range_end.day, 6)
    manifest = {
        "manifestVersion": "2024-04-01",
        "byteCount": sum(b["byteCount"] for b in blobs),
        "blobCount": len(blobs),
        "dataRowCount": len(rows),
        "exportConfig": {
            "exportName": export_name,
            "resourceId": "/providers/Microsoft.Billing/billingAccounts/12345678/providers/"
            f"Microsoft.CostManagement/exports/{export_name}",
            "dataVersion": generator.version,
            "apiVersion": "2023-07-01-preview",
            "type": "FocusCost",
            "timeFrame": "Custom",
            "granularity": "Daily",
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "OverwritePreviousReport",
            "fileFormat": "Parquet" if file_format == "parquet" else "Csv",
            "compressionMode": "snappy" if file_format == "parquet" else "gzip",
            "containerUri": "",
            "rootFolderPath": directory,
        },
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": submitted.isoformat() + "Z",
            "runId": run_id,
            "startDate": f"{range_start:%Y-%m-%d}T00:00:00",
            "endDate": f"{range_end:%Y-%m-%d}T00:00:00",
        },
        "blobs": blobs,
    }
    container.upload_blob(f"{folder}/manifest.json", json.dumps(manifest, indent=2), overwrite=True)
    return ExportRun(
        manifest=f"{folder}/manifest.json",
        blobs=[b["blobName"] for b in blobs],
        rows=len(rows),
        billed_cost=sum((_amount(r.get("BilledCost")) for r in rows), Decimal(0)),
    )


# The storage account the local stack's Azurite serves (local/cloud_access.py).
LOCAL_ACCOUNT = "cvglocalexports"
DEMO_DIRECTORY = "exports/focus"
DEMO_EXPORT = "demo-focus"


@dataclass(frozen=True)
class LocalExport:
    """An export seeded into the local stack's Azurite, and a read-only SAS for its container."""

    run: ExportRun
    container: str
    sas_token: str


def seed_local_export(
    data_dir: Path,
    container: str,
    first_day: dt.date,
    days: int,
    rows_per_day: int,
    *,
    seed: int = 7,
    version: str = "1.0r2",
    range_end: dt.date | None = None,
) -> LocalExport:
    """Writes one export run (range first_day..range_end) into the stack's Azurite.

    The account key and TLS certificate are the ones the stack wrote under its data
    dir (`clouds/azurite/`); the SAS is what a customer would hand over: read + list
    on the container only, for two hours.
    """
    from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas

    azurite = data_dir / "clouds" / "azurite"
    key = json.loads((azurite / "azurite-accounts.json").read_text())[LOCAL_ACCOUNT]
    endpoint = json.loads((data_dir / "endpoints.json").read_text())["azurite_blob_endpoint"]
    client: Any = ContainerClient(
        endpoint.format(account=LOCAL_ACCOUNT),
        container,
        credential={"account_name": LOCAL_ACCOUNT, "account_key": key},
        connection_verify=str(azurite / "tls" / "cert.pem"),
    )
    client.create_container()
    generator = FocusCostGenerator(seed=seed, version=version)
    rows = list(generator.rows(first_day, days, rows_per_day))
    end = range_end or first_day + dt.timedelta(days=days - 1)
    run = write_export(
        client, DEMO_DIRECTORY, DEMO_EXPORT, generator, rows, range_start=first_day, range_end=end
    )
    sas = generate_container_sas(
        LOCAL_ACCOUNT,
        container,
        account_key=key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2),
    )
    return LocalExport(run, container, sas)


def demo_run(stack: Any, key: dict[str, str], days: int = 3, rows_per_day: int = 300) -> None:
    """`make demo`'s Azure part: seed an export, SAS credential, AZURE provider config,
    an azure_cost_export pipeline over the export's dates, one run; exits the demo with
    the run's error unless it SUCCEEDED (a failed run is never shown as success)."""
    import os

    from local import demo
    from shared.platform.settings import REPO_ROOT

    data_dir = stack.data_dir or Path(os.environ.get("LOCAL_DATA_DIR", REPO_ROOT / ".local"))
    first = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days)
    export = seed_local_export(
        Path(data_dir), f"demo-{uuid.uuid4().hex[:8]}", first, days, rows_per_day
    )
    demo.say(f"seeded an Azure FocusCost export: {export.run.rows} rows in {export.container}")
    status, credential = demo.http(
        "POST",
        f"{stack.gateway}/credentials/",
        {
            "provider": "AZURE",
            "credential_type": "SAS_TOKEN",
            "credential_name": "azure export reader",
            "credentials": {"sas_token": export.sas_token},
        },
        key,
    )
    demo.expect(status, credential, 201, "adding the Azure credential")
    status, provider = demo.http(
        "POST",
        f"{stack.gateway}/credentials/provider-configs",
        {
            "provider": "AZURE",
            "currency": "EUR",
            "credential_id": credential["credential_id"],
            "azure": {
                "storage_account": LOCAL_ACCOUNT,
                "container": export.container,
                "directory": DEMO_DIRECTORY,
                "export_name": DEMO_EXPORT,
                "dataset_version": "1.0r2",
            },
        },
        key,
    )
    demo.expect(status, provider, 201, "adding the Azure provider config")
    status, config = demo.http(
        "POST",
        f"{stack.gateway}/pipelines/configs",
        {
            "name": "daily Azure costs",
            "pipeline": "azure_cost_export",
            "provider_config_id": provider["config_id"],
            "schedule_cron": "0 6 * * *",
            "timezone": "UTC",
        },
        key,
    )
    demo.expect(status, config, 201, "scheduling azure_cost_export")
    last = first + dt.timedelta(days=days - 1)
    status, started = demo.http(
        "POST",
        f"{stack.gateway}/pipelines/runs",
        {"config_id": config["config_id"], "date_from": str(first), "date_to": str(last)},
        key,
    )
    demo.expect(status, started, 202, "starting the Azure run")
    run = demo.wait_for_run(stack, key, config["config_id"])
    demo.show_run(run)
    if run["state"] != "SUCCEEDED":
        raise SystemExit(f"[demo] the Azure run {run['state']}: {run.get('error_message') or ''}")

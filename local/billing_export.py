"""Demo data: a seeded, deterministic generator of GCP billing export rows, and a fast seeder.

The rows follow the real Cloud Billing *detailed* export schema (nested, money as
FLOAT64): services and SKUs, projects with ancestors and labels, locations,
resources, usage with pricing units, credits of every type, invoice.month,
cost_type regular/tax/adjustment/rounding_error, adjustment_info, price,
cost_at_list, currency and conversion rate. `export_schema()` is that schema,
derived from `schemas/tenant/gcp_billing_raw.json` (the raw copy has the same
columns, with NUMERIC where the export has FLOAT64, plus lineage).

`seed_export()` loads rows into an emulator (or BigQuery) table fast: it creates
the table through the REST `create_table` and loads NDJSON through a resumable
upload (bqemulator's multipart load path is broken, and paging rows through
DML or streaming would be far slower).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.platform.schemas import load_catalog
from shared.platform.settings import REPO_ROOT
from shared.platform.warehouse import table_from_spec
from shared.sources.gcp.reader import LINEAGE

PT = dt.timezone(dt.timedelta(hours=-8))  # invoices are cut in Pacific time (PST is enough here)
BILLING_ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
# The export's FLOAT64 columns; the raw copy holds them as NUMERIC.
MONEY_FIELDS = frozenset(
    {
        "cost",
        "cost_at_list",
        "credits.amount",
        "usage.amount",
        "usage.amount_in_pricing_units",
        "price.effective_price",
        "price.tier_start_amount",
        "price.pricing_unit_quantity",
    }
)


def export_schema() -> list[bigquery.SchemaField]:
    """The billing export's schema: the raw table's columns without lineage, money as FLOAT64."""
    spec = load_catalog(REPO_ROOT / "schemas").tenant["gcp_billing_raw"]
    raw = table_from_spec("p", "d", spec).schema

    def convert(field: bigquery.SchemaField, prefix: str = "") -> bigquery.SchemaField:
        path = prefix + field.name
        kind = "FLOAT" if path in MONEY_FIELDS else field.field_type
        sub = [convert(f, path + ".") for f in field.fields] if field.fields else ()
        mode = "NULLABLE" if field.mode == "REQUIRED" and path != "usage_start_time" else field.mode
        return bigquery.SchemaField(field.name, kind, mode=mode, fields=sub)

    return [convert(f) for f in raw if f.name not in LINEAGE]


@dataclass(frozen=True)
class Sku:
    id: str
    description: str
    usage_unit: str
    pricing_unit: str
    per_pricing_unit: float  # usage units per pricing unit
    price: float  # USD per pricing unit
    amount: tuple[float, float]  # usage per hourly row


@dataclass(frozen=True)
class Service:
    id: str
    description: str
    resource: str  # global name pattern
    skus: tuple[Sku, ...]
    zonal: bool = False


SERVICES: tuple[Service, ...] = (
    Service(
        "6F81-5844-456A",
        "Compute Engine",
        "//compute.googleapis.com/projects/{project}/zones/{zone}/instances/{name}",
        (
            Sku(
                "2E27-4F75-95CD",
                "N2 Instance Core running in Americas",
                "seconds",
                "hour",
                3600,
                0.031611,
                (14400, 115200),  # 4-32 vCPU for the hour
            ),
            Sku(
                "6C71-E0B1-7E28",
                "N2 Instance Ram running in Americas",
                "byte-seconds",
                "gibibyte hour",
                3865470566400,
                0.004237,
                (6e13, 5e14),  # 16-128 GiB for the hour
            ),
        ),
        zonal=True,
    ),
    Service(
        "95FF-2EF5-5EA1",
        "Cloud Storage",
        "//storage.googleapis.com/projects/_/buckets/{name}",
        (
            Sku(
                "E5F0-6A5D-7BAD",
                "Standard Storage US Multi-region",
                "byte-seconds",
                "gibibyte month",
                2.8759101014016e15,
                0.026,
                (1e15, 4e16),  # a 0.25-10 TiB bucket for the hour
            ),
        ),
    ),
    Service(
        "24E6-581D-38E5",
        "BigQuery",
        "//bigquery.googleapis.com/projects/{project}/datasets/{name}",
        (
            Sku(
                "3362-E469-6BEF",
                "Analysis (us)",
                "bytes",
                "tebibyte",
                1099511627776,
                6.25,
                (1e9, 5e11),
            ),
        ),
    ),
    Service(
        "9662-B51E-5089",
        "Cloud SQL",
        "//cloudsql.googleapis.com/projects/{project}/instances/{name}",
        (
            Sku(
                "D3C5-4C5E-A7F3",
                "Cloud SQL for PostgreSQL: Zonal - vCPU in Americas",
                "seconds",
                "hour",
                3600,
                0.0413,
                (3600, 7200),
            ),
        ),
        zonal=True,
    ),
    Service(
        "152E-C115-5142",
        "Cloud Run",
        "//run.googleapis.com/projects/{project}/locations/{region}/services/{name}",
        (
            Sku(
                "8B79-9A45-3A0C",
                "CPU Allocation Time",
                "seconds",
                "vCPU-second",
                1,
                0.000024,
                (100, 90000),
            ),
        ),
    ),
    Service(
        "E505-1604-58F8",
        "Networking",
        "//compute.googleapis.com/projects/{project}/regions/{region}/forwardingRules/{name}",
        (
            Sku(
                "984A-1F25-2C5E",
                "Network Internet Data Transfer Out",
                "bytes",
                "gibibyte",
                1073741824,
                0.12,
                (1e6, 5e10),
            ),
        ),
    ),
    Service(
        "C7E2-9256-1C43",
        "Vertex AI",
        "//aiplatform.googleapis.com/projects/{project}/locations/{region}/endpoints/{name}",
        (
            Sku(
                "A1B2-C3D4-E5F6",
                "Gemini 1.5 Flash Input Characters",
                "count",
                "count",
                1,
                0.00000001875,
                (1e5, 5e7),
            ),
        ),
    ),
)
INVOICE_SERVICE = ("", "Invoice")
PROJECTS = (
    ("acme-web-prod", "310443220117", "Web Prod", "web", "prod"),
    ("acme-web-staging", "529314771820", "Web Staging", "web", "staging"),
    ("acme-data-prod", "661209314552", "Data Prod", "data", "prod"),
    ("acme-ml-sandbox", "774512093341", "ML Sandbox", "ml", "dev"),
)
REGIONS = (
    ("us-central1", "US", ("us-central1-a", "us-central1-b")),
    ("us-east1", "US", ("us-east1-b", "us-east1-c")),
    ("europe-west1", "BE", ("europe-west1-b", "europe-west1-d")),
)
CREDIT_TYPES = (
    ("SUSTAINED_USAGE_DISCOUNT", "Sustained Usage Discount", 0.2),
    ("COMMITTED_USAGE_DISCOUNT", "Committed use discount: CPU", 0.37),
    ("COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE", "Committed use discount - dollar based", 0.28),
    ("DISCOUNT", "Spending based discount", 0.05),
    ("FREE_TIER", "Free tier", 1.0),
    ("PROMOTION", "Free trial credit", 0.5),
    ("SUBSCRIPTION_BENEFIT", "Subscription benefit", 0.1),
    ("RESELLER_MARGIN", "Reseller margin", 0.03),
    ("FEE_UTILIZATION_OFFSET", "Fee utilization offset", 0.02),
)
ORG = ("organizations/123456789012", "acme.example")
FOLDERS = {
    "web": ("folders/201", "Web"),
    "data": ("folders/202", "Data"),
    "ml": ("folders/203", "ML"),
}


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _money(value: float) -> float:
    # The export's FLOAT64 money has at most 6 decimals in practice; round like it.
    return round(value, 6)


class ExportGenerator:
    """Deterministic rows for a date range: same seed, same rows, byte for byte."""

    def __init__(
        self,
        seed: int = 11,
        *,
        currency: str = "USD",
        conversion_rate: float = 1.0,
        billing_account_id: str = BILLING_ACCOUNT,
    ) -> None:
        self.seed = seed
        self.currency = currency
        self.rate = conversion_rate
        self.billing_account_id = billing_account_id

    def day(self, day: dt.date, rows: int) -> Iterator[dict[str, Any]]:
        """`rows` rows for usage date `day` (UTC): mostly usage, plus tax, adjustment, rounding."""
        rng = random.Random(f"{self.seed}:{day.isoformat()}")
        specials = max(3, rows // 200) if rows >= 10 else 0
        # What each service was charged today after credits: an adjustment
        # gives back a share of it, never more (an SLA credit is a percentage).
        net: dict[str, float] = {}
        for i in range(rows - specials):
            row = self._usage(rng, day, i)
            name = row["service"]["description"]
            net[name] = net.get(name, 0.0) + row["cost"] + sum(c["amount"] for c in row["credits"])
            yield row
        for i in range(specials):
            kind = ("tax", "adjustment", "rounding_error")[i % 3]
            yield self._special(rng, day, kind, i, net)

    def rows(self, start: dt.date, days: int, rows_per_day: int) -> Iterator[dict[str, Any]]:
        for offset in range(days):
            yield from self.day(start + dt.timedelta(days=offset), rows_per_day)

    def _project(self, rng: random.Random) -> dict[str, Any]:
        pid, number, name, team, env = rng.choice(PROJECTS)
        folder = FOLDERS[team]
        return {
            "id": pid,
            "number": number,
            "name": name,
            "labels": [{"key": "team", "value": team}, {"key": "env", "value": env}],
            "ancestry_numbers": f"/{ORG[0].split('/')[1]}/{folder[0].split('/')[1]}/",
            "ancestors": [
                {"resource_name": f"projects/{number}", "display_name": name},
                {"resource_name": folder[0], "display_name": folder[1]},
                {"resource_name": ORG[0], "display_name": ORG[1]},
            ],
        }

    def _base(self, start: dt.datetime, rng: random.Random) -> dict[str, Any]:
        end = start + dt.timedelta(hours=1)
        invoice_month = start.astimezone(PT).strftime("%Y%m")
        return {
            "billing_account_id": self.billing_account_id,
            "usage_start_time": _ts(start),
            "usage_end_time": _ts(end),
            "export_time": _ts(end + dt.timedelta(minutes=rng.randint(30, 600))),
            "currency": self.currency,
            "currency_conversion_rate": self.rate,
            "invoice": {"month": invoice_month, "publisher_type": "GOOGLE"},
            "transaction_type": "GOOGLE",
            "seller_name": "Google",
            "labels": [],
            "system_labels": [],
            "tags": [],
            "credits": [],
        }

    def _usage(self, rng: random.Random, day: dt.date, i: int) -> dict[str, Any]:
        hour = i % 24
        start = dt.datetime.combine(day, dt.time(hour), dt.UTC)
        service = SERVICES[rng.randrange(len(SERVICES))]
        sku = service.skus[rng.randrange(len(service.skus))]
        region, country, zones = REGIONS[rng.randrange(len(REGIONS))]
        zone = rng.choice(zones) if service.zonal else None
        project = self._project(rng)
        name = f"{service.description.lower().replace(' ', '-')}-{rng.randrange(40)}"
        amount = float(round(rng.uniform(*sku.amount), 3))
        pricing_qty = amount / sku.per_pricing_unit
        price = sku.price * self.rate
        cost_at_list = _money(pricing_qty * price)
        cost = _money(cost_at_list * (0.9 if rng.random() < 0.2 else 1.0))
        row = self._base(start, rng)
        row.update(
            {
                "service": {"id": service.id, "description": service.description},
                "sku": {"id": sku.id, "description": sku.description},
                "project": project,
                "location": {
                    "location": zone or region,
                    "country": country,
                    "region": region,
                    "zone": zone,
                },
                "resource": {
                    "name": name,
                    "global_name": service.resource.format(
                        project=project["id"], zone=zone, region=region, name=name
                    ),
                },
                "cost": cost,
                "cost_at_list": cost_at_list,
                "cost_type": "regular",
                "usage": {
                    "amount": amount,
                    "unit": sku.usage_unit,
                    "amount_in_pricing_units": pricing_qty,
                    "pricing_unit": sku.pricing_unit,
                },
                "price": {
                    "effective_price": round(price * cost / cost_at_list, 9)
                    if cost_at_list
                    else price,
                    "tier_start_amount": 0.0,
                    "unit": sku.pricing_unit,
                    "pricing_unit_quantity": 1.0,
                },
            }
        )
        if rng.random() < 0.5:
            row["labels"] = [
                {"key": "app", "value": rng.choice(("checkout", "search", "etl", "api"))},
                {"key": "cost-center", "value": rng.choice(("cc-100", "cc-200"))},
            ]
        if service.zonal:
            row["system_labels"] = [
                {"key": "compute.googleapis.com/machine_spec", "value": "n2-standard-4"}
            ]
        if rng.random() < 0.1:
            row["tags"] = [
                {
                    "key": "environment",
                    "value": project["labels"][1]["value"],
                    "inherited": True,
                    "namespace": "123456789012",
                }
            ]
        row["credits"] = self._credits(rng, cost, project["number"], region)
        return row

    def _credits(
        self, rng: random.Random, cost: float, number: str, region: str
    ) -> list[dict[str, Any]]:
        credits = []
        if cost <= 0 or rng.random() < 0.55:
            return credits
        remaining = cost
        for _ in range(rng.choice((1, 1, 2))):
            ctype, name, share = CREDIT_TYPES[rng.randrange(len(CREDIT_TYPES))]
            # Credits never exceed what is left of the charge they discount.
            amount = -min(_money(cost * share * rng.uniform(0.2, 1.0)), _money(remaining))
            remaining -= -amount
            if ctype.startswith("COMMITTED_USAGE_DISCOUNT"):
                cid = f"projects/{number}/regions/{region}/commitments/cud-{rng.randrange(3)}"
            else:
                cid = f"{ctype.lower()}-{rng.randrange(1000):04d}"
            credits.append(
                {"name": name, "amount": amount, "full_name": name, "id": cid, "type": ctype}
            )
        return credits

    def _special(
        self, rng: random.Random, day: dt.date, kind: str, i: int, net: dict[str, float]
    ) -> dict[str, Any]:
        start = dt.datetime.combine(day, dt.time(i % 24), dt.UTC)
        row = self._base(start, rng)
        row.update(
            {
                "service": {"id": INVOICE_SERVICE[0], "description": INVOICE_SERVICE[1]},
                "sku": {"id": "", "description": kind.replace("_", " ").title()},
                "project": None,
                "location": None,
                "resource": None,
                "cost_type": kind,
                "usage": {
                    "amount": 0.0,
                    "unit": None,
                    "amount_in_pricing_units": 0.0,
                    "pricing_unit": None,
                },
                "price": None,
            }
        )
        if kind == "tax":
            row["sku"] = {"id": "", "description": "Sales tax"}
            row["cost"] = _money(rng.uniform(1, 40) * self.rate)
        elif kind == "adjustment":
            # Adjustments carry a service and project: they correct an earlier charge.
            service = SERVICES[0]
            row["service"] = {"id": service.id, "description": service.description}
            row["project"] = self._project(rng)
            share = rng.uniform(0.02, 0.1)
            credit = _money(share * net.get(service.description, 0.0))
            row["cost"] = -credit
            net[service.description] = net.get(service.description, 0.0) - credit
            row["adjustment_info"] = {
                "id": f"adj-{day:%Y%m%d}-{i}",
                "description": "SLA credit for an outage",
                "mode": "MANUAL_ADJUSTMENT",
                "type": "GENERAL_ADJUSTMENT",
            }
        else:
            row["cost"] = rng.choice((0.000001, -0.000001, 0.000002))
        row["cost_at_list"] = row["cost"]
        return row


def to_ndjson(rows: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode()


def create_export_table(client: bigquery.Client, table_id: str) -> bigquery.Table:
    """The source table with the export's schema (REST create, never DDL: NUMERIC stays exact)."""
    project, dataset, _ = table_id.split(".")
    client.create_dataset(f"{project}.{dataset}", exists_ok=True)
    table = bigquery.Table(table_id, schema=export_schema())
    # Google partitions the export by ingestion time (_PARTITIONTIME, the day a row
    # was appended: its export_time's day). bqemulator has no ingestion-time
    # partitions (it reads _PARTITIONTIME as the current time), so the local export
    # is partitioned on export_time, which the extract treats as the same partition.
    table.time_partitioning = bigquery.TimePartitioning(field="export_time")
    try:
        return client.create_table(table)
    except gexc.Conflict:
        return client.get_table(table_id)


def seed_export(client: bigquery.Client, table_id: str, rows: Iterable[dict[str, Any]]) -> int:
    """Creates `project.dataset.table` if missing and appends the rows; returns the row count."""
    create_export_table(client, table_id)
    payload = to_ndjson(rows)
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        schema=export_schema(),
    )
    # No `size`: the client then uses a resumable upload, the path the emulator handles.
    job = client.load_table_from_file(io.BytesIO(payload), table_id, job_config=config)
    job.result(timeout=600)
    return int(job.output_rows or 0)

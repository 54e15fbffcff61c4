"""Creates the central dataset and tables from `schemas/`, idempotently, and reports what it did."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.platform.schemas import SchemaCatalog, TableSpec
from shared.platform.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass
class BootstrapReport:
    dataset: str
    dataset_created: bool
    # In a dry run nothing is created: `created` lists what a real run would create.
    dry_run: bool = False
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    # Existing tables whose shape differs from schemas/: reported, never
    # altered automatically (a schema change is a migration, not a bootstrap).
    drift: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_dataset(
    warehouse: Warehouse, dataset_id: str, *, description: str, labels: dict[str, str]
) -> bool:
    """Creates the dataset if missing; True if this call created it."""
    dataset = bigquery.Dataset(f"{warehouse.project}.{dataset_id}")
    dataset.location = warehouse.settings.bq_location
    dataset.description = description
    dataset.labels = labels
    try:
        warehouse.client.create_dataset(dataset, timeout=30)
        return True
    except gexc.Conflict:
        return False


def ensure_tables(
    warehouse: Warehouse, dataset_id: str, specs: dict[str, TableSpec], report: BootstrapReport
) -> None:
    """Creates each missing table; existing ones are listed and checked for drift."""
    present = warehouse.existing_tables(dataset_id)
    for name, spec in specs.items():
        if name in present:
            report.existing.append(name)
            problems = table_drift(
                warehouse.client.get_table(f"{warehouse.project}.{dataset_id}.{name}"), spec
            )
            if problems:
                report.drift[name] = problems
            continue
        if report.dry_run:
            report.created.append(name)
            continue
        try:
            warehouse.client.create_table(
                spec.to_bigquery(warehouse.project, dataset_id), timeout=30
            )
            report.created.append(name)
        except gexc.Conflict:
            # A concurrent bootstrap won the race: the table exists, which is all we need.
            report.existing.append(name)


def table_drift(table: bigquery.Table, spec: TableSpec) -> list[str]:
    """Human-readable differences between a live table and its schema file."""
    problems = []
    live = {f.name: f for f in table.schema}
    for wanted in spec.schema_:
        got = live.get(wanted.name)
        if got is None:
            problems.append(f"missing column {wanted.name}")
        elif _canonical_type(got.field_type) != _canonical_type(wanted.type):
            problems.append(f"column {wanted.name} is {got.field_type}, schema says {wanted.type}")
    partitioning = table.time_partitioning
    if partitioning is None or partitioning.field != spec.timePartitioning.field:
        problems.append("partitioning differs")
    if list(table.clustering_fields or []) != list(spec.clustering.fields):
        problems.append("clustering differs")
    return problems


_ALIASES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}


def _canonical_type(type_name: str) -> str:
    return _ALIASES.get(type_name.upper(), type_name.upper())


def bootstrap_central(
    warehouse: Warehouse, catalog: SchemaCatalog, *, dry_run: bool = False
) -> BootstrapReport:
    """The central dataset and every central table; a second call creates nothing."""
    dataset_id = warehouse.settings.central_dataset
    if dry_run:
        exists = dataset_id in {d.dataset_id for d in warehouse.client.list_datasets()}
        report = BootstrapReport(dataset=dataset_id, dataset_created=not exists, dry_run=True)
        if not exists:
            report.created.extend(catalog.central)
            return report
    else:
        created = ensure_dataset(
            warehouse,
            dataset_id,
            description="Convergence central dataset: tenants, keys, credentials, run logs.",
            labels={"app": "convergence", "kind": "central"},
        )
        report = BootstrapReport(dataset=dataset_id, dataset_created=created)
    ensure_tables(warehouse, dataset_id, catalog.central, report)
    log.info(
        "bootstrap finished",
        extra={
            "dry_run": dry_run,
            "tables_created": report.created,
            "tables_existing": len(report.existing),
        },
    )
    return report

"""Creates the central dataset and tables from `schemas/`, idempotently, and reports what it did."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from google.api_core import exceptions as gexc

from shared.platform.errors import ApiError
from shared.platform.schemas import SchemaCatalog, TableSpec
from shared.platform.warehouse import TableShape, Warehouse

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
    return warehouse.create_dataset(dataset_id, description=description, labels=labels)


def ensure_tables(
    warehouse: Warehouse,
    dataset_id: str,
    specs: dict[str, TableSpec],
    report: BootstrapReport,
    *,
    check_drift: bool = True,
    fresh: bool = False,
) -> None:
    """Creates each missing table; existing ones are listed and (optionally) checked for drift.

    With the drift check, one INFORMATION_SCHEMA query describes every table of
    the dataset; without it, one tables.list call names them. Never a read per table.
    A `fresh` dataset (this request created it) holds nothing, so nothing is read.
    """
    if fresh:
        shapes: dict[str, TableShape] = {}
        present: set[str] = set()
    elif check_drift:
        shapes = warehouse.table_shapes(dataset_id)
        present = set(shapes)
    else:
        shapes, present = {}, warehouse.existing_tables(dataset_id)
    for name, spec in specs.items():
        if name in present:
            report.existing.append(name)
            problems = table_drift(shapes[name], spec) if name in shapes else []
            if problems:
                report.drift[name] = problems
            continue
        if report.dry_run:
            report.created.append(name)
            continue
        if warehouse.create_table(dataset_id, spec):
            report.created.append(name)
        else:
            # A concurrent bootstrap won the race: the table exists, which is all we need.
            report.existing.append(name)


def table_drift(table: TableShape, spec: TableSpec) -> list[str]:
    """Human-readable differences between a live table and its schema file."""
    problems = []
    for wanted in spec.schema_:
        got = table.columns.get(wanted.name)
        if got is None:
            problems.append(f"missing column {wanted.name}")
        elif _canonical_type(got) != _canonical_type(wanted.type):
            problems.append(f"column {wanted.name} is {got}, schema says {wanted.type}")
    if table.partition_field != spec.timePartitioning.field:
        problems.append("partitioning differs")
    if table.clustering_fields != list(spec.clustering.fields):
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
        exists = warehouse.dataset_labels(dataset_id) is not None
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
    ensure_tables(
        warehouse, dataset_id, catalog.central, report, fresh=report.dataset_created and not dry_run
    )
    log.info(
        "bootstrap finished",
        extra={
            "dry_run": dry_run,
            "tables_created": report.created,
            "tables_existing": len(report.existing),
        },
    )
    return report


def not_bootstrapped() -> ApiError:
    """503 naming the cure: the central tables are missing until an operator bootstraps."""
    return ApiError(
        503,
        "not_bootstrapped",
        "the platform's central tables are missing; an operator must run POST /admin/bootstrap",
        headers={"Retry-After": "30"},
    )


def missing_central_tables(
    warehouse: Warehouse, catalog: SchemaCatalog, *, timeout: float | None = None
) -> list[str]:
    """Central tables that don't exist, in one tables.list call (no query job)."""
    present = warehouse.existing_tables(warehouse.settings.central_dataset, timeout=timeout)
    return sorted(set(catalog.central) - present)


def names_central_dataset(exc: BaseException, central_dataset: str) -> bool:
    """Whether `exc` is BigQuery's "Not found" for the central dataset or one of its tables.

    BigQuery says `Not found: Table proj:tenants.tenant_profiles was not found
    in location US` or `Not found: Dataset proj:tenants ...`. (bqemulator
    answers a query on a missing table with no rows instead, which callers
    must not read as "no such row": see onboarding.)
    """
    if not isinstance(exc, gexc.NotFound):
        return False
    pattern = rf"[:.`]{re.escape(central_dataset)}([.`\s]|$)"
    return re.search(pattern, str(exc)) is not None

"""A tenant's own dataset: data tables, views over the central logs, write check, deletion."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry

from shared.platform.bootstrap import BootstrapReport, ensure_tables
from shared.platform.errors import conflict
from shared.platform.identifiers import TENANT_ID_RE
from shared.platform.schemas import SchemaCatalog
from shared.platform.warehouse import Warehouse, table_from_spec

if TYPE_CHECKING:
    from google.cloud import bigquery

log = logging.getLogger(__name__)

FINGERPRINT_LABEL = "convergence_onboarding"
TENANT_LABEL = "convergence_tenant"

# View name in the tenant dataset -> central log table it filters.
LOG_VIEWS = {
    "pipeline_runs": "tenant_pipeline_runs",
    "step_logs": "tenant_step_logs",
    "dq_results": "tenant_dq_results",
}


def dataset_id_for(tenant_id: str, suffix: str = "") -> str:
    return f"{tenant_id}{suffix}"


@dataclass
class DatasetOutcome:
    dataset_id: str
    dataset_created: bool
    tables_created: list[str] = field(default_factory=list)
    tables_existing: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)


def claim_dataset(warehouse: Warehouse, dataset_id: str, tenant_id: str, fingerprint: str) -> bool:
    """Creates the dataset labelled with the request fingerprint: the atomic claim of a tenant id.

    Creating a dataset succeeds exactly once, so two onboardings of one id can't
    both win. Returns True if this call created it; an existing dataset is ours
    only if it carries the same fingerprint (a retry of the same request).
    """
    created = warehouse.create_dataset(
        dataset_id,
        description=f"Convergence tenant {tenant_id}: cost data and run logs.",
        labels={TENANT_LABEL: tenant_id, FINGERPRINT_LABEL: fingerprint[:63]},
    )
    if created:
        return True
    labels = warehouse.dataset_labels(dataset_id) or {}
    if labels.get(FINGERPRINT_LABEL) != fingerprint[:63]:
        raise conflict(f"tenant_id '{tenant_id}' is already taken", field="tenant_id")
    return False


# The tables a tenant dataset gets when the tenant is onboarded. Every other tenant
# table (a source's raw tables, the access epoch) is created by its first use
# (`ensure_tenant_tables`), so onboarding stays a fixed cost as sources are added,
# and tenants onboarded before a source existed get its tables when they use it.
ONBOARDING_TABLES = frozenset({"focus_cost", "gcp_billing_raw"})


def ensure_tenant_tables(
    warehouse: Warehouse, catalog: SchemaCatalog, dataset_id: str, names: Iterable[str]
) -> list[str]:
    """Creates the named tenant tables that are missing (one tables.list); the names created."""
    wanted = [name for name in names if name not in ONBOARDING_TABLES]
    if not wanted:
        return []
    present = warehouse.existing_tables(dataset_id)
    return [
        name
        for name in wanted
        if name not in present and warehouse.create_table(dataset_id, catalog.tenant[name])
    ]


def add_appended_columns(
    warehouse: Warehouse, catalog: SchemaCatalog, dataset_id: str, name: str
) -> list[str]:
    """Adds the schema file's columns a table made before they were appended; the names added.

    A source whose insert names columns appended to its schema file after tenants had the
    table (AWS's net_* columns of aws_cur2_raw) calls this first: NULLABLE and appended
    only, which BigQuery allows in place. Idempotent: a table that has them all is left
    alone (one tables.get).
    """
    table = warehouse.client.get_table(
        f"{warehouse.project}.{dataset_id}.{name}", retry=warehouse.api_retry
    )
    have = {f.name for f in table.schema}
    wanted = table_from_spec(warehouse.project, dataset_id, catalog.tenant[name]).schema
    missing = [f for f in wanted if f.name not in have and f.mode == "NULLABLE"]
    if not missing:
        return []
    # tables.update adds them on BigQuery (metadata and data). The emulator's update only
    # changes the metadata, so ALTER TABLE ADD COLUMN IF NOT EXISTS follows: a no-op on
    # BigQuery, where the columns now exist; one statement a column, as the emulator applies
    # only the first clause of a multi-clause ALTER.
    table.schema = [*table.schema, *missing]
    warehouse.client.update_table(table, ["schema"], retry=warehouse.api_retry)
    table_sql = warehouse.table(dataset_id, name)
    for column in missing:
        warehouse.execute(
            f"ALTER TABLE {table_sql} ADD COLUMN IF NOT EXISTS `{column.name}` {column.field_type}",
            tenant_id=dataset_id,
        )
    return [f.name for f in missing]


def provision(
    warehouse: Warehouse,
    catalog: SchemaCatalog,
    tenant_id: str,
    dataset_id: str,
    *,
    fresh: bool = False,
) -> DatasetOutcome:
    """Data tables and the filtered log views; each step is idempotent so a retry resumes.

    `fresh`: this request created the dataset, so no table can exist yet. The
    tenant tables' drift is not checked here (a tables.list names them, no job).
    """
    report = BootstrapReport(dataset=dataset_id, dataset_created=fresh)
    at_onboarding = {n: s for n, s in catalog.tenant.items() if n in ONBOARDING_TABLES}
    ensure_tables(warehouse, dataset_id, at_onboarding, report, check_drift=False, fresh=fresh)
    outcome = DatasetOutcome(
        dataset_id=dataset_id,
        dataset_created=False,
        tables_created=report.created,
        tables_existing=report.existing,
    )
    outcome.views = ensure_log_views(warehouse, tenant_id, dataset_id)
    return outcome


def ensure_log_views(warehouse: Warehouse, tenant_id: str, dataset_id: str) -> list[str]:
    """Views over the central logs, filtered to this tenant, authorized on the central dataset."""
    # A view's SQL can't take parameters; the tenant id is safe to inline
    # because it matched ^[a-z0-9_]{3,50}$ before it got here.
    if not TENANT_ID_RE.match(tenant_id):
        raise ValueError("a view names only a validated tenant id")
    from google.cloud import bigquery  # only onboarding builds views: keep it off cold starts

    created = []
    for view_name, central_table in LOG_VIEWS.items():
        view = bigquery.Table(f"{warehouse.project}.{dataset_id}.{view_name}")
        view.view_query = (
            f"SELECT * FROM {warehouse.central(central_table)} WHERE tenant_id = '{tenant_id}'"
        )
        view.description = f"{central_table} rows of tenant {tenant_id} (authorized view)."
        with contextlib.suppress(gexc.Conflict):
            warehouse.client.create_table(view, timeout=30, retry=warehouse.api_retry)
        created.append(view_name)
    authorize_views(warehouse, dataset_id, list(LOG_VIEWS))
    return created


_ETAG_RETRY = Retry(
    predicate=lambda exc: isinstance(exc, gexc.PreconditionFailed), initial=0.2, timeout=60
)


def _edit_central_access(
    warehouse: Warehouse, edit: Callable[[list[bigquery.AccessEntry]], list[bigquery.AccessEntry]]
) -> None:
    """Read-modify-write of the central dataset's access list, guarded by its etag.

    Concurrent onboardings and offboardings retry on 412 instead of overwriting
    each other's entries; nothing is written when `edit` changes nothing.
    """

    def attempt() -> None:
        central = warehouse.client.get_dataset(
            f"{warehouse.project}.{warehouse.settings.central_dataset}",
            timeout=30,
            retry=warehouse.api_retry,
        )
        entries = list(central.access_entries)
        edited = edit(entries)
        if edited != entries:
            central.access_entries = edited
            warehouse.client.update_dataset(
                central, ["access_entries"], timeout=30, retry=warehouse.api_retry
            )

    _ETAG_RETRY(attempt)()


def authorize_views(warehouse: Warehouse, dataset_id: str, views: list[str]) -> None:
    """Adds the views to the central access list, so the tenant reads only its rows."""
    from google.cloud import bigquery

    wanted = [
        bigquery.AccessEntry(
            None, "view", {"projectId": warehouse.project, "datasetId": dataset_id, "tableId": view}
        )
        for view in views
    ]
    _edit_central_access(
        warehouse, lambda entries: entries + [e for e in wanted if e not in entries]
    )


def deauthorize_views(warehouse: Warehouse, dataset_id: str) -> None:
    """Drops the dataset's views from the central access list (before the dataset goes)."""

    def is_ours(entry: bigquery.AccessEntry) -> bool:
        reference = entry.entity_id if isinstance(entry.entity_id, dict) else {}
        return entry.entity_type == "view" and reference.get("datasetId") == dataset_id

    _edit_central_access(warehouse, lambda entries: [e for e in entries if not is_ours(e)])


def write_check(warehouse: Warehouse, dataset_id: str) -> str:
    """The built-in dryrun: create, write, read back and drop a scratch table in the dataset.

    The write is a DML job (what pipelines do); the read-back is a tables.list
    of the rows (tabledata.list, no second job): one job in all.
    """
    from google.cloud import bigquery

    table_id = f"{warehouse.project}.{dataset_id}._dryrun_{uuid.uuid4().hex[:8]}"
    table = bigquery.Table(table_id, schema=[bigquery.SchemaField("probe", "STRING")])
    try:
        warehouse.client.create_table(table, timeout=30, retry=warehouse.api_retry)
        marker = uuid.uuid4().hex
        quoted = warehouse.table(dataset_id, table_id.rsplit(".", 1)[1])
        written = warehouse.execute(
            f"INSERT INTO {quoted} (probe) VALUES (@m)", {"m": marker}, component="dryrun"
        )
        rows = [
            dict(row.items())
            for row in warehouse.client.list_rows(table, timeout=30, retry=warehouse.api_retry)
        ]
        return "SUCCESS" if written == 1 and rows == [{"probe": marker}] else "FAILED"
    finally:
        warehouse.client.delete_table(
            table_id, not_found_ok=True, timeout=30, retry=warehouse.api_retry
        )


def delete_dataset(warehouse: Warehouse, dataset_id: str) -> bool:
    """Deletes the dataset and everything in it; False if it was already gone."""
    try:
        warehouse.client.get_dataset(
            f"{warehouse.project}.{dataset_id}", timeout=30, retry=warehouse.api_retry
        )
    except gexc.NotFound:
        return False
    warehouse.client.delete_dataset(
        f"{warehouse.project}.{dataset_id}",
        delete_contents=True,
        not_found_ok=True,
        timeout=60,
        retry=warehouse.api_retry,
    )
    return True

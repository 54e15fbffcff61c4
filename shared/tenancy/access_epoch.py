"""A tenant's access epoch: revocations reach every function instance on its next request.

Each function is its own Cloud Run service with its own auth cache, so forgetting
a principal in the instance that made a change is not enough. Every change that
takes access away (member removed, role changed, key revoked or rotated, tenant
status changed) bumps a counter in a one-row table of the tenant's dataset, by
DML, after the change itself. An instance trusts a cached principal only while
the counter it read before the principal's lookup is still the current one, and
re-reads it on every request with tabledata.list: a metadata read, not a query
job, so it bills nothing and is the cheapest round trip BigQuery offers.
Decisions and figures: docs/team.md, docs/decisions.md ("Team").
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.deps import Deps
    from shared.platform.warehouse import Warehouse

TABLE = "access_epoch"

# What an epoch reads as when the table does not exist (a tenant onboarded before
# epochs, before its first bump; or an offboarded tenant's deleted dataset). It
# differs from every number, so a table appearing or vanishing is a change too.
MISSING = "missing"


def _dataset(warehouse: Warehouse, tenant_id: str) -> str:
    from shared.tenancy.tenant_dataset import dataset_id_for  # loads the SDK: not at import

    return dataset_id_for(tenant_id, warehouse.settings.tenant_dataset_suffix)


def read(warehouse: Warehouse, tenant_id: str) -> str:
    """The tenant's current epoch as a token: one tabledata.list, no job, no tables.get."""
    from google.api_core import exceptions as gexc
    from google.cloud import bigquery  # with the warehouse, not at import

    table = bigquery.Table(
        f"{warehouse.project}.{_dataset(warehouse, tenant_id)}.{TABLE}",
        schema=[bigquery.SchemaField("epoch", "INT64")],
    )
    try:
        rows = list(
            warehouse.client.list_rows(
                table,
                selected_fields=table.schema,
                max_results=2,
                timeout=30,
                retry=warehouse.api_retry,
            )
        )
    except gexc.NotFound:
        return MISSING
    # One row at most (a MERGE keyed on the tenant writes it); none before the first bump.
    return str(max((int(row["epoch"]) for row in rows), default=0))


def bump(deps: Deps, tenant_id: str) -> None:
    """Moves the epoch on by one: one MERGE (creates the row on the first bump).

    Call it AFTER the change it announces: an instance that read the old epoch
    may have looked up the old principal, and must see a new epoch afterwards.
    Concurrent bumps conflict on production BigQuery and are retried by the
    warehouse; whichever order they land in, the epoch moves. A tenant whose
    table predates epochs gets it here; one whose dataset is gone has nothing to
    bump (readers then see MISSING, which no cached principal was read under).
    """
    from google.api_core import exceptions as gexc

    warehouse = deps.warehouse
    dataset = _dataset(warehouse, tenant_id)
    statement = (
        f"MERGE {warehouse.table(dataset, TABLE)} AS e "
        "USING (SELECT @t AS tenant_id) AS s ON e.tenant_id = s.tenant_id "
        "WHEN MATCHED THEN UPDATE SET epoch = e.epoch + 1, updated_at = @now "
        "WHEN NOT MATCHED THEN INSERT (tenant_id, epoch, created_at, updated_at) "
        "VALUES (s.tenant_id, 1, @now, @now)"
    )
    params = {"t": tenant_id, "now": deps.clock()}
    # The table first (one tables.list; bumps are rare): BigQuery refuses a MERGE
    # into a missing table, and bqemulator runs it as a silent no-op, which would
    # leave the epoch MISSING after a revocation. A tenant dataset always holds
    # focus_cost, so no tables at all means the dataset is gone (offboarded): every
    # instance already reads MISSING, and creating a table there would only fail.
    present = warehouse.existing_tables(dataset)
    if not present:
        return
    if TABLE not in present:
        with contextlib.suppress(gexc.NotFound):
            warehouse.create_table(dataset, deps.catalog.tenant[TABLE])
    warehouse.execute(statement, params, component="access_epoch", tenant_id=tenant_id)

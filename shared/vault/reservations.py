"""Per-provider rules serialised on the tenant's usage row: reserve, then insert under it.

A rule that counts rows ("at most N providers", "one config per provider")
can't be kept by a conditional INSERT on BigQuery: concurrent INSERTs never
conflict. So a create first appends a reservation (its id, provider and time)
to a REPEATED RECORD column of the tenant's one usage row with a conditional
UPDATE, which conflicts with every other such UPDATE and so runs after it;
then it INSERTs its row with an `INSERT ... SELECT` that selects from its own
reservation, so nothing is written unless the reservation is there and young.

A reservation is *in flight* while it is younger than LEASE and its row does
not exist yet. Each UPDATE keeps only in-flight reservations, so a stored row
(which counts through its own table from then on), a deleted one and a crashed
create all stop holding anything without a statement of their own. The insert
refuses after INSERT_DEADLINE, long before the lease ends, so a slow create
never lands beside a reservation the next admission has already let go.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from shared.platform.warehouse import Warehouse

LEASE = dt.timedelta(minutes=10)
INSERT_DEADLINE = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class Reservations:
    """One kind of reservation: the usage column holding it and the table its rows land in."""

    column: str  # REPEATED RECORD<id_field, provider, reserved_at> on tenant_usage_quotas
    id_field: str  # the record's id field, and the row's id column in `table`
    table: str  # the central table whose rows the reservations stand for

    def in_flight_sql(self, warehouse: Warehouse) -> str:
        """Reservations of tenant @t still in flight: younger than @fresh and without a row."""
        return (
            f"SELECT r.{self.id_field}, r.provider, r.reserved_at "
            f"FROM {warehouse.central('tenant_usage_quotas')} AS u2, "
            f"UNNEST(u2.{self.column}) AS r "
            "WHERE u2.tenant_id = @t AND r.reserved_at >= @fresh AND NOT EXISTS ("
            f"SELECT 1 FROM {warehouse.central(self.table)} AS x "
            f"WHERE x.tenant_id = @t AND x.{self.id_field} = r.{self.id_field})"
        )

    def reserve(
        self,
        warehouse: Warehouse,
        tenant_id: str,
        object_id: str,
        provider: str,
        now: dt.datetime,
        *,
        admitted: str,
        params: dict[str, Any] | None = None,
        component: str,
    ) -> bool:
        """Appends (@id, @p, @now) iff `admitted`, one UPDATE; True if it was appended.

        `admitted` is a boolean SQL expression; it may read the CTE `in_flight`
        and the parameters @t, @id, @p, @now and `params`. An id already in
        flight or stored is never admitted (a retried create stays one row).
        bqemulator misbinds parameters referenced in SET alongside FROM, so
        every parameter is referenced inside FROM (see shared.scheduling.admission).
        """
        usage = warehouse.central("tenant_usage_quotas")
        changed = warehouse.execute(
            f"""
UPDATE {usage} AS u
SET {self.column} = a.reservations, updated_at = a.now
FROM (
  WITH in_flight AS ({self.in_flight_sql(warehouse)})
  SELECT @t AS tenant_id, @now AS now,
    ARRAY_CONCAT(
      ARRAY(SELECT AS STRUCT {self.id_field}, provider, reserved_at FROM in_flight
            ORDER BY reserved_at, {self.id_field}),
      [STRUCT(@id AS {self.id_field}, @p AS provider, @now AS reserved_at)]) AS reservations,
    ({admitted})
    AND @id NOT IN (SELECT {self.id_field} FROM in_flight)
    AND NOT EXISTS (SELECT 1 FROM {warehouse.central(self.table)}
                    WHERE tenant_id = @t AND {self.id_field} = @id) AS admitted
) AS a
WHERE u.tenant_id = a.tenant_id AND a.admitted
""",
            {
                "t": tenant_id,
                "id": object_id,
                "p": provider,
                "now": now,
                "fresh": now - LEASE,
                **(params or {}),
            },
            component=component,
            tenant_id=tenant_id,
        )
        return changed >= 1

    def insert_reserved(
        self,
        warehouse: Warehouse,
        tenant_id: str,
        object_id: str,
        *,
        columns: dict[str, str],
        params: dict[str, Any],
        now: dt.datetime,
        component: str,
    ) -> bool:
        """INSERTs the row iff its reservation is held and younger than INSERT_DEADLINE.

        `columns` maps each column to the SQL expression of its value (over
        `params`); `now` is the reader's clock, checked against the reservation.
        """
        inserted = warehouse.execute(
            f"INSERT INTO {warehouse.central(self.table)} ({', '.join(columns)}) "
            f"SELECT {', '.join(columns.values())} "
            f"FROM {warehouse.central('tenant_usage_quotas')} AS u, UNNEST(u.{self.column}) AS r "
            f"WHERE u.tenant_id = @t AND r.{self.id_field} = @id "
            "AND r.reserved_at >= @deadline LIMIT 1",
            {**params, "t": tenant_id, "id": object_id, "deadline": now - INSERT_DEADLINE},
            component=component,
            tenant_id=tenant_id,
        )
        return inserted == 1

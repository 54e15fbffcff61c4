"""The warehouse module against the emulator: parameters, DML counts and labels."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterator

import pytest
from google.cloud import bigquery

from shared.deps import Deps
from shared.platform.identifiers import InvalidIdentifier


@pytest.fixture
def counters(deps: Deps, bq: bigquery.Client) -> Iterator[str]:
    dataset = "w_" + uuid.uuid4().hex[:10]
    bq.create_dataset(f"{deps.settings.gcp_project}.{dataset}")
    table = bigquery.Table(
        f"{deps.settings.gcp_project}.{dataset}.counters",
        schema=[
            bigquery.SchemaField("tenant_id", "STRING", mode="REQUIRED"),
            bigquery.SchemaField("used", "INT64", mode="REQUIRED"),
            bigquery.SchemaField("amount", "NUMERIC"),
            bigquery.SchemaField("happened_at", "TIMESTAMP"),
        ],
    )
    bq.create_table(table)
    yield dataset
    bq.delete_dataset(f"{deps.settings.gcp_project}.{dataset}", delete_contents=True)


def test_conditional_update_admits_until_the_limit(deps: Deps, counters: str) -> None:
    wh = deps.warehouse
    table = wh.table(counters, "counters")
    wh.execute(f"INSERT INTO {table} (tenant_id, used) VALUES (@t, 0)", {"t": "acme"})
    admit = f"UPDATE {table} SET used = used + 1 WHERE tenant_id = @t AND used < @limit"

    outcomes = [wh.execute(admit, {"t": "acme", "limit": 2}) for _ in range(3)]

    assert outcomes == [1, 1, 0]
    assert wh.query(f"SELECT used FROM {table} WHERE tenant_id = @t", {"t": "acme"}) == [
        {"used": 2}
    ]


def test_numeric_and_timestamp_parameters_round_trip_exactly(deps: Deps, counters: str) -> None:
    wh = deps.warehouse
    table = wh.table(counters, "counters")
    amount = decimal.Decimal("12345.123456789")
    at = dt.datetime(2026, 11, 22, 10, 30, tzinfo=dt.UTC)

    wh.execute(
        f"INSERT INTO {table} (tenant_id, used, amount, happened_at) VALUES (@t, 0, @amount, @at)",
        {"t": "acme", "amount": amount, "at": at},
    )

    row = wh.query(f"SELECT amount, happened_at FROM {table}")[0]
    assert row == {"amount": amount, "happened_at": at}


def test_parameters_are_never_interpolated(deps: Deps, counters: str) -> None:
    wh = deps.warehouse
    table = wh.table(counters, "counters")
    hostile = "x'); DELETE FROM t; --"

    wh.execute(f"INSERT INTO {table} (tenant_id, used) VALUES (@t, 0)", {"t": hostile})

    assert wh.query(f"SELECT tenant_id FROM {table}") == [{"tenant_id": hostile}]


def test_table_names_are_validated_before_reaching_sql(deps: Deps) -> None:
    with pytest.raises(InvalidIdentifier):
        deps.warehouse.table("acme`; DROP SCHEMA x; --", "t")

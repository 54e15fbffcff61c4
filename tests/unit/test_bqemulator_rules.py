"""The local emulator runs the array-map idiom as DuckDB's list_transform, with the same results."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb
import pytest
from bqemulator.sql.translator import SQLTranslator

from local.bqemulator_rules import ArrayMapRule

# A table of every array shape the idiom meets: absent, empty, a NULL element, several in order.
ROWS = """
    SELECT * FROM (VALUES
      (1, NULL, 10),
      (2, [], 20),
      (3, [NULL, {'name': 'a', 'amount': 0.1, 'ids': {'id': 'x'}}], 30),
      (4, [{'name': 'c', 'amount': -2.5, 'ids': {'id': 'z'}},
           {'name': 'b', 'amount': 1e-06, 'ids': {'id': 'y'}},
           {'name': 'a', 'amount': 1234567.125, 'ids': {'id': 'x'}}], 40)
    ) AS v(k, credits, weight)
"""
TYPED = (
    "SELECT k, CAST(credits AS STRUCT(name VARCHAR, amount DOUBLE, ids STRUCT(id VARCHAR))[]) "
    f"AS credits, weight FROM ({ROWS})"
)
MAPS = (
    "SELECT s.k, ARRAY(SELECT AS STRUCT c.name AS name, "
    "PARSE_NUMERIC(CAST(c.amount AS STRING)) AS amount, c.ids.id AS id "
    "FROM UNNEST(s.credits) AS c) AS m FROM t AS s",
    "SELECT s.k, ARRAY(SELECT c.amount * 2 FROM UNNEST(s.credits) AS c) AS m FROM t AS s",
    "SELECT s.k, ARRAY(SELECT c FROM UNNEST(s.credits) AS c) AS m FROM t AS s",
)
NOT_MAPS = (
    "SELECT s.k, ARRAY(SELECT c.name FROM UNNEST(s.credits) AS c WHERE c.amount > 0) AS m "
    "FROM t AS s",
    "SELECT s.k, ARRAY(SELECT c.name FROM UNNEST(s.credits) AS c ORDER BY c.name) AS m FROM t AS s",
    "SELECT s.k, ARRAY(SELECT c.name FROM UNNEST(s.credits) AS c LIMIT 1) AS m FROM t AS s",
    "SELECT s.k, ARRAY(SELECT DISTINCT c.name FROM UNNEST(s.credits) AS c) AS m FROM t AS s",
    "SELECT s.k, ARRAY(SELECT o FROM UNNEST(s.credits) AS c WITH OFFSET AS o) AS m FROM t AS s",
    "SELECT s.k, ARRAY(SELECT c.amount * s.weight FROM UNNEST(s.credits) AS c) AS m FROM t AS s",
    "SELECT s.k, ARRAY(SELECT SUM(c.amount) FROM UNNEST(s.credits) AS c) AS m FROM t AS s",
    "SELECT s.k, ARRAY(SELECT (SELECT MAX(x) FROM UNNEST([1, 2]) AS x) "
    "FROM UNNEST(s.credits) AS c) AS m FROM t AS s",
    "SELECT s.k, ARRAY(SELECT c.name FROM UNNEST(s.credits) AS c, UNNEST([1, 2]) AS n) AS m "
    "FROM t AS s",
    "SELECT s.k, ARRAY(SELECT x.k FROM t AS x) AS m FROM t AS s",
)


def translate(sql: str, with_rule: bool = True) -> str:
    translator = SQLTranslator()
    if not with_rule:
        # The baseline: bqemulator as shipped, without the local rule.
        translator._rules = [r for r in translator._rules if not isinstance(r, ArrayMapRule)]
    return str(translator.translate(sql).value)


def run(duckdb_sql: str) -> list[tuple[Any, ...]]:
    connection = duckdb.connect()
    connection.execute(f"CREATE TABLE t AS {TYPED}")
    return connection.execute(f"SELECT * FROM ({duckdb_sql}) ORDER BY k").fetchall()


@pytest.mark.parametrize("sql", MAPS)
def test_a_map_over_an_unnested_array_becomes_a_list_transform(sql: str) -> None:
    assert "LIST_TRANSFORM" in translate(sql)
    assert "LIST_TRANSFORM" not in translate(sql, with_rule=False)


@pytest.mark.parametrize("sql", MAPS)
def test_the_list_transform_gives_what_the_subquery_gives(sql: str) -> None:
    assert run(translate(sql)) == run(translate(sql, with_rule=False))


def test_the_mapped_values_keep_order_nulls_and_exact_decimals() -> None:
    rows = dict(run(translate(MAPS[0])))

    assert rows[1] == []  # NULL array -> [], as an ARRAY subquery over no rows
    assert rows[2] == []
    assert rows[3] == [
        {"name": None, "amount": None, "id": None},
        {"name": "a", "amount": Decimal("0.1"), "id": "x"},
    ]
    assert [(c["name"], c["amount"]) for c in rows[4]] == [
        ("c", Decimal("-2.5")),
        ("b", Decimal("0.000001")),
        ("a", Decimal("1234567.125")),
    ]


@pytest.mark.parametrize("sql", NOT_MAPS)
def test_anything_more_than_a_map_keeps_the_subquery(sql: str) -> None:
    assert "LIST_TRANSFORM" not in translate(sql)

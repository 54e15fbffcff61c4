"""The GCP extract's FLOAT64 -> NUMERIC conversion is exactly PARSE_NUMERIC(CAST(x AS STRING))."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal

import pytest

from shared.sources.gcp.reader import _numeric
from tests.integration.conftest import Platform

# Each value once through the split branch and, where its text has an exponent,
# through the PARSE_NUMERIC branch: signs, ties at the 10th decimal (half away
# from zero), fractions longer than 10 digits, up to 16 integer digits, binary
# traps (0.1, 2.675), and exponent forms both ways.
VALUES = [
    0.0,
    -0.0,
    0.1,
    0.2,
    -0.1,
    0.5,
    -0.5,
    2.675,
    1.0000000015,
    -1.0000000015,
    0.1234567895,
    -0.1234567894,
    12345.0000000005,
    -12345.0000000005,
    0.42064389766423027,
    10.69110584570188,
    123456.789012,
    11479487491.341,
    -462502856634.839,
    123456789012345.6,
    1500000000000000.0,
    9007199254740992.0,
    1e16,
    1.7238210883837516e16,
    -1.2345678901234568e17,
    1e20,
    1.9e-8,
    -2e-6,
    1.5e-9,
    -1.5e-9,
    1e-10,
    100.0,
    -7.0,
]


def expected(value: float) -> Decimal:
    """Python's repr is the shortest round-trip decimal too; ROUND_HALF_UP is away from zero."""
    exact = Context(prec=60, rounding=ROUND_HALF_UP)  # NUMERIC's 38 digits fit
    return Decimal(repr(value)).quantize(Decimal("1e-9"), context=exact)


@pytest.mark.parametrize("column", ["split", "parse_numeric"])
def test_the_extract_conversion_equals_parse_numeric_of_the_shortest_decimal(
    platform: Platform, column: str
) -> None:
    # The values as literals (the text is the shortest decimal, so the double is exact).
    values = ", ".join(
        f"STRUCT({i} AS i, CAST('{v!r}' AS FLOAT64) AS x)" for i, v in enumerate(VALUES)
    )
    rows = platform.deps.warehouse.query(
        f"SELECT i, {_numeric('t')} AS split, PARSE_NUMERIC(t) AS parse_numeric "
        f"FROM (SELECT v.i, CAST(v.x AS STRING) AS t FROM UNNEST([{values}]) AS v)"
    )
    got = {int(r["i"]): r[column] for r in rows}

    assert [got[i] for i in range(len(VALUES))] == [expected(v) for v in VALUES]

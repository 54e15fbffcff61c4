"""The AWS reader's Arrow conversions equal the exact per-value rules they replace (no I/O)."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np
import pyarrow as pa
import pytest

from local.aws_export import billed_total, export_table
from shared.pipelines.context import StepError
from shared.sources.aws.columns import EXPORT_COLUMNS
from shared.sources.aws.reader import Landed, PeriodReader, _map_json, _numeric

NINE = Decimal("0.000000001")


def _half_up(text: str | None) -> Decimal | None:
    if text is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 80
        return Decimal(text).quantize(NINE, rounding=ROUND_HALF_UP)


def test_doubles_become_numeric_as_parse_numeric_rounds_their_text() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.normal(0, 1000, 5000).round(rng.integers(0, 15)),
            rng.normal(0, 1e-6, 2000),  # more than 9 places: rounding decides
            [0.0000000015, -0.0000000015, 0.0000000025, -0.0000000025, 1e20, -0.0, 1e-45],
        ]
    )
    column = pa.array(values, pa.float64())
    text = column.cast(pa.string())
    expected = [_half_up(t) for t in text.to_pylist()]
    assert _numeric(text, "c", "f").to_pylist() == expected


def test_csv_money_text_with_exponents_and_blanks_rounds_half_away_from_zero() -> None:
    text = pa.array(["1.2345678905", "-1.2345678905", "1E-3", "7", None, "0.1e1"])
    assert _numeric(text, "c", "f").to_pylist() == [
        Decimal("1.234567891"),
        Decimal("-1.234567891"),
        Decimal("0.001000000"),
        Decimal("7.000000000"),
        None,
        Decimal("1.000000000"),
    ]


def test_an_amount_beyond_numeric_fails_naming_column_and_row() -> None:
    with pytest.raises(StepError) as caught:
        _numeric(pa.array(["1", "1e40"]), "line_item_unblended_cost", "data/a.parquet")
    assert "data/a.parquet" in str(caught.value)
    assert "line_item_unblended_cost row 2" in str(caught.value)


MAPS = pa.array(
    [
        [("b", "1"), ("a", 'x"y\\z')],
        None,
        [],
        [("team", None), ("env", "prod")],
        [("z", "1")],
        [("team", "q"), ("env", "prod"), ("cost-center", "42")],
        [("k", "v")],
    ],
    pa.map_(pa.string(), pa.string()),
)


def _dumps(column: pa.Array) -> list[str | None]:
    return [json.dumps(dict(v), sort_keys=True) if v else None for v in column.to_pylist()]


@pytest.mark.parametrize(
    ("offset", "length"), [(0, 7), (1, 2), (2, 2), (3, 1), (4, 3), (5, 0), (0, 1)]
)
def test_maps_become_the_json_text_json_dumps_writes_for_any_slice(
    offset: int, length: int
) -> None:
    column = MAPS.slice(offset, length)
    assert _map_json(column).to_pylist() == _dumps(column)


def test_maps_with_non_ascii_or_control_characters_escape_as_json_dumps_does() -> None:
    column = pa.array(
        [[("k", "é")], [("tab", "a\tb")], [("ok", "x")]], pa.map_(pa.string(), pa.string())
    )
    assert _map_json(column).to_pylist() == _dumps(column)


@pytest.mark.parametrize("export_type", ["CUR2", "FOCUS_1_2_AWS"])
def test_staged_batches_sum_the_billed_column_exactly(export_type: str) -> None:
    table = export_table(export_type, "2026-01", 3000, 11)
    reader = object.__new__(PeriodReader)  # the conversions only, no S3 behind it
    reader.columns = EXPORT_COLUMNS[export_type]
    reader.landed = Landed(None, export_type)  # type: ignore[arg-type]
    staged = [reader._staged("f", b) for b in table.to_batches(max_chunksize=1000)]
    assert reader.landed.rows == 3000
    assert reader.landed.billed_total == billed_total(table, export_type)
    money = EXPORT_COLUMNS[export_type].money
    assert all(b.schema.field(m).type == pa.decimal128(38, 9) for b in staged for m in money)
    assert {v for b in staged for v in b.column("x_source_file").to_pylist()} == {"f"}

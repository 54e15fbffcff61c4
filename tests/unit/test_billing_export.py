"""The demo billing export generator: deterministic, realistic, in the real nested export schema."""

from __future__ import annotations

import datetime as dt
import json

from local.billing_export import (
    CREDIT_TYPES,
    MONEY_FIELDS,
    ExportGenerator,
    export_schema,
    to_ndjson,
)

DAY = dt.date(2026, 11, 10)


def rows(n: int = 2000, **kwargs: object) -> list[dict]:
    return list(ExportGenerator(seed=3, **kwargs).day(DAY, n))  # type: ignore[arg-type]


def test_same_seed_same_bytes_and_another_seed_differs() -> None:
    assert to_ndjson(rows(300)) == to_ndjson(rows(300))
    other = list(ExportGenerator(seed=4).day(DAY, 300))
    assert to_ndjson(other) != to_ndjson(rows(300))


def test_every_cost_type_and_credit_type_appears() -> None:
    sample = rows()
    assert {r["cost_type"] for r in sample} == {"regular", "tax", "adjustment", "rounding_error"}
    credit_types = {c["type"] for r in sample for c in r["credits"]}
    assert credit_types == {t for t, _, _ in CREDIT_TYPES}


def test_rows_look_like_the_export() -> None:
    sample = rows()
    usage = [r for r in sample if r["cost_type"] == "regular"]
    for r in usage:
        assert r["usage_start_time"].startswith("2026-11-10 ")
        assert r["invoice"]["month"] == "202611"
        assert r["project"]["ancestors"][-1]["resource_name"].startswith("organizations/")
        assert r["usage"]["pricing_unit"] and r["price"]["unit"] == r["usage"]["pricing_unit"]
        assert r["cost_at_list"] >= r["cost"] >= 0
        # Credits never exceed the charge they discount.
        assert -sum(c["amount"] for c in r["credits"]) <= r["cost"] + 1e-6
        assert r["export_time"] > r["usage_end_time"]
    tax = [r for r in sample if r["cost_type"] == "tax"]
    assert tax and all(r["project"] is None for r in tax)
    adjustments = [r for r in sample if r["cost_type"] == "adjustment"]
    assert adjustments and all(r["adjustment_info"]["id"] for r in adjustments)
    assert any(r["labels"] for r in usage) and any(r["tags"] for r in usage)


def test_non_usd_rows_carry_currency_and_rate() -> None:
    sample = rows(200, currency="EUR", conversion_rate=0.92)
    assert {r["currency"] for r in sample} == {"EUR"}
    assert {r["currency_conversion_rate"] for r in sample} == {0.92}


def test_export_schema_has_float_money_and_every_mapped_column() -> None:
    fields = {f.name: f for f in export_schema()}
    assert fields["cost"].field_type == "FLOAT"
    assert {f.name: f.field_type for f in fields["credits"].fields}["amount"] == "FLOAT"
    assert {"price", "adjustment_info", "tags", "subscription"} <= set(fields)
    assert "ancestors" in {f.name for f in fields["project"].fields}
    assert not [n for n in fields if n.startswith("x_")]
    assert "cost" in MONEY_FIELDS
    # Every generated row only uses schema columns.
    for r in rows(50):
        assert set(r) <= set(fields), set(r) - set(fields)
    json.dumps(rows(5))


def test_no_service_costs_less_than_nothing_on_any_day() -> None:
    # Credits and adjustments discount a service's charges; they never exceed
    # them, so the demo's cost by service and day reads like a real bill.
    for seed in range(5):
        for rows_per_day in (400, 2000):
            generator = ExportGenerator(seed=seed)
            net: dict[tuple[str, str], float] = {}
            for r in generator.rows(DAY, 3, rows_per_day):
                key = (r["usage_start_time"][:10], r["service"]["description"])
                charge = r["cost"] + sum(c["amount"] for c in r["credits"])
                net[key] = net.get(key, 0.0) + charge
            negative = {k: round(v, 6) for k, v in net.items() if v < 0}
            assert not negative, (seed, rows_per_day, negative)

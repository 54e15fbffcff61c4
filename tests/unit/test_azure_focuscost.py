"""Azure FocusCost pieces without I/O: manifest choice and checks, run ranges, the generator."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.azure_export import FocusCostGenerator
from shared.pipelines.context import RunContext, StepContext, StepError
from shared.platform.settings import REPO_ROOT
from shared.sources.azure import focuscost, mapping, reader
from shared.sources.azure.focuscost import ALL_COLUMNS, REQUIRED, version_columns

ROOT = "exports/focus/acme/"
FOCUS_SCHEMA: Path = REPO_ROOT / "schemas" / "tenant" / "focus_cost.json"


@dataclass
class Blob:
    name: str
    last_modified: dt.datetime | None


def at(minute: int) -> dt.datetime:
    return dt.datetime(2026, 11, 3, 6, minute, tzinfo=dt.UTC)


def test_the_newest_manifest_of_each_overlapping_range_is_chosen() -> None:
    listing = [
        Blob(ROOT + "20261001-20261031/run-a/manifest.json", at(1)),
        Blob(ROOT + "20261001-20261031/run-b/manifest.json", at(5)),
        Blob(ROOT + "20261001-20261031/run-c/manifest.json", at(3)),
        Blob(ROOT + "20261001-20261031/run-b/part_0_0001.csv.gz", at(9)),
        Blob(ROOT + "20261101-20261130/run-x/manifest.json", at(1)),
        Blob(ROOT + "20261101-20261130/run-y/manifest.json", at(1)),  # same time: name decides
        Blob(ROOT + "20260901-20260930/run-z/manifest.json", at(1)),  # outside the run's dates
        Blob(ROOT + "not-a-range/run-q/manifest.json", at(1)),
    ]

    chosen = reader.latest_manifests(
        iter(listing), ROOT, dt.date(2026, 10, 29), dt.date(2026, 11, 3)
    )

    assert {k: v.name.split("/")[-2] for k, v in chosen.items()} == {
        "20261001-20261031": "run-b",
        "20261101-20261130": "run-y",
    }


def manifest(**config: Any) -> bytes:
    return json.dumps(
        {
            "exportConfig": {"type": "FocusCost", "dataVersion": "1.0r2", **config},
            "runInfo": {"runId": "r1"},
            "blobs": [{"blobName": "a/part_0_0001.csv.gz", "dataRowCount": 3}],
        }
    ).encode()


def test_a_manifest_of_a_known_version_is_read() -> None:
    parsed = reader.parse_manifest("m.json", "20261101-20261130", manifest())
    assert (parsed.version, parsed.run_id, parsed.range_start, parsed.range_end) == (
        "1.0r2",
        "r1",
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 30),
    )


@pytest.mark.parametrize(
    ("data", "code", "named"),
    [
        (manifest(dataVersion="2.0"), "unknown_dataset_version", "exportConfig.dataVersion"),
        (manifest(type="ActualCost"), "unsupported_export_type", "exportConfig.type"),
        (b"{not json", "bad_manifest", "m.json"),
        (b'{"exportConfig": {}}', "bad_manifest", "m.json"),
    ],
)
def test_a_manifest_the_reader_cannot_trust_is_refused(data: bytes, code: str, named: str) -> None:
    with pytest.raises(StepError) as refused:
        reader.parse_manifest("m.json", "20261101-20261130", data)
    assert refused.value.code == code
    assert named in str(refused.value) and "m.json" in str(refused.value)


def ctx(**params: Any) -> StepContext:
    run = RunContext("run_1", "acme", "cfg", "azure_cost_export", dt.date(2026, 11, 3), "acme")
    return StepContext(None, run, "land", params, threading.Event())  # type: ignore[arg-type]


def test_a_run_covers_its_lookback_or_its_explicit_dates() -> None:
    assert reader.run_range(ctx()) == (dt.date(2026, 10, 29), dt.date(2026, 11, 3))
    assert reader.run_range(ctx(date_from="2026-01-01", date_to="2026-03-31")) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 3, 31),
    )
    for bad in (
        {"date_from": "2026-04-01", "date_to": "2026-03-01"},
        {"date_from": "yesterday"},
        {"lookback_days": 90},
        {"date_from": "2024-01-01", "date_to": "2026-01-01"},
    ):
        with pytest.raises(StepError):
            reader.run_range(ctx(**bad))


def test_versions_add_columns_and_the_required_ones_exist() -> None:
    v10, v12 = version_columns("1.0"), version_columns("1.2-preview")
    assert set(v12) - set(v10) >= {"InvoiceId", "ServiceSubcategory", "PricingCurrency"}
    for version, required in REQUIRED.items():
        assert set(required) <= set(version_columns(version)) <= set(ALL_COLUMNS)


def test_the_generator_is_deterministic_by_seed_and_writes_each_versions_dates() -> None:
    def cells(seed: int, version: str) -> list[list[str]]:
        gen = FocusCostGenerator(seed=seed, version=version)
        return [gen.cells(r) for r in gen.rows(dt.date(2026, 11, 1), 1, 5)]

    assert cells(4, "1.0r2") == cells(4, "1.0r2") != cells(5, "1.0r2")
    start = FocusCostGenerator(version="1.0").columns.index("ChargePeriodStart")
    assert cells(4, "1.0")[0][start] == "2026-11-01T00:00Z"
    assert cells(4, "1.0r2")[0][start] == "2026-11-01T00:00:00Z"


def test_the_mapping_keeps_every_microsoft_column_in_x_provider_columns() -> None:
    # The JSON object lists Microsoft's x_* columns by name; one left out of the mapping
    # (or one the raw table lost) would silently vanish from focus_cost.
    sql = mapping.mapping_sql("raw", "focus")
    body = sql.split("TO_JSON_STRING(JSON_OBJECT(", 1)[1].split("))", 1)[0]
    items = [item.strip() for item in body.split(",")]
    keys, columns = items[0::2], items[1::2]
    assert [key.strip("'") for key in keys] == list(focuscost.MICROSOFT_X)
    assert columns == [
        f"CAST(r.{name} AS STRING)" if kind == "NUMERIC" else f"r.{name}"
        for name, kind in focuscost.MICROSOFT_X.items()
    ]
    focus_columns = {c["name"] for c in json.loads(FOCUS_SCHEMA.read_text())["schema"]}
    assert {"x_ResourceGroupName", "x_ResourceType", "x_SkuDescription"} <= focus_columns
    assert "x_provider_columns" in focus_columns

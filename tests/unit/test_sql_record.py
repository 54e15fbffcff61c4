"""Statement recording for the GoogleSQL check: off unless asked, then text, types and sender."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from shared.platform import sql_record
from shared.platform.sql_record import RECORD_DIR_ENV, record_statement
from shared.platform.warehouse import Records, Typed, query_config


def send(sql: str, params: dict[str, object]) -> None:
    config = query_config(params, "test")
    config.default_dataset = "convergence-test.acme"
    record_statement(sql, config, project="convergence-test", central_dataset="tenants")


def recorded(directory: Path) -> list[dict[str, object]]:
    lines = (directory / f"{os.getpid()}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_nothing_is_written_unless_the_session_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RECORD_DIR_ENV, raising=False)

    send("SELECT 1", {})

    assert list(tmp_path.iterdir()) == []


def test_text_parameter_types_datasets_and_sender_are_recorded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RECORD_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(sql_record, "_seen", set())
    params = {
        "t": "acme",
        "d": dt.date(2026, 1, 1),
        "ids": ["a", "b"],
        "none": Typed("NUMERIC", None),
        "rows": Records([{"id": ("STRING", "x"), "n": ("INT64", 1)}]),
    }

    for _ in range(2):
        send("SELECT @t", params)

    [entry] = recorded(tmp_path)
    assert entry["sql"] == "SELECT @t"
    assert entry["parameters"] == {
        "t": "STRING",
        "d": "DATE",
        "ids": "ARRAY<STRING>",
        "none": "NUMERIC",
        "rows": "ARRAY<STRUCT<id STRING, n INT64>>",
    }
    assert (entry["project"], entry["central_dataset"], entry["default_dataset"]) == (
        "convergence-test",
        "tenants",
        "convergence-test.acme",
    )
    assert str(entry["sender"]).startswith("tests/unit/test_sql_record.py:")
    assert str(entry["sender"]).endswith(" in send")

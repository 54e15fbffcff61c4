"""The local emulator runs without automatic per-write snapshots, on the version checked only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import bqemulator
from bqemulator.versioning import snapshots

from local import bqemulator_server


class Recorder:
    """Stands in for the emulator's engine, catalog and clock: records what capture does."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)

    def get_table(self, *args: Any) -> object:
        return object()

    def create_snapshot(self, meta: Any) -> None:
        pass

    def now(self) -> dt.datetime:
        return dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def test_automatic_snapshots_are_skipped_and_user_snapshots_kept() -> None:
    original = snapshots.SnapshotManager.capture
    recorder = Recorder()
    manager = snapshots.SnapshotManager(
        engine=recorder, catalog=recorder, clock=recorder, events=None, retention_days=7
    )
    try:
        bqemulator_server._without_auto_snapshots()

        assert manager.capture("p", "d", "t", kind="AUTO") is None
        assert recorder.statements == []
        assert manager.capture("p", "d", "t", kind="USER") is not None
        assert len(recorder.statements) == 1
    finally:
        snapshots.SnapshotManager.capture = original  # type: ignore[method-assign]


def test_the_patch_is_for_the_pinned_emulator_version() -> None:
    assert bqemulator.__version__ == bqemulator_server.SUPPORTED_VERSION

"""Runs bqemulator (`python -m local.bqemulator_server start ...`) without per-write snapshots.

It also adds the local stack's translation rule (`local/bqemulator_rules.py`:
the array-map idiom runs as DuckDB's list_transform).

bqemulator 1.4.0 copies the whole target table after every DML statement,
load and streaming insert, to serve `FOR SYSTEM_TIME AS OF` reads. Nothing of
ours reads time travel, and the copy makes every write cost as much as the
table is big: a run claim copies the whole run log, a heartbeat the whole
heartbeat table, a FOCUS conversion its whole output. Production BigQuery
does no such copy, so the local stack skips the automatic snapshots (the
change events other parts of the emulator listen to are still published).
Set BQEMU_TIME_TRAVEL=1 to keep them.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import bqemulator
from bqemulator.versioning import snapshots

# The patch targets this version's internals; another version must be checked first.
SUPPORTED_VERSION = "1.4.0"


def _without_auto_snapshots() -> None:
    capture = snapshots.SnapshotManager.capture

    def capture_user_snapshots_only(
        self: snapshots.SnapshotManager, *args: Any, kind: str = "AUTO", **kwargs: Any
    ) -> Any:
        if kind == "AUTO":
            return None  # what capture returns for a table it can't snapshot
        return capture(self, *args, kind=kind, **kwargs)

    snapshots.SnapshotManager.capture = capture_user_snapshots_only  # type: ignore[method-assign]


def main() -> None:
    if os.environ.get("BQEMU_TIME_TRAVEL") != "1":
        if bqemulator.__version__ != SUPPORTED_VERSION:
            raise SystemExit(
                f"bqemulator {bqemulator.__version__} is not {SUPPORTED_VERSION}: "
                "check local/bqemulator_server.py against it, or set BQEMU_TIME_TRAVEL=1"
            )
        _without_auto_snapshots()
    from bqemulator.cli import main as cli

    import local.bqemulator_rules  # noqa: F401 - registers its rule with bqemulator

    sys.exit(cli())


if __name__ == "__main__":
    main()

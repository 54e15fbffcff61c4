"""pytest plugin of `make drills`: prints the drills' figures as the README's table and keeps
them in `<LOCAL_DATA_DIR or .local>/drill-figures.json`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.drills.harness import as_rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| drill | requests | faults injected | checked | lost | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['drill']} | {row['requests']} | {row['faults']} | {row['checked']} "
            f"| {row['lost']} | {row['seconds']:.0f} |"
        )
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    rows = as_rows()
    if not rows:
        return
    terminalreporter.section("failure drills (README table)")
    terminalreporter.write_line(table(rows))
    out = Path(os.environ.get("LOCAL_DATA_DIR", ".local")) / "drill-figures.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    terminalreporter.write_line(f"(also in {out})")

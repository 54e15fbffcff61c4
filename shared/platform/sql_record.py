"""Records each statement sent to BigQuery, for the test suite's GoogleSQL check; off unless asked.

The test session sets `CONVERGENCE_SQL_RECORD_DIR`; every process of the session
(the tests, the local stack, its runner subprocesses) inherits it and appends
each distinct statement it sends (text, parameter names and types, default
dataset, central dataset, and the code that sent it) to `<dir>/<pid>.jsonl`.
At the end of the session ZetaSQL analyzes them (tests/sqlcheck). Production
never sets the variable: the hook is one environment lookup.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import bigquery

RECORD_DIR_ENV = "CONVERGENCE_SQL_RECORD_DIR"
_REPO = str(Path(__file__).resolve().parents[2]) + os.sep
# Frames inside these files are the plumbing, not the code that wrote the SQL.
_PLUMBING = (
    os.path.join("shared", "platform", "warehouse.py"),
    os.path.join("shared", "platform", "sql_record.py"),
    os.path.join("shared", "pipelines", "steps", "__init__.py"),
)
_lock = threading.Lock()
_seen: set[str] = set()


def record_statement(
    sql: str, config: bigquery.QueryJobConfig, *, project: str, central_dataset: str | None
) -> None:
    """Appends the statement to this process's record file when recording is on."""
    directory = os.environ.get(RECORD_DIR_ENV)
    if not directory:
        return
    default = config.default_dataset
    entry = {
        "sql": sql,
        "parameters": {p.name: parameter_type(p) for p in config.query_parameters or ()},
        "project": project,
        "central_dataset": central_dataset,
        "default_dataset": f"{default.project}.{default.dataset_id}" if default else None,
        "sender": _sender(),
    }
    line = json.dumps(entry, sort_keys=True)
    with _lock:
        if line in _seen:
            return
        _seen.add(line)
        with open(Path(directory) / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
            out.write(line + "\n")


def parameter_type(parameter: Any) -> str | None:
    """A query parameter's GoogleSQL type; None for an empty array of structs (no fields)."""
    from google.cloud import bigquery

    if isinstance(parameter, bigquery.ScalarQueryParameter):
        return str(parameter.type_)
    if isinstance(parameter, bigquery.ArrayQueryParameter):
        if parameter.array_type in ("STRUCT", "RECORD"):
            if not parameter.values:
                return None
            return f"ARRAY<{_struct_type(parameter.values[0])}>"
        return f"ARRAY<{parameter.array_type}>"
    if isinstance(parameter, bigquery.StructQueryParameter):
        return _struct_type(parameter)
    return None


def _struct_type(value: Any) -> str:
    return "STRUCT<" + ", ".join(f"{k} {t}" for k, t in value.struct_types.items()) + ">"


def _sender() -> str:
    """The first frame that is neither this plumbing nor a library: the code that wrote the SQL."""
    libraries = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if not path.endswith(_PLUMBING) and not path.startswith(libraries):
            shown = path[len(_REPO) :] if path.startswith(_REPO) else path
            return f"{shown}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "unknown"

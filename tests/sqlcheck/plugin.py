"""The GoogleSQL check of a test session: every statement the platform sent, analyzed at the end.

The session sets CONVERGENCE_SQL_RECORD_DIR before any test runs, so the test
process and every process it starts (the local stack, runner subprocesses)
record what they send (shared/platform/sql_record.py). When the session ends,
each distinct statement is analyzed by ZetaSQL against the catalog of
tests/sqlcheck/catalog.py; one that does not analyze fails the session with
GoogleSQL's message and the code that sent it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from shared.platform.sql_analyzer import ZetaSqlAnalyzer
from shared.platform.sql_record import RECORD_DIR_ENV
from tests.sqlcheck.recorded import Report, analyze_records, load
from tests.sqlcheck.server import analyzer_address, stop

_OWNED = "_sqlcheck_owned_dir"
_RESULT = "_sqlcheck_result"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(RECORD_DIR_ENV):
        return  # an outer session records (a test that runs pytest in a subprocess)
    directory = tempfile.mkdtemp(prefix="sqlrecord-")
    os.environ[RECORD_DIR_ENV] = directory
    setattr(config, _OWNED, directory)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    directory = getattr(session.config, _OWNED, None)
    if directory is None:
        return
    records = load(Path(directory))
    if not records:
        return
    started = time.monotonic()
    report = analyze_records(ZetaSqlAnalyzer(analyzer_address()), records)
    setattr(session.config, _RESULT, (report, time.monotonic() - started))
    if report.failures:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    result: tuple[Report, float] | None = getattr(terminalreporter.config, _RESULT, None)
    if result is None:
        return
    report, seconds = result
    write = terminalreporter.write_line
    terminalreporter.section("GoogleSQL check (ZetaSQL)")
    for failure in report.failures:
        write(failure.describe(), red=True)
        write("")
    for statement, reason in report.allowed:
        write(f"allowed ({reason}): {sorted(statement.senders)[0]}", yellow=True)
    summary = (
        f"{len(report.statements)} distinct statements analyzed "
        f"({report.records} recorded sends) in {seconds:.1f}s: "
        f"{len(report.failures)} refused by GoogleSQL, {len(report.allowed)} allowlisted"
    )
    write(summary, red=bool(report.failures), green=not report.failures)


def pytest_unconfigure(config: pytest.Config) -> None:
    stop()
    directory = getattr(config, _OWNED, None)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
        os.environ.pop(RECORD_DIR_ENV, None)

"""The session check itself: recorded statements are deduplicated, analyzed, and fail the suite."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from shared.platform.settings import REPO_ROOT
from shared.platform.sql_analyzer import ZetaSqlAnalyzer
from shared.platform.sql_record import RECORD_DIR_ENV
from tests.sqlcheck.recorded import analyze_records
from tests.sqlcheck.server import analyzer_address


@pytest.fixture(scope="module")
def analyzer() -> ZetaSqlAnalyzer:
    return ZetaSqlAnalyzer(analyzer_address())


def record(sql: str, central: str = "c_0123456789ab", **parameters: str) -> dict[str, Any]:
    return {
        "sql": sql,
        "parameters": parameters,
        "project": "convergence-test",
        "central_dataset": central,
        "default_dataset": None,
        "sender": "shared/x.py:1 in f",
    }


def test_one_statement_sent_for_many_random_datasets_counts_once(analyzer: ZetaSqlAnalyzer) -> None:
    records = [
        record(
            f"SELECT status FROM `convergence-test.{central}.tenant_profiles` WHERE tenant_id = @t",
            central=central,
            t="STRING",
        )
        for central in ("c_0123456789ab", "c_ba9876543210")
    ]

    report = analyze_records(analyzer, records)

    assert (len(report.statements), report.failures, report.records) == (1, [], 2)


def test_a_statement_bigquery_would_refuse_fails_with_the_message_and_its_sender(
    analyzer: ZetaSqlAnalyzer,
) -> None:
    bad = record(
        "SELECT statuz FROM `convergence-test.c_0123456789ab.tenant_profiles` WHERE tenant_id = @t",
        t="STRING",
    )

    report = analyze_records(analyzer, [bad])

    [failure] = report.failures
    assert failure.error.message == "Unrecognized name: statuz; Did you mean status?"
    assert (failure.error.line, failure.error.column) == (1, 8)
    assert "sent by shared/x.py:1 in f" in failure.describe()


def test_tables_are_found_by_what_their_dataset_is(analyzer: ZetaSqlAnalyzer) -> None:
    # A central table in a tenant dataset, or a tenant table in the central one, is a mistake.
    central = "SELECT 1 FROM `convergence-test.c_0123456789ab.focus_cost`"
    tenant = "SELECT 1 FROM `convergence-test.t0123456789ab.tenant_profiles`"
    fine = "SELECT BilledCost FROM `convergence-test.t0123456789ab.focus_cost`"

    report = analyze_records(analyzer, [record(central), record(tenant), record(fine)])

    assert sorted(f.error.message.split(":")[0] for f in report.failures) == [
        "Table not found",
        "Table not found",
    ]


def test_an_undeclared_parameter_fails(analyzer: ZetaSqlAnalyzer) -> None:
    report = analyze_records(
        analyzer,
        [
            record(
                "SELECT 1 FROM `convergence-test.c_0123456789ab.tenant_profiles` "
                "WHERE tenant_id = @x"
            )
        ],
    )

    assert report.failures[0].error.message == "Query parameter 'x' not found"


def test_the_session_fails_when_a_sent_statement_does_not_analyze(tmp_path: Path) -> None:
    """A pytest session (in a subprocess) whose code sends one bad statement exits non-zero."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.sqlcheck.plugin"]\n')
    (tmp_path / "test_sends.py").write_text(
        textwrap.dedent(
            """
            from google.cloud import bigquery
            from shared.platform.sql_record import record_statement

            def test_sends():
                config = bigquery.QueryJobConfig(
                    query_parameters=[bigquery.ScalarQueryParameter("t", "STRING", "x")]
                )
                for sql in (
                    "SELECT status FROM `convergence-test.c_0123456789ab.tenant_profiles` "
                    "WHERE tenant_id = @t",
                    "SELECT list_value(1) AS a",
                ):
                    record_statement(
                        sql, config, project="convergence-test", central_dataset="c_0123456789ab"
                    )
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != RECORD_DIR_ENV}
    env["PYTHONPATH"] = str(REPO_ROOT)

    command = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:bqemulator"]
    result = subprocess.run(
        [sys.executable, *command, str(tmp_path)],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "GoogleSQL: Function not found: list_value" in result.stdout
    assert "sent by" in result.stdout and "test_sends.py" in result.stdout
    assert "2 distinct statements analyzed" in result.stdout
    assert "1 passed" in result.stdout

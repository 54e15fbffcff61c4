"""Every .sql file in the repository analyzes as GoogleSQL (mapping SQL included, run or not)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.platform.settings import REPO_ROOT
from shared.platform.sql_analyzer import ZetaSqlAnalyzer
from tests.sqlcheck.server import analyzer_address
from tests.sqlcheck.sql_files import check, discover


@pytest.fixture(scope="module")
def analyzer() -> ZetaSqlAnalyzer:
    return ZetaSqlAnalyzer(analyzer_address())


def test_every_sql_file_in_the_repository_analyzes(analyzer: ZetaSqlAnalyzer) -> None:
    problems = {}
    for path in discover():
        error = check(analyzer, path)
        if error is not None:
            problems[str(path.relative_to(REPO_ROOT))] = str(error)
    print(f"{len(discover())} .sql files analyzed")

    assert problems == {}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shared" / "sources" / "demo" / "mapping.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_mapping_with_declared_tables_and_parameters_analyzes(
    tmp_path: Path, analyzer: ZetaSqlAnalyzer
) -> None:
    path = write(
        tmp_path,
        "-- sqlcheck: param run_date DATE\n"
        "-- sqlcheck: table {raw} tenant.gcp_billing_raw\n"
        "-- sqlcheck: table {source} export.gcp_billing\n"
        "SELECT r.service.description, SUM(r.cost) AS cost FROM {raw} AS r\n"
        "WHERE r.x_run_date = @run_date\n"
        "  AND r.billing_account_id IN (SELECT billing_account_id FROM {source}\n"
        "    WHERE DATE(_PARTITIONTIME) >= @run_date)\n"
        "GROUP BY 1\n",
    )

    assert discover(tmp_path) == [path]
    assert check(analyzer, path) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "SELECT BilledCosts FROM focus_cost",
            "Unrecognized name: BilledCosts; Did you mean BilledCost? [at 1:8]",
        ),
        ("SELECT * FROM focus_cost WHERE x_run_date = @run_date", "Query parameter 'run_date'"),
        (
            "-- sqlcheck: table {raw} tenant.nope\nSELECT 1 FROM {raw}",
            "no schema for 'tenant.nope'",
        ),
        ("-- sqlcheck: tables {raw}\nSELECT 1", "can't read"),
        ("SELECT 1 AS a; SELECT 2 AS b", "Syntax error"),
    ],
)
def test_a_mistake_in_a_sql_file_is_reported(
    tmp_path: Path, analyzer: ZetaSqlAnalyzer, text: str, message: str
) -> None:
    error = check(analyzer, write(tmp_path, text))

    assert error is not None
    assert message in str(error)


def test_an_allowed_file_says_why(tmp_path: Path, analyzer: ZetaSqlAnalyzer) -> None:
    path = write(tmp_path, "-- sqlcheck: allow a fragment the loader splices into a SELECT\nx + 1")

    assert check(analyzer, path) is None

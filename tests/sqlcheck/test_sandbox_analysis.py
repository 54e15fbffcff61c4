"""The sandbox's second opinion: ZetaSQL's parser and analyzer on tenant SQL (no emulator)."""

from __future__ import annotations

import pytest

from shared.pipelines.sql_sandbox import TenantCatalog, TenantSqlError, validate_tenant_sql
from shared.platform.sql_analyzer import ZetaSqlAnalyzer
from tests.sqlcheck.catalog import tenant_columns
from tests.sqlcheck.server import analyzer_address

PROJECT = "convergence-test"
DS = "acme"


@pytest.fixture(scope="module")
def catalog() -> TenantCatalog:
    # The tenant's tables are the platform's tenant tables (schemas/tenant).
    return TenantCatalog(ZetaSqlAnalyzer(analyzer_address()), tenant_columns)


def check(sql: str, catalog: TenantCatalog) -> str:
    return validate_tenant_sql(sql, DS, project=PROJECT, catalog=catalog).sql


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT ServiceName, SUM(BilledCost) AS c FROM focus_cost GROUP BY ServiceName",
        "SELECT x_run_date FROM acme.focus_cost WHERE x_run_date = ${run_date}",
        "SELECT c.amount FROM `convergence-test.acme.gcp_billing_raw` AS r, UNNEST(r.credits) AS c",
        "SELECT 1 AS a FROM gcp_billing_raw AS r, r.credits",
        "WITH x AS (SELECT * FROM focus_cost) "
        "SELECT COUNT(*) AS n FROM x WHERE x_tenant_id = ${tenant_id}",
        "SELECT state FROM pipeline_runs",
    ],
)
def test_queries_that_bigquery_accepts_pass(sql: str, catalog: TenantCatalog) -> None:
    check(sql, catalog)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT nope FROM focus_cost", "Unrecognized name: nope (line 1, column 8)"),
        ("SELECT 1 FROM focus_cost WHERE BilledCost = 'x'", "NUMERIC, STRING"),
        ("SELECT list_value(1) AS a", "Function not found: list_value"),
        ("SELECT * FROM focus_cost WHERE x_run_date = 5", "DATE, INT64"),
        ("SELECT * FROM focus_cost WHERE x_run_date = ${run_date} + ${tenant_id}", "DATE, STRING"),
        ("SELECT * FROM missing_table", "table missing_table does not exist"),
        # sqlglot reads a table `t-1` here; BigQuery allows a dash only in the
        # first name of a path, and ZetaSQL's parser refuses it as BigQuery does.
        ("SELECT * FROM acme.focus-cost", "Syntax error"),
    ],
)
def test_queries_that_bigquery_refuses_are_refused_with_googlesqls_message(
    sql: str, reason: str, catalog: TenantCatalog
) -> None:
    with pytest.raises(TenantSqlError, match=r"BigQuery would refuse|does not exist") as refused:
        check(sql, catalog)

    assert reason in str(refused.value)


def test_positions_point_into_the_tenants_own_text(catalog: TenantCatalog) -> None:
    sql = "SELECT ${tenant_id} AS t,\n  ${run_date} AS d, nope\nFROM focus_cost"

    with pytest.raises(TenantSqlError) as refused:
        check(sql, catalog)

    assert "(line 2, column 21)" in str(refused.value)
    assert sql.splitlines()[1][20:24] == "nope"


def test_without_an_analyzer_the_sqlglot_checks_still_apply() -> None:
    with pytest.raises(TenantSqlError, match="outside your dataset"):
        validate_tenant_sql("SELECT * FROM other.t", DS, project=PROJECT, catalog=None)

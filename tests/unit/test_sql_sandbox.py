"""The tenant SQL sandbox: hostile SQL is refused with a reason, honest SQL runs fully qualified."""

from __future__ import annotations

import pytest

from shared.pipelines.sql_sandbox import TenantSqlError, validate_tenant_sql

PROJECT = "convergence-test"
DS = "acme"


def check(sql: str) -> str:
    return validate_tenant_sql(sql, DS, project=PROJECT).sql


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM t",
        "SELECT a FROM acme.t",
        "SELECT a FROM `acme.t`",
        "SELECT a FROM `convergence-test.acme.t`",
        "SELECT a FROM `convergence-test`.acme.t",
        "WITH x AS (SELECT a FROM acme.t) SELECT a FROM x",
        "SELECT a FROM acme.t UNION ALL SELECT a FROM acme.u",
        "(SELECT a FROM t) EXCEPT DISTINCT (SELECT a FROM u)",
        "SELECT a, (SELECT COUNT(*) FROM acme.u) AS n FROM t WHERE a IN (SELECT a FROM u)",
        "SELECT s.a, c.amount FROM acme.t AS s, UNNEST(s.credits) AS c",
        # An implicit array join on an alias is an UNNEST, not a table.
        "SELECT 1 FROM acme.t AS x, x.arr",
        "SELECT SAFE_CAST(a AS INT64) FROM t -- a comment",
        "SELECT * FROM `acme.t_*` WHERE _TABLE_SUFFIX > '2026'",
    ],
)
def test_queries_over_the_own_dataset_pass(sql: str) -> None:
    check(sql)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        # Another dataset or project, or metadata.
        ("SELECT * FROM other.t", "outside your dataset acme"),
        ("SELECT * FROM `other.t`", "outside your dataset acme"),
        ("SELECT * FROM t JOIN tenants.tenant_api_keys USING (a)", "outside your dataset"),
        ("SELECT * FROM `evil-project.acme.t`", "another project"),
        ("SELECT * FROM `evil-project`.acme.t", "another project"),
        ("WITH x AS (SELECT * FROM other.t) SELECT * FROM x", "outside your dataset"),
        ("SELECT (SELECT MAX(a) FROM other.t) FROM t", "outside your dataset"),
        ("SELECT * FROM t UNION ALL SELECT * FROM other.t", "outside your dataset"),
        ("SELECT * FROM acme.INFORMATION_SCHEMA.TABLES", "INFORMATION_SCHEMA"),
        ("SELECT * FROM `region-us`.INFORMATION_SCHEMA.JOBS", "INFORMATION_SCHEMA"),
        ("SELECT * FROM INFORMATION_SCHEMA.SCHEMATA", "INFORMATION_SCHEMA"),
        ("SELECT * FROM a.b.c.d", "not allowed"),
        ("SELECT 1 FROM acme.t AS x, other.arr", "outside your dataset"),
        # Writes, definitions, scripts, exports, calls.
        ("INSERT INTO acme.t SELECT 1", "only a SELECT"),
        ("DELETE FROM acme.t WHERE TRUE", "only a SELECT"),
        ("UPDATE acme.t SET a = 1 WHERE TRUE", "only a SELECT"),
        ("MERGE acme.t USING acme.u ON FALSE WHEN NOT MATCHED THEN INSERT ROW", "only a SELECT"),
        ("CREATE TABLE acme.x AS SELECT 1 AS a", "only a SELECT"),
        ("DROP TABLE acme.t", "only a SELECT"),
        ("TRUNCATE TABLE acme.t", "only a SELECT"),
        ("EXPORT DATA OPTIONS(uri='gs://x/*.csv', format='CSV') AS SELECT 1", "only a SELECT"),
        ("CALL acme.proc()", "only a SELECT"),
        ("DECLARE x INT64 DEFAULT 1", "only a SELECT"),
        ("BEGIN TRANSACTION", "only a SELECT"),
        # Writes nested inside a query, which sqlglot would regenerate as DDL/DML.
        ("SELECT * INTO acme.t2 FROM acme.t", "INTO is not allowed"),
        ("WITH x AS (DELETE FROM acme.t WHERE TRUE RETURNING *) SELECT * FROM x", "DELETE"),
        # A second statement smuggled after the first.
        ("SELECT 1; DROP TABLE acme.t", "exactly one statement"),
        ("SELECT 1; SELECT 2", "exactly one statement"),
        ("SELECT 1;\nDELETE FROM acme.t WHERE TRUE;", "exactly one statement"),
        # Table functions and functions that reach elsewhere.
        ("SELECT * FROM EXTERNAL_QUERY('conn', 'SELECT 1')", "EXTERNAL_QUERY"),
        ("SELECT (SELECT 1 FROM EXTERNAL_QUERY('c', 's'))", "EXTERNAL_QUERY"),
        ("SELECT * FROM ML.PREDICT(MODEL acme.m, (SELECT 1))", "not allowed"),
        ("SELECT other.fn(a) FROM t", "qualified function"),
        ("SELECT `evil-project.ds.fn`(a) FROM t", "not allowed"),
        # Parameters other than the two substitutions.
        ("SELECT * FROM t WHERE a = @secret", "parameter @secret"),
        ("SELECT @@project_id", "not allowed"),
        ("SELECT * FROM t WHERE a = ?", "positional"),
        ("SELECT '${dataset}'", "unknown substitution"),
        # Garbage.
        ("", "empty"),
        ("SELEC 1", "does not parse|only a SELECT"),
    ],
)
def test_hostile_sql_is_refused(sql: str, reason: str) -> None:
    with pytest.raises(TenantSqlError, match=reason):
        check(sql)


def test_tables_are_rewritten_fully_qualified_and_ctes_left_alone() -> None:
    checked = validate_tenant_sql(
        "WITH x AS (SELECT a FROM t) SELECT a FROM x JOIN acme.u USING (a)", DS, project=PROJECT
    )
    assert "`convergence-test`.`acme`.`t`" in checked.sql
    assert "`convergence-test`.`acme`.`u`" in checked.sql
    assert "FROM x" in checked.sql
    assert set(checked.tables) == {"convergence-test.acme.t", "convergence-test.acme.u"}


def test_substitutions_become_parameters_never_text() -> None:
    checked = validate_tenant_sql(
        "SELECT a FROM t WHERE d = ${run_date} AND tenant = ${ tenant_id }", DS, project=PROJECT
    )
    assert "@run_date" in checked.sql and "@tenant_id" in checked.sql
    assert "${" not in checked.sql
    assert checked.parameters == {"run_date", "tenant_id"}


def test_comments_are_dropped_so_nothing_unchecked_rides_along() -> None:
    sql = check("SELECT a FROM t /* @secret */ -- @other\n")
    assert "@" not in sql and "--" not in sql and "/*" not in sql


def test_the_project_defaults_to_the_platform_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCP_PROJECT", "platform-proj")
    from shared.platform.settings import get_settings

    get_settings.cache_clear()
    try:
        project = get_settings().gcp_project
        assert "`" + project + "`" in validate_tenant_sql("SELECT a FROM t", DS).sql
    finally:
        get_settings.cache_clear()

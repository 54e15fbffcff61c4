"""Tenant SQL at upload, analyzed by GoogleSQL's analyzer against the tenant's own tables."""

from __future__ import annotations

import pytest
from google.cloud import bigquery

from tests.integration.conftest import Platform
from tests.integration.test_scheduling import make_config


def upload(platform: Platform, key: str, sql: str) -> tuple[int, dict[str, str]]:
    response = make_config(
        platform, key, pipeline="bq_etl", parameters={"sql": sql, "target_table": "daily_summary"}
    )
    return response.status_code, response.get_json()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        # A column renamed in the schema but not in the SQL.
        (
            "SELECT ServiceNam, SUM(BilledCost) AS cost FROM focus_cost GROUP BY ServiceNam",
            "Unrecognized name: ServiceNam; Did you mean ServiceName? (line 1, column 8)",
        ),
        # A type BigQuery would not coerce (the emulator accepts it).
        (
            "SELECT BilledCost FROM focus_cost\nWHERE BilledCost = 'cheap'",
            "No matching signature for operator = for argument types: NUMERIC, STRING",
        ),
        # A DuckDB function BigQuery doesn't have.
        (
            "SELECT list_value(1, 2) AS a",
            "Function not found: list_value; Did you mean last_value? (line 1, column 8)",
        ),
        # The position is the tenant's own text, after ${...} became a parameter.
        (
            "SELECT ${tenant_id} AS t, ${run_date} AS d, nope FROM focus_cost",
            "Unrecognized name: nope (line 1, column 45)",
        ),
        ("SELECT * FROM daily_sumary", "table daily_sumary does not exist in your dataset"),
        # sqlglot parses first and says where it stopped.
        ("SELECT 1 AS a FROM focus_cost WHERE", "the SQL does not parse"),
    ],
)
def test_a_query_bigquery_would_refuse_is_a_422_at_upload_with_googlesqls_message(
    platform: Platform, sql: str, message: str
) -> None:
    tenant = platform.onboarded()

    status, body = upload(platform, tenant["api_key"], sql)

    assert status == 422, body
    assert body["field"] == "parameters.sql"
    assert message in body["detail"]
    listed = platform.tenant_call("pipelines", "GET", "/configs", tenant["api_key"]).get_json()
    assert listed["configs"] == []


def test_the_tenants_own_tables_are_read_from_its_dataset(platform: Platform) -> None:
    tenant = platform.onboarded()
    client, project = platform.deps.warehouse.client, platform.deps.settings.gcp_project
    schema = [bigquery.SchemaField("day", "DATE"), bigquery.SchemaField("cost", "NUMERIC")]
    client.create_table(bigquery.Table(f"{project}.{tenant['tenant_id']}.budget", schema=schema))

    ok, _ = upload(
        platform, tenant["api_key"], "SELECT day, SUM(cost) AS c FROM budget GROUP BY day"
    )
    refused, body = upload(platform, tenant["api_key"], "SELECT day FROM budget WHERE cost = 'x'")

    assert ok == 201
    assert refused == 422
    assert "NUMERIC, STRING" in body["detail"]

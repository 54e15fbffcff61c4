"""`bq_etl.query` through the `bq_etl` template on the emulator: writes, idempotency, and hostile
SQL refused at run time even when the stored config was never checked."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.deps import Deps
from shared.pipelines.context import PipelineOutcome, RunContext
from shared.pipelines.executor import execute
from tests.integration.conftest import Platform

D1 = dt.date(2026, 11, 28)
D2 = dt.date(2026, 11, 29)


@pytest.fixture
def datasets(deps: Deps) -> Iterator[tuple[str, str]]:
    """The tenant's dataset with a `usage` table, and another tenant's with a secret."""
    client, project = deps.warehouse.client, deps.warehouse.project
    mine, other = ("t" + uuid.uuid4().hex[:12] for _ in range(2))
    for name in (mine, other):
        client.create_dataset(f"{project}.{name}")
    schema = [
        bigquery.SchemaField("day", "DATE"),
        bigquery.SchemaField("service", "STRING"),
        bigquery.SchemaField("cost", "NUMERIC"),
    ]
    client.create_table(bigquery.Table(f"{project}.{mine}.usage", schema=schema))
    client.create_table(bigquery.Table(f"{project}.{other}.secrets", schema=schema))
    deps.warehouse.execute(
        f"INSERT INTO {deps.warehouse.table(mine, 'usage')} (day, service, cost) VALUES "
        "(@d1, 'compute', PARSE_NUMERIC('1.123456789')), (@d1, 'storage', PARSE_NUMERIC('2')),"
        " (@d2, 'compute', PARSE_NUMERIC('10.000000001'))",
        {"d1": D1, "d2": D2},
    )
    yield mine, other
    for name in (mine, other):
        client.delete_dataset(f"{project}.{name}", delete_contents=True, not_found_ok=True)


def run(deps: Deps, dataset: str, run_date: dt.date = D2, **parameters: Any) -> PipelineOutcome:
    context = RunContext(
        run_id="run_" + uuid.uuid4().hex[:8],
        tenant_id=dataset,
        config_id="cfg_etl",
        pipeline="bq_etl",
        run_date=run_date,
        dataset_id=dataset,
        parameters=parameters,
        max_bytes_billed=10**9,
    )
    return execute(deps, context, threading.Event())


def rows(deps: Deps, dataset: str, table: str) -> list[dict[str, Any]]:
    return deps.warehouse.query(
        f"SELECT * FROM {deps.warehouse.table(dataset, table)} ORDER BY 1, 2, 3"
    )


def test_write_truncate_creates_the_target_binds_substitutions_and_replaces_on_rerun(
    deps: Deps, datasets: tuple[str, str]
) -> None:
    mine, _ = datasets
    sql = (
        "SELECT service, SUM(cost) AS cost, ${tenant_id} AS tenant, ${run_date} AS as_of "
        "FROM usage WHERE day <= ${run_date} GROUP BY service"
    )
    for _ in range(2):
        outcome = run(
            deps, mine, sql=sql, target_table="by_service", write_disposition="WRITE_TRUNCATE"
        )
        assert outcome.state == "SUCCEEDED", outcome
    assert rows(deps, mine, "by_service") == [
        {"service": "compute", "cost": Decimal("11.123456790"), "tenant": mine, "as_of": D2},
        {"service": "storage", "cost": Decimal("2"), "tenant": mine, "as_of": D2},
    ]
    table = deps.warehouse.client.get_table(f"{deps.warehouse.project}.{mine}.by_service")
    assert {f.name: f.field_type for f in table.schema}["cost"] == "NUMERIC"
    assert outcome.rows_written == 2
    assert outcome.steps[0].step_name == "transform"


def test_write_append_appends(deps: Deps, datasets: tuple[str, str]) -> None:
    mine, _ = datasets
    sql = "SELECT day, service, cost FROM `usage` WHERE day = ${run_date}"
    for _ in range(2):
        assert run(deps, mine, sql=sql, target_table="copy").state == "SUCCEEDED"
    assert len(rows(deps, mine, "copy")) == 2


def test_partition_column_replaces_only_the_run_dates_rows(
    deps: Deps, datasets: tuple[str, str]
) -> None:
    mine, _ = datasets
    params = {
        # Returns every day: only the run date's rows may be written.
        "sql": f"SELECT day, service, cost FROM {mine}.usage",
        "target_table": "daily",
        "write_disposition": "WRITE_TRUNCATE",
        "partition_column": "day",
    }
    for date in (D1, D2, D1, D2):
        assert run(deps, mine, date, **params).state == "SUCCEEDED"
    assert [(r["day"], r["service"]) for r in rows(deps, mine, "daily")] == [
        (D1, "compute"),
        (D1, "storage"),
        (D2, "compute"),
    ]
    table = deps.warehouse.client.get_table(f"{deps.warehouse.project}.{mine}.daily")
    assert table.time_partitioning is not None and table.time_partitioning.field == "day"


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM {other}.secrets", "outside your dataset"),
        ("SELECT * FROM `{project}.{other}.secrets`", "outside your dataset"),
        ("SELECT * FROM usage UNION ALL SELECT * FROM {other}.secrets", "outside your dataset"),
        ("SELECT 1 AS a; DROP TABLE {mine}.usage", "exactly one statement"),
        ("DELETE FROM {mine}.usage WHERE TRUE", "only a SELECT"),
        ("CREATE TABLE {mine}.sneaky AS SELECT 1 AS a", "only a SELECT"),
        ("SELECT * FROM {mine}.INFORMATION_SCHEMA.TABLES", "INFORMATION_SCHEMA"),
    ],
)
def test_hostile_sql_in_a_stored_config_is_refused_at_run_time(
    deps: Deps, datasets: tuple[str, str], sql: str, reason: str
) -> None:
    mine, other = datasets
    text = sql.format(mine=mine, other=other, project=deps.warehouse.project)
    # `execute` gets the stored parameters as they are: nothing checked them at upload.
    outcome = run(deps, mine, sql=text, target_table="loot", write_disposition="WRITE_TRUNCATE")
    assert (outcome.state, outcome.error_code) == ("FAILED", "sql_rejected")
    assert reason in (outcome.error_message or "")
    assert outcome.steps[0].attempts == 1
    client, project = deps.warehouse.client, deps.warehouse.project
    with pytest.raises(gexc.NotFound):
        client.get_table(f"{project}.{mine}.loot")
    assert len(rows(deps, mine, "usage")) == 3  # untouched
    with pytest.raises(gexc.NotFound):
        client.get_table(f"{project}.{mine}.sneaky")


def test_platform_tables_are_not_a_target(deps: Deps, datasets: tuple[str, str]) -> None:
    mine, _ = datasets
    outcome = run(deps, mine, sql="SELECT 1 AS a", target_table="focus_cost")
    assert (outcome.state, outcome.error_code) == ("FAILED", "target_protected")


def test_the_configs_own_checks_run_after_the_query(deps: Deps, datasets: tuple[str, str]) -> None:
    mine, _ = datasets
    outcome = run(
        deps,
        mine,
        sql="SELECT service, cost FROM usage WHERE day = ${run_date}",
        target_table="checked",
        expectations=[
            {"kind": "row_count", "table": "checked", "min": 1, "max": 1},
            {"kind": "row_count", "table": "checked", "min": 5, "severity": "warn"},
        ],
    )
    assert outcome.state == "SUCCEEDED", outcome
    assert [r.status for r in outcome.dq_results] == ["PASS", "WARN"]


def test_through_the_config_api_and_the_runner_with_a_tampered_config(platform: Platform) -> None:
    """The whole path: config API -> manual run -> runner -> executor -> logs in the run API.
    Then the stored SQL is rewritten behind the API's back: the run-time check refuses it."""
    from jobs.pipeline_runner import execute_run
    from shared.deps import deps as current_deps

    tenant = platform.onboarded()
    key, dataset = tenant["api_key"], tenant["dataset_id"]
    wh = platform.deps.warehouse
    sql = "SELECT ${tenant_id} AS tenant, ${run_date} AS day, 42 AS answer"
    body = {
        "name": "my etl",
        "pipeline": "bq_etl",
        "schedule_cron": "0 3 * * *",
        "parameters": {
            "sql": sql,
            "target_table": "answers",
            "write_disposition": "WRITE_TRUNCATE",
            "partition_column": "day",
            "expectations": [{"kind": "row_count", "table": "answers", "min": 1, "max": 1}],
        },
    }
    created = platform.tenant_call("pipelines", "POST", "/configs", key, json=body)
    assert created.status_code == 201, created.get_json()
    config_id = created.get_json()["config_id"]

    def run_once() -> dict[str, Any]:
        started = platform.tenant_call(
            "pipelines",
            "POST",
            "/runs",
            key,
            json={"config_id": config_id, "run_date": "2026-11-29"},
        )
        assert started.status_code == 202, started.get_json()
        [run_id] = started.get_json()["run_ids"]
        execute_run(current_deps(), run_id)
        return dict(platform.tenant_call("pipelines", "GET", f"/runs/{run_id}", key).get_json())

    run = run_once()
    assert run["state"] == "SUCCEEDED", run
    assert [(s["step_name"], s["status"]) for s in run["steps"]] == [
        ("transform", "SUCCEEDED"),
        ("quality", "SUCCEEDED"),
    ]
    assert [(r["check_name"], r["status"]) for r in run["dq_results"]] == [
        ("row_count:answers", "PASS")
    ]
    assert rows(platform.deps, dataset, "answers") == [
        {"tenant": tenant["tenant_id"], "day": D2, "answer": 42}
    ]

    hostile = dict(
        body["parameters"], sql=f"SELECT * FROM {wh.settings.central_dataset}.tenant_api_keys"
    )
    wh.execute(
        f"UPDATE {wh.central('tenant_pipeline_configs')} SET parameters_json = @p "
        "WHERE config_id = @c",
        {"p": json.dumps(hostile), "c": config_id},
    )
    run = run_once()
    assert run["state"] == "FAILED"
    assert [(s["step_name"], s["status"], s["error_code"]) for s in run["steps"]] == [
        ("transform", "FAILED", "sql_rejected"),
        ("quality", "SKIPPED", None),
    ]

"""`dq.check` on the emulator: each expectation kind, severities, and the FOCUS proofs written
as expectations (exact reconciliation of BilledCost with cost + credits, nulls, enumerations)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.deps import Deps
from shared.pipelines.context import PipelineOutcome, RunContext
from shared.pipelines.definitions import parse_definition
from shared.pipelines.executor import execute
from shared.platform.warehouse import Typed, table_from_spec

DAY = dt.date(2026, 11, 29)
OTHER_DAY = dt.date(2026, 11, 28)
TS = "TIMESTAMP '2026-11-29 00:00:00+00'"


@pytest.fixture
def dataset(deps: Deps) -> Iterator[str]:
    """A tenant dataset with the platform's raw and FOCUS tables (created via the API)."""
    client, project = deps.warehouse.client, deps.warehouse.project
    name = "t" + uuid.uuid4().hex[:12]
    client.create_dataset(f"{project}.{name}")
    for table in ("gcp_billing_raw", "focus_cost"):
        client.create_table(table_from_spec(project, name, deps.catalog.tenant[table]))
    yield name
    client.delete_dataset(f"{project}.{name}", delete_contents=True, not_found_ok=True)


def add_raw(deps: Deps, dataset: str, day: dt.date, cost: str, credits: list[str]) -> None:
    credit_structs = ", ".join(
        f"STRUCT('c' AS name, PARSE_NUMERIC('{c}') AS amount, 'c' AS full_name, 'id' AS id, "
        "'PROMOTION' AS type)"
        for c in credits
    )
    array = f"[{credit_structs}]" if credits else "[]"
    deps.warehouse.execute(
        f"INSERT INTO {deps.warehouse.table(dataset, 'gcp_billing_raw')} "
        "(usage_start_time, cost, cost_at_list, credits, x_tenant_id, x_pipeline_id, x_run_date, "
        "x_run_id, x_ingested_at) "
        f"VALUES ({TS}, PARSE_NUMERIC(@cost), PARSE_NUMERIC(@cost), {array}, @t, 'p', @d, 'r', "
        f"{TS})",
        {"cost": cost, "t": dataset, "d": day},
    )


def add_focus(
    deps: Deps,
    dataset: str,
    day: dt.date,
    billed: str,
    list_cost: str | None = None,
    **overrides: Any,
) -> None:
    values: dict[str, Any] = {
        "BillingAccountId": "0000-AAAA",
        "BillingCurrency": "USD",
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeFrequency": "Usage-Based",
        "InvoiceIssuerName": "Google Cloud",
        "ProviderName": "Google Cloud",
        "PublisherName": "Google Cloud",
        "ServiceCategory": "Compute",
        "ServiceName": "Compute Engine",
        **overrides,
    }
    strings = ", ".join(values)
    placeholders = ", ".join(f"CAST(@{k} AS STRING)" for k in values)
    params = {k: Typed("STRING", None) if v is None else v for k, v in values.items()}
    deps.warehouse.execute(
        f"INSERT INTO {deps.warehouse.table(dataset, 'focus_cost')} ({strings}, BilledCost, "
        "ListCost, EffectiveCost, ContractedCost, BillingPeriodStart, BillingPeriodEnd, "
        "ChargePeriodStart, ChargePeriodEnd, x_tenant_id, x_pipeline_id, x_run_date, x_run_id, "
        f"x_ingested_at) VALUES ({placeholders}, PARSE_NUMERIC(@billed), PARSE_NUMERIC(@list), "
        f"PARSE_NUMERIC(@billed), PARSE_NUMERIC(@billed), {TS}, {TS}, {TS}, {TS}, @t, 'p', @d, "
        f"'r', {TS})",
        {**params, "billed": billed, "list": list_cost or billed, "t": dataset, "d": day},
    )


def run_dq(deps: Deps, dataset: str, expectations: list[dict[str, Any]]) -> PipelineOutcome:
    text = yaml.safe_dump(
        {
            "id": "dq_only",
            "steps": [
                {"name": "quality", "type": "dq.check", "params": {"expectations": expectations}}
            ],
        }
    )
    return _execute(deps, dataset, parse_definition(text))


def _execute(deps: Deps, dataset: str, pipeline: Any) -> PipelineOutcome:
    run = RunContext(
        run_id="run_" + uuid.uuid4().hex[:8],
        tenant_id=dataset,
        config_id="cfg",
        pipeline=pipeline.id,
        run_date=DAY,
        dataset_id=dataset,
        max_bytes_billed=10**9,
    )
    return execute(deps, run, threading.Event(), definition=pipeline)


def template_quality(deps: Deps, dataset: str) -> PipelineOutcome:
    """The FOCUS proofs written as dq.check expectations (dq_focus_expectations.yaml)."""
    data = yaml.safe_load((Path(__file__).parent / "dq_focus_expectations.yaml").read_text())
    return run_dq(deps, dataset, data["expectations"])


def by_name(outcome: PipelineOutcome) -> dict[str, Any]:
    return {r.check_name: r for r in outcome.dq_results}


def seed_consistent(deps: Deps, dataset: str) -> None:
    # 12.345678901 - 2.000000001 - 0.1 = 10.2456789; a float sum would drift.
    add_raw(deps, dataset, DAY, "12.345678901", ["-2.000000001", "-0.1"])
    add_raw(deps, dataset, DAY, "0.000000001", [])
    add_focus(deps, dataset, DAY, "10.245678900", list_cost="12.345678901")
    add_focus(deps, dataset, DAY, "0.000000001", ChargeCategory="Tax")
    # Another day's rows must not count.
    add_raw(deps, dataset, OTHER_DAY, "5", [])


def test_the_focus_checks_pass_on_consistent_focus_rows(deps: Deps, dataset: str) -> None:
    seed_consistent(deps, dataset)
    outcome = template_quality(deps, dataset)
    assert outcome.state == "SUCCEEDED", [
        (r.check_name, r.status, r.detail) for r in outcome.dq_results
    ]
    results = by_name(outcome)
    assert {r.status for r in results.values()} == {"PASS"}
    recon = results["billed_cost_equals_cost_plus_credits"]
    assert (recon.expected, recon.actual) == ("10.245678901", "10.245678901")


def test_reconciliation_is_exact_to_the_last_numeric_digit(deps: Deps, dataset: str) -> None:
    seed_consistent(deps, dataset)
    # One nano-unit off: what the emulator's 3-decimal NUMERIC casts would do, at scale.
    add_focus(deps, dataset, DAY, "0.000000001", ChargeCategory="Adjustment")
    outcome = template_quality(deps, dataset)
    assert (outcome.state, outcome.error_code) == ("FAILED", "dq_failed")
    recon = by_name(outcome)["billed_cost_equals_cost_plus_credits"]
    assert recon.status == "FAIL"
    assert (recon.expected, recon.actual) == ("10.245678901", "10.245678902")
    assert recon.detail == "difference 1E-9"
    assert "billed_cost_equals_cost_plus_credits" in (outcome.steps[0].message or "")


def test_null_mandatory_columns_and_unknown_enumerations_fail(deps: Deps, dataset: str) -> None:
    seed_consistent(deps, dataset)
    add_focus(deps, dataset, DAY, "0", ServiceName=None, ChargeCategory="Refund")
    add_focus(deps, dataset, DAY, "0", ChargeClass="Regular")
    add_raw(deps, dataset, DAY, "0", [])
    results = by_name(template_quality(deps, dataset))
    assert results["billed_cost_equals_cost_plus_credits"].status == "PASS"
    assert results["mandatory_focus_columns_not_null"].status == "FAIL"
    assert results["mandatory_focus_columns_not_null"].detail == "ServiceName: 1 null"
    assert results["charge_category_values"].status == "FAIL"
    assert results["charge_category_values"].detail == "'Refund' x1"
    assert results["charge_class_values"].status == "FAIL"
    assert results["service_category_values"].status == "PASS"


def test_generic_expectations_and_warn_severity(deps: Deps, dataset: str) -> None:
    seed_consistent(deps, dataset)
    add_focus(deps, dataset, DAY, "1", BillingAccountId="0000-AAAA", ChargeCategory="Usage")
    on_day = {"x_run_date": "${run_date}"}
    outcome = run_dq(
        deps,
        dataset,
        [
            {"kind": "row_count", "table": "focus_cost", "where": on_day, "min": 3, "max": 3},
            {"kind": "row_count", "table": "gcp_billing_raw", "min": 10, "severity": "warn"},
            {
                "kind": "unique",
                "table": "focus_cost",
                "columns": ["BillingAccountId", "ChargeCategory"],
            },
            {
                "kind": "not_null",
                "table": "focus_cost",
                "columns": ["ChargeClass"],
                "severity": "warn",
            },
            {
                "kind": "accepted_values",
                "table": "focus_cost",
                "column": "BillingCurrency",
                "values": ["USD"],
            },
            {
                "kind": "row_count",
                "table": "focus_cost",
                "where": {"ChargeCategory": "Tax", "x_run_date": "${run_date}"},
                "min": 1,
                "max": 1,
            },
            {"kind": "row_count", "table": "no_such_table", "min": 0, "severity": "warn"},
        ],
    )
    statuses = [(r.check_name, r.status) for r in outcome.dq_results]
    assert statuses == [
        ("row_count:focus_cost", "PASS"),
        ("row_count:gcp_billing_raw", "WARN"),
        ("unique:focus_cost:BillingAccountId,ChargeCategory", "FAIL"),
        ("not_null:focus_cost:ChargeClass", "WARN"),
        ("accepted_values:focus_cost:BillingCurrency", "PASS"),
        ("row_count:focus_cost", "PASS"),
        ("row_count:no_such_table", "WARN"),
    ]
    assert outcome.dq_results[2].actual == "1"  # (0000-AAAA, Usage) twice
    assert "not found" in (outcome.dq_results[6].detail or "")
    assert outcome.state == "FAILED"


def test_only_warnings_do_not_fail_the_run(deps: Deps, dataset: str) -> None:
    outcome = run_dq(
        deps, dataset, [{"kind": "row_count", "table": "focus_cost", "min": 1, "severity": "warn"}]
    )
    assert outcome.state == "SUCCEEDED"
    assert [r.status for r in outcome.dq_results] == ["WARN"]


def test_float_reconciliation_with_a_tolerance(deps: Deps, dataset: str) -> None:
    client, project = deps.warehouse.client, deps.warehouse.project
    from google.cloud import bigquery

    for name in ("a", "b"):
        client.create_table(
            bigquery.Table(
                f"{project}.{dataset}.{name}", schema=[bigquery.SchemaField("v", "FLOAT64")]
            )
        )
    deps.warehouse.execute(
        f"INSERT INTO {deps.warehouse.table(dataset, 'a')} (v) VALUES (0.1), (0.2)"
    )
    deps.warehouse.execute(f"INSERT INTO {deps.warehouse.table(dataset, 'b')} (v) VALUES (0.3)")
    sides = {"left": {"table": "a", "column": "v"}, "right": {"table": "b", "column": "v"}}
    exact = run_dq(deps, dataset, [{"kind": "reconciliation", **sides}])
    tolerant = run_dq(deps, dataset, [{"kind": "reconciliation", "tolerance": 1e-9, **sides}])
    assert exact.dq_results[0].status == "FAIL"  # 0.1 + 0.2 != 0.3 in floating point
    assert tolerant.dq_results[0].status == "PASS"


def test_names_in_expectations_are_validated_identifiers(deps: Deps, dataset: str) -> None:
    from shared.pipelines.definitions import DefinitionError

    for bad in (
        {"kind": "row_count", "table": "focus_cost; DROP TABLE x"},
        {"kind": "not_null", "table": "focus_cost", "columns": ["a) OR (1=1"]},
        {"kind": "row_count", "table": "other.focus_cost"},
        {"kind": "row_count", "table": "focus_cost", "where": {"x = 1 OR 1": 1}},
    ):
        with pytest.raises(DefinitionError):
            run_dq(deps, dataset, [bad])


def test_an_expectation_bigquery_refuses_fails_alone_and_the_others_still_run(
    deps: Deps, dataset: str
) -> None:
    # A tenant's filter naming a column the table lacks (or, on BigQuery, a
    # value of the wrong type) is refused by the engine: that expectation
    # fails with the reason, the others are still evaluated.
    seed_consistent(deps, dataset)
    outcome = run_dq(
        deps,
        dataset,
        [
            {"kind": "row_count", "table": "focus_cost", "where": {"NoSuchColumn": 1}, "min": 1},
            {"kind": "row_count", "table": "focus_cost", "min": 1},
        ],
    )

    assert [r.status for r in outcome.dq_results] == ["FAIL", "PASS"]
    assert "refused" in (outcome.dq_results[0].detail or "")
    assert outcome.state == "FAILED"

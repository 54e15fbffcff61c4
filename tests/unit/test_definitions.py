"""Pipeline definitions: YAML + pydantic, clear errors, the DAG checks and parameter filling."""

from __future__ import annotations

import textwrap

import pytest

from shared.pipelines.definitions import (
    DefinitionError,
    find_cycle,
    load_template,
    parse_definition,
    resolve,
    template_ids,
    validate_parameters,
)
from shared.pipelines.executor import BUILT_IN_PIPELINES
from shared.pipelines.registry import STEP_TYPES, StepType

# Test step types: the DAG checks don't need real step code.
REGISTRY = {
    "noop": StepType("noop", "shared.pipelines.steps.platform:check_dataset"),
    "dq.check": STEP_TYPES["dq.check"],
    "bq_etl.query": STEP_TYPES["bq_etl.query"],
}


def parse(text: str, **kwargs: object) -> object:
    return parse_definition(textwrap.dedent(text), registry=REGISTRY, **kwargs)  # type: ignore[arg-type]


def steps_yaml(*lines: str) -> str:
    return "id: p\nsteps:\n" + "\n".join(lines)


def test_built_in_templates_load_and_are_the_executor_ids() -> None:
    assert set(BUILT_IN_PIPELINES) == {
        "dryrun",
        "gcp_cost_billing",
        "bq_etl",
        "openai_costs",
        "anthropic_costs",
        "aws_cost_export",
        "azure_cost_export",
        "gcp_focus_export",
    }
    assert template_ids() == BUILT_IN_PIPELINES
    for pipeline_id in BUILT_IN_PIPELINES:
        assert load_template(pipeline_id, check_imports=False).id == pipeline_id
    gcp = load_template("gcp_cost_billing", check_imports=False)
    assert [(s.name, s.type, s.depends_on) for s in gcp.steps] == [
        ("extract", "gcp_billing.extract", []),
        ("convert", "focus.convert_gcp", ["extract"]),
        ("quality", "focus.check", ["convert"]),
    ]
    native = load_template("gcp_focus_export", check_imports=False)
    assert [(s.name, s.type, s.depends_on) for s in native.steps] == [
        ("convert", "focus_native.convert", []),
        ("quality", "focus_native.check", ["convert"]),
    ]


def test_a_diamond_is_a_dag() -> None:
    pipeline = parse(
        steps_yaml(
            "  - {name: a, type: noop}",
            "  - {name: b, type: noop, depends_on: [a]}",
            "  - {name: c, type: noop, depends_on: [a]}",
            "  - {name: d, type: noop, depends_on: [b, c]}",
        )
    )
    assert [s.name for s in pipeline.steps] == ["a", "b", "c", "d"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("lines", "cycle"),
    [
        (
            [
                "  - {name: a, type: noop, depends_on: [b]}",
                "  - {name: b, type: noop, depends_on: [a]}",
            ],
            "a -> b -> a",
        ),
        (
            [
                "  - {name: a, type: noop}",
                "  - {name: b, type: noop, depends_on: [a, d]}",
                "  - {name: c, type: noop, depends_on: [b]}",
                "  - {name: d, type: noop, depends_on: [c]}",
            ],
            "b -> d -> c -> b",
        ),
    ],
)
def test_a_cycle_is_refused_and_named(lines: list[str], cycle: str) -> None:
    with pytest.raises(DefinitionError, match="cycle: " + cycle):
        parse(steps_yaml(*lines))


def test_find_cycle_directly() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    assert find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]}) == ["a", "c", "b", "a"]


def test_self_dependency_is_refused() -> None:
    with pytest.raises(DefinitionError, match="step a depends on itself"):
        parse(steps_yaml("  - {name: a, type: noop, depends_on: [a]}"))


def test_unknown_dependency_is_refused() -> None:
    with pytest.raises(DefinitionError, match="step b depends on unknown step 'x'"):
        parse(steps_yaml("  - {name: a, type: noop}", "  - {name: b, type: noop, depends_on: [x]}"))


def test_unknown_step_type_is_refused_with_the_known_ones() -> None:
    with pytest.raises(DefinitionError, match=r"step a: unknown step type 'nope'; known: .*noop"):
        parse(steps_yaml("  - {name: a, type: nope}"))


def test_a_step_type_whose_module_is_missing_fails_clearly_at_load() -> None:
    registry = {"ghost": StepType("ghost", "shared.pipelines.steps.not_there:run")}
    text = steps_yaml("  - {name: a, type: ghost}")
    with pytest.raises(DefinitionError, match=r"module shared\.pipelines\.steps\.not_there is not"):
        parse_definition(text, registry=registry)
    # The config API validates without importing step code.
    parse_definition(text, registry=registry, check_imports=False)


def test_duplicate_names_unknown_keys_and_bad_values_are_refused() -> None:
    with pytest.raises(DefinitionError, match="duplicate step names: a"):
        parse(steps_yaml("  - {name: a, type: noop}", "  - {name: a, type: noop}"))
    with pytest.raises(DefinitionError, match=r"steps\.0\.retry: Extra inputs"):
        parse(steps_yaml("  - {name: a, type: noop, retry: 3}"))
    with pytest.raises(DefinitionError, match=r"steps\.0\.timeout_seconds"):
        parse(steps_yaml("  - {name: a, type: noop, timeout_seconds: 0}"))
    with pytest.raises(DefinitionError, match=r"steps\.0\.on_failure"):
        parse(steps_yaml("  - {name: a, type: noop, on_failure: maybe}"))
    with pytest.raises(DefinitionError, match="not valid YAML"):
        parse("id: p\nsteps: [")
    with pytest.raises(DefinitionError, match="steps"):
        parse("id: p\nsteps: []")


def test_undeclared_parameter_reference_is_refused() -> None:
    with pytest.raises(DefinitionError, match="step a uses undeclared parameter 'sql'"):
        parse(steps_yaml("  - {name: a, type: noop, params: {x: {$param: sql}}}"))


def test_literal_step_params_are_checked_at_load() -> None:
    with pytest.raises(DefinitionError, match=r"step q \(dq.check\): expectations\.0"):
        parse(steps_yaml("  - {name: q, type: dq.check, params: {expectations: [{kind: bogus}]}}"))


PARAMETERIZED = """
id: p
parameters:
  table: {type: string}
  minimum: {type: integer, required: false, default: 1}
steps:
  - name: q
    type: dq.check
    params:
      expectations:
        - {kind: row_count, table: {$param: table}, min: {$param: minimum}}
"""


def test_resolve_fills_parameters_and_checks_them() -> None:
    pipeline = parse(PARAMETERIZED)
    (step,) = resolve(pipeline, {"table": "focus_cost"}, REGISTRY)  # type: ignore[arg-type]
    assert step.params == {"expectations": [{"kind": "row_count", "table": "focus_cost", "min": 1}]}
    # The scheduler's own parameter is allowed on every pipeline and not given to steps.
    (step,) = resolve(pipeline, {"table": "t", "run_date_lag_days": 0}, REGISTRY)  # type: ignore[arg-type]
    assert "run_date_lag_days" not in str(step.params)
    with pytest.raises(DefinitionError, match="missing parameter 'table'"):
        resolve(pipeline, {}, REGISTRY)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="unknown parameter 'tabel'"):
        resolve(pipeline, {"table": "x", "tabel": "y"}, REGISTRY)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="parameter 'minimum' must be of type integer"):
        resolve(pipeline, {"table": "x", "minimum": True}, REGISTRY)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="table"):
        resolve(pipeline, {"table": "no such; table"}, REGISTRY)  # type: ignore[arg-type]


def test_validate_parameters_for_the_config_api() -> None:
    validate_parameters("dryrun", {})
    validate_parameters("dryrun", {"run_date_lag_days": 2})
    validate_parameters("gcp_cost_billing", None)
    with pytest.raises(DefinitionError, match="no pipeline 'nope'"):
        validate_parameters("nope", {})
    with pytest.raises(DefinitionError, match="missing parameter 'sql'") as missing:
        validate_parameters("bq_etl", {"target_table": "out"})
    assert missing.value.field == "parameters.sql"
    ok = {"sql": "SELECT x FROM t WHERE d = ${run_date}", "target_table": "out"}
    validate_parameters("bq_etl", ok, dataset="acme", project="convergence-test")
    bad = {**ok, "sql": "SELECT * FROM other.t"}
    validate_parameters("bq_etl", bad)  # without a dataset the SQL is not checked
    with pytest.raises(
        DefinitionError, match=r"step transform: sql: table other\.t is outside"
    ) as e:
        validate_parameters("bq_etl", bad, dataset="acme", project="convergence-test")
    assert e.value.field == "parameters.sql"

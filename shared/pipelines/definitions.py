"""Pipeline definitions: YAML templates validated by pydantic, and the parameters a config fills.

A definition is a DAG of steps. Each step names a registered step type, the steps
it depends on, a timeout, a retry budget for transient errors and what its
failure means for the run (`on_failure`). Step parameters are literal YAML values
or `{$param: NAME}`, which takes the whole value from the config's `parameters`
(declared, with a type, a default and whether it is required, under
`parameters:`). Everything is checked when the YAML is loaded: unknown step type,
unknown dependency, a cycle, a reference to an undeclared parameter, step
parameters that don't fit the step type. A config's parameters are checked with
`validate_parameters` (the config API) and again at run time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from shared.pipelines.registry import StepType, StepTypeUnavailable, step_type

if TYPE_CHECKING:
    from shared.pipelines.sql_sandbox import TenantCatalog

TEMPLATES_DIR = Path(__file__).parent / "templates"
PARAM_REF = "$param"
# Parameters every config may carry, read by the platform (the scheduler), never
# by steps: `run_date_lag_days` (shared/scheduling/trigger.py).
PLATFORM_PARAMETERS = frozenset({"run_date_lag_days"})
# The run date may lag its schedule day by up to a month (billing exports settle late).
MAX_RUN_DATE_LAG_DAYS = 31
_NAME = r"^[a-z][a-z0-9_]{0,62}$"

ParameterType = Literal["string", "integer", "number", "boolean", "list", "object"]
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "object": (dict,),
}


class DefinitionError(ValueError):
    """A definition or a config's parameters that can't run; the message names the culprit.

    `field` is where in a config request the problem is (e.g. `parameters.sql`),
    for the API's 422; None for problems of the definition itself.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ParameterSpec(BaseModel):
    """A parameter a config supplies to a template."""

    model_config = ConfigDict(extra="forbid")

    type: ParameterType = "string"
    required: bool = True
    default: Any = None
    description: str = ""


class StepDef(BaseModel):
    """One node of the DAG."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    type: str
    depends_on: list[str] = Field(default_factory=list)
    # Per attempt: a step that runs longer is FAILED with code `timeout`.
    timeout_seconds: float = Field(default=600.0, gt=0, le=6 * 3600)
    # Extra attempts after a transient error; permanent errors are never retried.
    retries: int = Field(default=0, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=2.0, ge=0, le=300)
    on_failure: Literal["stop", "continue"] = "stop"
    params: dict[str, Any] = Field(default_factory=dict)


class PipelineDef(BaseModel):
    """A whole template: its parameters and its steps."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_NAME)
    description: str = ""
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    steps: list[StepDef] = Field(min_length=1)
    # Independent steps run concurrently, at most this many at once.
    max_parallel: int = Field(default=2, ge=1, le=8)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> PipelineDef:
        context = info.context or {}
        registry = context.get("registry")
        check_imports = bool(context.get("check_imports", True))
        self._check_steps(registry, check_imports)
        for name, spec in self.parameters.items():
            if not spec.required and spec.default is not None:
                _check_type(name, spec, spec.default)
        # Steps whose params are all literal are checked now; the rest once a
        # config's parameters fill them in.
        for step in self.steps:
            if not _param_refs(step.params):
                _validate_step_params(step, step_type(step.type, registry), step.params)
        return self

    def _check_steps(self, registry: dict[str, StepType] | None, check_imports: bool) -> None:
        names = [s.name for s in self.steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate step names: {', '.join(duplicates)}")
        for step in self.steps:
            try:
                kind = step_type(step.type, registry)
                if check_imports:
                    kind.function()
            except StepTypeUnavailable as exc:
                raise ValueError(f"step {step.name}: {exc}") from None
            for dep in step.depends_on:
                if dep == step.name:
                    raise ValueError(f"step {step.name} depends on itself")
                if dep not in names:
                    raise ValueError(f"step {step.name} depends on unknown step {dep!r}")
            for ref in _param_refs(step.params):
                if ref not in self.parameters:
                    raise ValueError(f"step {step.name} uses undeclared parameter {ref!r}")
        cycle = find_cycle({s.name: list(s.depends_on) for s in self.steps})
        if cycle:
            raise ValueError(f"steps form a cycle: {' -> '.join(cycle)}")

    def step(self, name: str) -> StepDef:
        return next(s for s in self.steps if s.name == name)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle in `step -> its dependencies` as a path that ends where it starts, or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for dep in graph.get(node, []):
            if color.get(dep, black) == grey:
                return [*stack[stack.index(dep) :], dep]
            if color.get(dep) == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in graph:
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def _param_refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        if set(value) == {PARAM_REF}:
            return {str(value[PARAM_REF])}
        return set().union(*(_param_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_param_refs(v) for v in value)) if value else set()
    return set()


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {PARAM_REF}:
            return values[str(value[PARAM_REF])]
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def _check_type(name: str, spec: ParameterSpec, value: Any) -> None:
    allowed = _PY_TYPES[spec.type]
    # bool is an int in Python; an integer parameter must not accept `true`.
    if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
        raise DefinitionError(
            f"parameter {name!r} must be of type {spec.type}", field=f"parameters.{name}"
        )


def _validate_step_params(step: StepDef, kind: StepType, params: dict[str, Any]) -> None:
    model = kind.model()
    if model is None:
        return
    try:
        model.model_validate(params)
    except ValidationError as exc:
        raise DefinitionError(
            f"step {step.name} ({step.type}): {_describe(exc)}", field="parameters"
        ) from None


@dataclass(frozen=True)
class ResolvedStep:
    """A step with its parameters filled from a config, ready to run."""

    spec: StepDef
    kind: StepType
    params: dict[str, Any]


def resolve(
    pipeline: PipelineDef,
    parameters: dict[str, Any] | None,
    registry: dict[str, StepType] | None = None,
) -> list[ResolvedStep]:
    """Fills every step's parameters from a config's; raises DefinitionError naming the problem."""
    given = {k: v for k, v in (parameters or {}).items() if k not in PLATFORM_PARAMETERS}
    unknown = sorted(set(given) - set(pipeline.parameters))
    if unknown:
        raise DefinitionError(
            f"unknown parameter {unknown[0]!r} for pipeline {pipeline.id}"
            + (
                f"; it takes: {', '.join(sorted(pipeline.parameters))}"
                if pipeline.parameters
                else ""
            ),
            field=f"parameters.{unknown[0]}",
        )
    values: dict[str, Any] = {}
    for name, spec in pipeline.parameters.items():
        if name in given and given[name] is not None:
            _check_type(name, spec, given[name])
            values[name] = given[name]
        elif spec.required:
            raise DefinitionError(
                f"missing parameter {name!r} for pipeline {pipeline.id}",
                field=f"parameters.{name}",
            )
        else:
            values[name] = spec.default
    steps = []
    for step in pipeline.steps:
        kind = step_type(step.type, registry)
        params = _fill(step.params, values)
        _validate_step_params(step, kind, params)
        steps.append(ResolvedStep(step, kind, params))
    return steps


def parse_definition(
    text: str,
    *,
    source: str = "<definition>",
    registry: dict[str, StepType] | None = None,
    check_imports: bool = True,
) -> PipelineDef:
    """A definition from YAML text; any problem is one DefinitionError naming `source`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise DefinitionError(f"{source}: a definition is a mapping with 'id' and 'steps'")
    try:
        return PipelineDef.model_validate(
            data, context={"registry": registry, "check_imports": check_imports}
        )
    except ValidationError as exc:
        raise DefinitionError(f"{source}: {_describe(exc)}") from None
    except DefinitionError as exc:
        raise DefinitionError(f"{source}: {exc}") from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def template_ids() -> tuple[str, ...]:
    """The built-in templates shipped in the repo, by id (the file's stem)."""
    return tuple(sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml")))


@functools.cache
def load_template(pipeline_id: str, *, check_imports: bool = True) -> PipelineDef:
    """A built-in template by id (cached: templates don't change while a process runs)."""
    if pipeline_id not in template_ids():
        raise DefinitionError(
            f"no pipeline {pipeline_id!r}; built-ins: {', '.join(template_ids())}",
            field="pipeline",
        )
    path = TEMPLATES_DIR / f"{pipeline_id}.yaml"
    pipeline = parse_definition(
        path.read_text(encoding="utf-8"), source=path.name, check_imports=check_imports
    )
    if pipeline.id != pipeline_id:
        raise DefinitionError(f"{path.name}: id {pipeline.id!r} differs from the file name")
    return pipeline


def check_platform_parameters(parameters: dict[str, Any] | None) -> None:
    """The platform's own parameters, which `resolve` leaves to the scheduler: they get
    the same type check as a template's, so nothing else ever reaches the stored config."""
    params = parameters or {}
    if "run_date_lag_days" in params:
        lag = params["run_date_lag_days"]
        # bool is an int subclass; `true` is not a number of days.
        if type(lag) is not int or not 0 <= lag <= MAX_RUN_DATE_LAG_DAYS:
            raise DefinitionError(
                f"run_date_lag_days must be an integer from 0 to {MAX_RUN_DATE_LAG_DAYS}",
                field="parameters.run_date_lag_days",
            )


def validate_parameters(
    pipeline_id: str,
    parameters: dict[str, Any] | None,
    *,
    dataset: str | None = None,
    project: str | None = None,
    catalog: TenantCatalog | None = None,
) -> None:
    """For the config API: raises DefinitionError if a config's parameters can't run.

    With `dataset` (the tenant's), tenant SQL in `bq_etl.query` steps is also
    checked by the sandbox, so a bad query is refused at upload, not at 3 a.m.
    With `catalog` (the tenant's tables and GoogleSQL's analyzer) it must analyze too.
    Step implementations are not imported here: the API needs none of them.
    """
    check_platform_parameters(parameters)
    pipeline = load_template(pipeline_id, check_imports=False)
    steps = resolve(pipeline, parameters)
    if dataset is None:
        return
    from shared.pipelines.sql_sandbox import TenantSqlError, validate_tenant_sql

    for step in steps:
        if step.kind.name == "bq_etl.query":
            try:
                validate_tenant_sql(
                    str(step.params.get("sql", "")), dataset, project=project, catalog=catalog
                )
            except TenantSqlError as exc:
                raise DefinitionError(
                    f"step {step.spec.name}: sql: {exc}", field="parameters.sql"
                ) from None

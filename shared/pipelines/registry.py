"""Step types: the name a definition uses -> the function that runs it, imported lazily.

Targets are "module:attribute" strings resolved with importlib on first use, so
this module imports no step code: a step type whose module is not there (yet)
fails clearly when a definition that uses it is loaded, and nothing else does.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.pipelines.context import StepFn


class StepTypeUnavailable(LookupError):
    """A step type that is unknown, or whose implementation can't be imported."""


@dataclass(frozen=True)
class StepType:
    """One step type: its implementation, its parameter model, and what it writes."""

    name: str
    target: str  # "module:function", the StepFn
    params_model: str | None = None  # "module:Class", a pydantic model of the step's params
    # Rows it reports count towards the run's `rows_written` (the final outputs,
    # not staging copies, so a run's figure is not double counted).
    writes: bool = False

    def function(self) -> StepFn:
        fn = _resolve(self.name, self.target)
        if not callable(fn):
            raise StepTypeUnavailable(f"step type {self.name}: {self.target} is not callable")
        return fn  # type: ignore[no-any-return]

    def model(self) -> type[BaseModel] | None:
        if self.params_model is None:
            return None
        model = _resolve(self.name, self.params_model)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise StepTypeUnavailable(f"step type {self.name}: {self.params_model} is no model")
        return model


def _resolve(step_type: str, target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise StepTypeUnavailable(
            f"step type {step_type}: module {module_name} is not available ({exc.name} missing)"
        ) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise StepTypeUnavailable(
            f"step type {step_type}: {module_name} has no {attribute}"
        ) from None


_STEPS = "shared.pipelines.steps"
_GCP = "shared.sources.gcp"
STEP_TYPES: dict[str, StepType] = {
    t.name: t
    for t in (
        StepType("platform.check_dataset", f"{_STEPS}.platform:check_dataset"),
        StepType("platform.check_credential", f"{_STEPS}.platform:check_credential"),
        StepType(
            "bq_etl.query",
            f"{_STEPS}.bq_etl:run_query",
            params_model=f"{_STEPS}.bq_etl:QueryParams",
            writes=True,
        ),
        StepType("dq.check", f"{_STEPS}.dq:run_checks", params_model=f"{_STEPS}.dq:DqParams"),
        # The GCP billing export -> FOCUS steps (shared/sources/gcp: reader, mapping .sql).
        StepType("gcp_billing.extract", f"{_GCP}.reader:extract"),
        StepType("focus.convert_gcp", f"{_GCP}.mapping:convert_gcp", writes=True),
        # The exact FOCUS proofs of a run's window (reconciliation, nulls, enums).
        StepType("focus.check", f"{_GCP}.mapping:check_gcp"),
        # Native FOCUS exports (Google's FOCUS export table) -> focus_cost, reconciled.
        StepType("focus_native.convert", "shared.sources.focus_native.native:convert", writes=True),
        StepType("focus_native.check", "shared.sources.focus_native.native:check"),
        # OpenAI / Anthropic admin APIs -> raw -> FOCUS -> per-day reconciliation.
        StepType("genai.extract", f"{_STEPS}.genai:extract"),
        StepType("genai.convert", f"{_STEPS}.genai:convert", writes=True),
        StepType("genai.check", f"{_STEPS}.genai:check"),
        # AWS Data Exports (CUR 2.0, FOCUS 1.0/1.2) by billing period (shared/sources/aws).
        StepType("aws.land", "shared.sources.aws.steps:land"),
        StepType("aws.convert", "shared.sources.aws.steps:convert", writes=True),
        StepType("aws.check", "shared.sources.aws.steps:check"),
        # Azure Cost Management FocusCost exports -> FOCUS (shared/sources/azure).
        StepType("azure.land", "shared.sources.azure.reader:land"),
        StepType("azure.convert", "shared.sources.azure.mapping:convert", writes=True),
        StepType("azure.check", "shared.sources.azure.mapping:check"),
    )
}


def step_type(name: str, registry: dict[str, StepType] | None = None) -> StepType:
    types = STEP_TYPES if registry is None else registry
    try:
        return types[name]
    except KeyError:
        known = ", ".join(sorted(types))
        raise StepTypeUnavailable(f"unknown step type {name!r}; known: {known}") from None

"""Runs a pipeline's steps for one run and reports the outcome; the runner job calls `execute`."""

from __future__ import annotations

import threading
from collections.abc import Callable

from google.api_core import exceptions as gexc

from shared.deps import Deps
from shared.pipelines.context import PipelineOutcome, RunContext, StepError, StepLog
from shared.vault.credentials import CredentialUnavailable, decrypt_credential
from shared.vault.crypto import DecryptionError

# The templates this executor knows; the scheduling API refuses any other id.
BUILT_IN_PIPELINES = ("dryrun",)


def _dryrun_dataset(deps: Deps, run: RunContext) -> str:
    try:
        deps.warehouse.client.get_dataset(f"{deps.warehouse.project}.{run.dataset_id}", timeout=30)
    except gexc.NotFound:
        raise StepError("dataset_missing", f"dataset {run.dataset_id} does not exist") from None
    return f"dataset {run.dataset_id} is reachable"


def _dryrun_credential(deps: Deps, run: RunContext) -> str:
    if run.credential_id is None:
        return "no credential configured"
    try:
        decrypt_credential(deps, run.tenant_id, run.credential_id)
    except CredentialUnavailable:
        raise StepError("credential_missing", "the credential is not active") from None
    except DecryptionError:
        raise StepError("credential_unreadable", "the credential does not decrypt") from None
    # The secret is dropped here: the dry run proves it decrypts, nothing more.
    return "credential decrypts"


_DRYRUN_STEPS: tuple[tuple[str, Callable[[Deps, RunContext], str]], ...] = (
    ("check_dataset", _dryrun_dataset),
    ("check_credential", _dryrun_credential),
)


def execute(deps: Deps, run: RunContext, stop: threading.Event) -> PipelineOutcome:
    """Runs `run.pipeline` to a terminal outcome; never raises for a step's own failure."""
    if run.pipeline not in BUILT_IN_PIPELINES:
        return PipelineOutcome(
            "FAILED", error_code="unknown_pipeline", error_message=f"no pipeline {run.pipeline!r}"
        )
    outcome = PipelineOutcome("SUCCEEDED")
    for name, step in _DRYRUN_STEPS:
        if stop.is_set():
            outcome.state, outcome.error_code = "CANCELLED", "cancelled"
            outcome.error_message = "the run was cancelled"
            break
        started = deps.clock()
        try:
            message = step(deps, run)
        except StepError as exc:
            outcome.steps.append(
                StepLog(name, "FAILED", started, deps.clock(), str(exc), error_code=exc.code)
            )
            outcome.state, outcome.error_code, outcome.error_message = "FAILED", exc.code, str(exc)
            break
        outcome.steps.append(StepLog(name, "SUCCEEDED", started, deps.clock(), message))
    return outcome

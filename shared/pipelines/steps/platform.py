"""The dry-run steps: the tenant dataset is reachable and the credential decrypts; no writes."""

from __future__ import annotations

from google.api_core import exceptions as gexc

from shared.pipelines.context import StepContext, StepError, StepResult
from shared.vault.credentials import CredentialUnavailable, decrypt_credential
from shared.vault.crypto import DecryptionError


def check_dataset(ctx: StepContext) -> StepResult:
    """`platform.check_dataset`: the run's dataset exists and the platform can read it."""
    warehouse = ctx.deps.warehouse
    try:
        warehouse.client.get_dataset(f"{warehouse.project}.{ctx.run.dataset_id}", timeout=30)
    except gexc.NotFound:
        raise StepError("dataset_missing", f"dataset {ctx.run.dataset_id} does not exist") from None
    return StepResult(message=f"dataset {ctx.run.dataset_id} is reachable")


def check_credential(ctx: StepContext) -> StepResult:
    """`platform.check_credential`: the run's credential (if any) is active and decrypts."""
    run = ctx.run
    if run.credential_id is None:
        return StepResult(message="no credential configured")
    try:
        decrypt_credential(ctx.deps, run.tenant_id, run.credential_id)
    except CredentialUnavailable:
        raise StepError("credential_missing", "the credential is not active") from None
    except DecryptionError:
        raise StepError("credential_unreadable", "the credential does not decrypt") from None
    # The secret is dropped here: the dry run proves it decrypts, nothing more.
    return StepResult(message="credential decrypts")

"""What every source step reads first: its provider config row and its credential type."""

from __future__ import annotations

from typing import Any

from shared.pipelines.context import StepContext, StepError
from shared.pipelines.steps import QueryOutcome, step_query

# How messages name a provider whose code is not its name.
_LABELS = {"AZURE": "Azure"}


def run_query(ctx: StepContext, sql: str, params: dict[str, Any]) -> QueryOutcome:
    """One job of this step: labels (tenant, run, step), the plan's byte cap, the stop
    signal (`step_query`); binds only the parameters the SQL uses."""
    return step_query(ctx, sql, {k: v for k, v in params.items() if f"@{k}" in sql})


def active_config(ctx: StepContext, provider: str, columns: str) -> dict[str, Any]:
    """The run's ACTIVE `provider` config of its tenant (`columns` of it); StepError if none."""
    config_id = ctx.run.provider_config_id
    if not config_id:
        raise StepError("provider_config_missing", "the run names no provider config")
    rows = run_query(
        ctx,
        f"SELECT {columns} FROM {ctx.deps.warehouse.central('tenant_provider_configs')} "
        "WHERE tenant_id = @t AND config_id = @c AND status = 'ACTIVE' AND provider = @p",
        {"t": ctx.run.tenant_id, "c": config_id, "p": provider},
    ).rows
    if not rows or ("settings_json" in rows[0] and not rows[0]["settings_json"]):
        label = _LABELS.get(provider, provider)
        raise StepError("provider_config_missing", f"no active {label} provider config {config_id}")
    return rows[0]


def active_credential_type(ctx: StepContext, provider: str, credential_id: str) -> str:
    """The credential_type of the tenant's ACTIVE `provider` credential; StepError if none."""
    rows = run_query(
        ctx,
        f"SELECT credential_type FROM {ctx.deps.warehouse.central('tenant_cloud_credentials')} "
        "WHERE tenant_id = @t AND credential_id = @c AND status = 'ACTIVE' AND provider = @p",
        {"t": ctx.run.tenant_id, "c": credential_id, "p": provider},
    ).rows
    if not rows:
        label = _LABELS.get(provider, provider)
        raise StepError("credential_missing", f"no active {label} credential {credential_id}")
    return str(rows[0]["credential_type"])

"""Helpers for the Azure FocusCost tests: a tenant with its export in Azurite; step contexts."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from local.azure_export import ExportRun, FocusCostGenerator, write_export
from local.cloud_access import CloudStandIns
from shared.pipelines.context import RunContext, StepContext
from tests.integration.conftest import Platform

ACCOUNT = "cvgexports"
DIRECTORY = "exports/focus"
EXPORT = "acme-focus"


@dataclass
class AzureTenant:
    platform: Platform
    clouds: CloudStandIns
    tenant_id: str
    api_key: str
    config_id: str
    credential_id: str
    container_name: str

    @property
    def container(self) -> Any:
        return self.clouds.azurite.admin_container(ACCOUNT, self.container_name)

    def export(
        self,
        generator: FocusCostGenerator,
        rows: list[dict[str, Any]],
        start: dt.date,
        end: dt.date,
        **options: Any,
    ) -> ExportRun:
        return write_export(
            self.container,
            DIRECTORY,
            EXPORT,
            generator,
            rows,
            range_start=start,
            range_end=end,
            **options,
        )

    def ctx(
        self, step: str, run_date: dt.date, run_id: str | None = None, **params: Any
    ) -> StepContext:
        run = RunContext(
            run_id=run_id or "run_" + uuid.uuid4().hex[:12],
            tenant_id=self.tenant_id,
            config_id=self.config_id,
            pipeline="azure_cost_export",
            run_date=run_date,
            dataset_id=self.tenant_id,
            provider_config_id=self.config_id,
            credential_id=self.credential_id,
            max_bytes_billed=10 * 1024**3,
        )
        return StepContext(self.platform.deps, run, step, dict(params), threading.Event())

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        wh = self.platform.deps.warehouse
        for token, table in (
            ("{raw}", "azure_focus_raw"),
            ("{focus}", "focus_cost"),
            ("{totals}", "azure_export_totals"),
        ):
            sql = sql.replace(token, wh.table(self.tenant_id, table))
        return wh.query(sql, params)


def make_azure_tenant(
    platform: Platform, clouds: CloudStandIns, dataset_version: str = "1.0r2"
) -> AzureTenant:
    """An onboarded tenant with a SAS credential and a provider config for a fresh container."""
    body = platform.onboarded()
    tenant_id, key = body["tenant_id"], body["api_key"]
    container = f"exports-{uuid.uuid4().hex[:10]}"
    client: Any = clouds.azurite.admin_container(ACCOUNT, container)
    client.create_container()
    sas = generate_container_sas(
        ACCOUNT,
        container,
        account_key=clouds.azurite.accounts[ACCOUNT],
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2),
    )
    response = platform.tenant_call(
        "credentials",
        "POST",
        "/",
        key,
        json={
            "provider": "AZURE",
            "credential_type": "SAS_TOKEN",
            "credential_name": "azure export reader",
            "credentials": {"sas_token": sas},
        },
    )
    assert response.status_code == 201, response.get_json()
    credential_id = response.get_json()["credential_id"]
    response = platform.tenant_call(
        "credentials",
        "POST",
        "/provider-configs",
        key,
        json={
            "provider": "AZURE",
            "currency": "EUR",
            "credential_id": credential_id,
            "azure": {
                "storage_account": ACCOUNT,
                "container": container,
                "directory": DIRECTORY,
                "export_name": EXPORT,
                "dataset_version": dataset_version,
            },
        },
    )
    assert response.status_code == 201, response.get_json()
    return AzureTenant(
        platform, clouds, tenant_id, key, response.get_json()["config_id"], credential_id, container
    )

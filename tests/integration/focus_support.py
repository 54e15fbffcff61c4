"""Helpers for the FOCUS pipeline tests: a tenant with a seeded billing export and step contexts."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from google.cloud import bigquery

from local.billing_export import seed_export
from shared.pipelines.context import RunContext, StepContext
from tests.integration.conftest import Platform

SOURCE_PROJECT = "acme-billing-prod"


@dataclass
class FocusTenant:
    platform: Platform
    tenant_id: str
    api_key: str
    config_id: str
    credential_id: str
    source_table: str

    @property
    def client(self) -> bigquery.Client:
        return self.platform.deps.warehouse.client

    def seed(self, rows: list[dict[str, Any]]) -> int:
        return seed_export(self.client, self.source_table, rows)

    def ctx(
        self, step: str, run_date: dt.date, *, date_from: dt.date | None = None, **params: Any
    ) -> StepContext:
        run = RunContext(
            run_id="run_" + uuid.uuid4().hex[:12],
            tenant_id=self.tenant_id,
            config_id=self.config_id,
            pipeline="gcp_cost_billing",
            run_date=run_date,
            dataset_id=self.tenant_id,
            provider_config_id=self.config_id,
            credential_id=self.credential_id,
            max_bytes_billed=10 * 1024**3,
            date_from=date_from,
        )
        return StepContext(self.platform.deps, run, step, dict(params), threading.Event())

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        wh = self.platform.deps.warehouse
        sql = sql.replace("{raw}", wh.table(self.tenant_id, "gcp_billing_raw"))
        sql = sql.replace("{focus}", wh.table(self.tenant_id, "focus_cost"))
        return wh.query(sql, params)


def make_tenant(platform: Platform, credential_body: dict[str, Any] | None = None) -> FocusTenant:
    """An onboarded tenant, a GCP credential and a provider config naming a fresh source table."""
    body = platform.onboarded()
    tenant_id, key = body["tenant_id"], body["api_key"]
    credential = credential_body or {
        "provider": "GCP",
        "credential_type": "WORKLOAD_IDENTITY",
        "credential_name": "billing reader",
        "metadata": {},
    }
    response = platform.tenant_call("credentials", "POST", "/", key, json=credential)
    assert response.status_code == 201, response.get_json()
    credential_id = response.get_json()["credential_id"]
    dataset = "billing_" + uuid.uuid4().hex[:10]
    table = "gcp_billing_export_v1_0123AB_4567CD_89EF01"
    response = platform.tenant_call(
        "credentials",
        "POST",
        "/provider-configs",
        key,
        json={
            "provider": "GCP",
            "source_project_id": SOURCE_PROJECT,
            "billing_export_dataset": dataset,
            "billing_export_table": table,
            "currency": "USD",
            "credential_id": credential_id,
        },
    )
    assert response.status_code == 201, response.get_json()
    return FocusTenant(
        platform,
        tenant_id,
        key,
        response.get_json()["config_id"],
        credential_id,
        f"{SOURCE_PROJECT}.{dataset}.{table}",
    )

"""AWS export test helpers: a tenant whose AWS config reads a moto bucket; step contexts."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from local.aws_export import bucket_read_policy, reader_user_keys
from local.cloud_access import CloudStandIns
from shared.pipelines.context import RunContext, StepContext
from tests.integration.conftest import Platform

PREFIX = "exports"


@dataclass
class AwsTenant:
    platform: Platform
    clouds: CloudStandIns
    tenant_id: str
    config_id: str
    credential_id: str
    bucket: str
    export_name: str
    export_type: str

    @property
    def s3(self) -> Any:
        return self.clouds.moto.admin_client("s3")

    def ctx(self, step: str, run_date: dt.date, **params: Any) -> StepContext:
        run = RunContext(
            run_id="run_" + uuid.uuid4().hex[:12],
            tenant_id=self.tenant_id,
            config_id=self.config_id,
            pipeline="aws_cost_export",
            run_date=run_date,
            dataset_id=self.tenant_id,
            provider_config_id=self.config_id,
            credential_id=self.credential_id,
            max_bytes_billed=10 * 1024**3,
        )
        return StepContext(self.platform.deps, run, step, dict(params), threading.Event())

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        wh = self.platform.deps.warehouse
        raw = "aws_cur2_raw" if self.export_type == "CUR2" else "aws_focus_raw"
        sql = sql.replace("{raw}", wh.table(self.tenant_id, raw))
        sql = sql.replace("{focus}", wh.table(self.tenant_id, "focus_cost"))
        return wh.query(sql, params)


def make_aws_tenant(platform: Platform, clouds: CloudStandIns, export_type: str) -> AwsTenant:
    """An onboarded tenant with an access-key credential that may read one fresh bucket."""
    body = platform.onboarded()
    tenant_id, key = body["tenant_id"], body["api_key"]
    bucket = f"acme-cur-{uuid.uuid4().hex[:12]}"
    s3 = clouds.moto.admin_client("s3")
    s3.create_bucket(Bucket=bucket)
    keys = reader_user_keys(clouds.moto.admin_client("iam"), bucket_read_policy(bucket))
    response = platform.tenant_call(
        "credentials",
        "POST",
        "/",
        key,
        json={
            "provider": "AWS",
            "credential_type": "ACCESS_KEY",
            "credential_name": "cur reader",
            "credentials": keys,
        },
    )
    assert response.status_code == 201, response.get_json()
    credential_id = response.get_json()["credential_id"]
    export_name = "cost-" + export_type.lower().replace("_", "-")
    aws = {
        "bucket": bucket,
        "prefix": PREFIX,
        "export_name": export_name,
        "export_type": export_type,
        "region": "us-east-1",
    }
    response = platform.tenant_call(
        "credentials",
        "POST",
        "/provider-configs",
        key,
        json={"provider": "AWS", "currency": "USD", "credential_id": credential_id, "aws": aws},
    )
    assert response.status_code == 201, response.get_json()
    return AwsTenant(
        platform,
        clouds,
        tenant_id,
        response.get_json()["config_id"],
        credential_id,
        bucket,
        export_name,
        export_type,
    )

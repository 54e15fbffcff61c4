"""e2e: an Azure FocusCost export in Azurite becomes reconciled FOCUS rows, over HTTP.

Like a customer: a SAS-token credential, an AZURE provider config, an azure_cost_export
pipeline, one run over the export's dates; then the tenant's `focus_cost` holds the
export's rows and its exact BilledCost per billing period. A broken export (a blob the
manifest names is gone) fails the run with the blob named, and no response is a 5xx.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from local.azure_export import (
    DEMO_DIRECTORY,
    DEMO_EXPORT,
    LOCAL_ACCOUNT,
    LocalExport,
    seed_local_export,
)
from local.azurite_entra import register_app
from tests.e2e.stack import RunningStack, call, onboard, post, start_stack

FIRST = dt.date(2026, 11, 1)
DAYS = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("azure") / "data",
        env={"SCHEDULER_TICK_SECONDS": "3600"},
        timeout=240,  # a loaded 2-core machine took over 90 s
    )
    yield running
    assert running.stop() == 0


def azure_pipeline(
    stack: RunningStack,
    key: str,
    export: LocalExport,
    kind: str = "SAS_TOKEN",
    secret: dict[str, str] | None = None,
) -> str:
    """Credential (a SAS by default) + AZURE provider config + azure_cost_export pipeline;
    its config id."""
    status, credential = post(
        stack,
        "/credentials/",
        {
            "provider": "AZURE",
            "credential_type": kind,
            "credential_name": "azure export reader",
            "credentials": secret or {"sas_token": export.sas_token},
        },
        key,
    )
    assert status == 201, credential
    status, provider = post(
        stack,
        "/credentials/provider-configs",
        {
            "provider": "AZURE",
            "currency": "EUR",
            "credential_id": credential["credential_id"],
            "azure": {
                "storage_account": LOCAL_ACCOUNT,
                "container": export.container,
                "directory": DEMO_DIRECTORY,
                "export_name": DEMO_EXPORT,
                "dataset_version": "1.0r2",
            },
        },
        key,
    )
    assert status == 201, provider
    status, config = post(
        stack,
        "/pipelines/configs",
        {
            "name": "azure costs",
            "pipeline": "azure_cost_export",
            "provider_config_id": provider["config_id"],
            "schedule_cron": "0 6 * * *",
        },
        key,
    )
    assert status == 201, config
    return str(config["config_id"])


def run_once(stack: RunningStack, key: str, config_id: str) -> dict[str, Any]:
    last = FIRST + dt.timedelta(days=DAYS - 1)
    status, started = post(
        stack,
        "/pipelines/runs",
        {"config_id": config_id, "date_from": str(FIRST), "date_to": str(last)},
        key,
    )
    assert status == 202, started
    [run_id] = started["run_ids"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status, _, run = call(
            "GET", f"{stack.url}/pipelines/runs/{run_id}", headers={"X-API-Key": key}
        )
        assert status < 500, run
        if status == 200 and run["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return dict(run)
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish:\n{stack.output()[-3000:]}")


def warehouse(stack: RunningStack) -> tuple[bigquery.Client, str]:
    endpoints = stack.endpoints()
    client = bigquery.Client(
        project=endpoints["project"],
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoints["emulator_url"]),
    )
    return client, str(endpoints["project"])


def test_an_azure_export_run_over_http_lands_the_exports_exact_totals(
    stack: RunningStack,
) -> None:
    tenant = onboard(stack, "e2e_az")
    export = seed_local_export(stack.data_dir, f"e2e-{uuid.uuid4().hex[:8]}", FIRST, DAYS, 40)
    config_id = azure_pipeline(stack, tenant["api_key"], export)

    run = run_once(stack, tenant["api_key"], config_id)

    assert run["state"] == "SUCCEEDED", (run, stack.output()[-3000:])
    assert [s["step_name"] for s in run["steps"]] == ["land", "convert", "quality"]
    client, project = warehouse(stack)
    [row] = client.query(
        "SELECT COUNT(*) AS n, SUM(BilledCost) AS billed, "
        "COUNT(DISTINCT x_source_file) AS files, "
        "COUNTIF(IFNULL(JSON_VALUE(x_provider_columns, '$.x_ResourceGroupName'), '-') = "
        "IFNULL(x_ResourceGroupName, '-')) AS kept, COUNT(x_ResourceGroupName) AS grouped "
        f"FROM `{project}.{tenant['dataset_id']}.focus_cost` WHERE ProviderName = 'Microsoft'"
    ).result()
    assert row["n"] == export.run.rows
    assert row["billed"] == export.run.billed_cost and isinstance(row["billed"], Decimal)
    assert row["files"] == len(export.run.blobs)
    # Microsoft's columns travel with each row: as columns, and all of them in the JSON.
    assert row["kept"] == row["n"] and row["grouped"] > 0


def test_a_missing_blob_fails_the_run_naming_it_and_nothing_answers_5xx(
    stack: RunningStack,
) -> None:
    tenant = onboard(stack, "e2e_az")
    export = seed_local_export(stack.data_dir, f"e2e-{uuid.uuid4().hex[:8]}", FIRST, DAYS, 40)
    gone = export.run.blobs[0]
    _container_client(stack, export.container).delete_blob(gone)
    config_id = azure_pipeline(stack, tenant["api_key"], export)

    run = run_once(stack, tenant["api_key"], config_id)

    assert run["state"] == "FAILED", run
    land = next(s for s in run["steps"] if s["step_name"] == "land")
    assert land["status"] == "FAILED" and land["error_code"] == "source_blob_missing", land
    assert gone in (land.get("error_message") or land.get("message") or ""), land
    client, project = warehouse(stack)
    [row] = client.query(
        f"SELECT COUNT(*) AS n FROM `{project}.{tenant['dataset_id']}.focus_cost`"
    ).result()
    assert row["n"] == 0


def _container_client(stack: RunningStack, container: str) -> Any:
    import json

    from azure.storage.blob import ContainerClient

    azurite = stack.data_dir / "clouds" / "azurite"
    key = json.loads((azurite / "azurite-accounts.json").read_text())[LOCAL_ACCOUNT]
    endpoint = stack.endpoints()["azurite_blob_endpoint"]
    return ContainerClient(
        endpoint.format(account=LOCAL_ACCOUNT),
        container,
        credential={"account_name": LOCAL_ACCOUNT, "account_key": key},
        connection_verify=str(azurite / "tls" / "cert.pem"),
    )


def test_scheduling_links_azure_cost_export_only_to_an_azure_provider_config(
    stack: RunningStack,
) -> None:
    tenant = onboard(stack, "e2e_az")
    key = tenant["api_key"]
    status, credential = post(
        stack,
        "/credentials/",
        {
            "provider": "GCP",
            "credential_type": "WORKLOAD_IDENTITY",
            "credential_name": "billing export reader",
            "metadata": {"granted_to": "platform service account"},
        },
        key,
    )
    assert status == 201, credential
    status, gcp = post(
        stack,
        "/credentials/provider-configs",
        {
            "provider": "GCP",
            "source_project_id": stack.endpoints()["project"],
            "billing_export_dataset": "billing_export",
            "billing_export_table": "gcp_billing_export_v1_ABCDEF_123456_789ABC",
            "currency": "USD",
            "credential_id": credential["credential_id"],
        },
        key,
    )
    assert status == 201, gcp

    status, refused = post(
        stack,
        "/pipelines/configs",
        {
            "name": "azure costs",
            "pipeline": "azure_cost_export",
            "provider_config_id": gcp["config_id"],
            "schedule_cron": "0 6 * * *",
        },
        key,
    )

    assert status == 422, refused
    assert "provider_config_id" in str(refused) and "AZURE" in str(refused), refused
    export = seed_local_export(stack.data_dir, f"e2e-{uuid.uuid4().hex[:8]}", FIRST, 1, 5)
    linked = azure_pipeline(stack, key, export)
    status, _, config = call(
        "GET", f"{stack.url}/pipelines/configs/{linked}", headers={"X-API-Key": key}
    )
    assert status == 200 and config["pipeline"] == "azure_cost_export", config


def test_a_federated_credential_trusting_the_platform_identity_runs_the_export(
    stack: RunningStack,
) -> None:
    # The customer's Entra app trusts the platform's Google identity for this tenant
    # (GET /credentials/platform-identity); no secret changes hands.
    tenant = onboard(stack, "e2e_az")
    key = tenant["api_key"]
    status, _, trust = call(
        "GET", f"{stack.url}/credentials/platform-identity", headers={"X-API-Key": key}
    )
    assert status == 200, trust
    app = {"tenant_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4())}
    register_app(
        stack.data_dir / "clouds" / "azurite" / "entra-apps.json",
        app["tenant_id"],
        app["client_id"],
        federated=[
            {
                "issuer": trust["azure"]["issuer"],
                "subject": trust["azure"]["subject"],
                "audiences": [trust["azure"]["audience"]],
            }
        ],
    )
    export = seed_local_export(stack.data_dir, f"e2e-{uuid.uuid4().hex[:8]}", FIRST, DAYS, 20)
    config_id = azure_pipeline(stack, key, export, "FEDERATED_CREDENTIAL", app)

    run = run_once(stack, key, config_id)

    assert run["state"] == "SUCCEEDED", (run, stack.output()[-3000:])
    client, project = warehouse(stack)
    [row] = client.query(
        "SELECT COUNT(*) AS n, SUM(BilledCost) AS billed "
        f"FROM `{project}.{tenant['dataset_id']}.focus_cost`"
    ).result()
    assert (row["n"], row["billed"]) == (export.run.rows, export.run.billed_cost)

"""e2e: AWS Data Exports (CUR 2.0, FOCUS 1.2) in moto become reconciled FOCUS rows, over HTTP.

Like a customer: an AWS credential (access keys, or an IAM role trusting the platform's
identity), an AWS provider config, an aws_cost_export pipeline, one ranged run; then
GET /costs/summary for the billing period returns exactly the source's own billed total
(recomputed here from the generated file's cost column, not taken from the pipeline)
and focus_cost holds one row per line item. A manifest naming a missing data file fails
the run with the file named, no response is a 5xx, and the period keeps its earlier rows
(the summary, focus_cost and the raw copy all unchanged).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from local.aws_export import (
    LOCAL_PREFIX,
    LocalAwsExport,
    bucket_read_policy,
    exact,
    moto_admin_client,
    reader_user_keys,
    seed_local_export,
    trusting_role,
    write_export,
)
from tests.e2e.stack import RunningStack, get, onboard, post, start_stack

PERIOD = "2026-01"
# Past the 15 days after December ends: the run owns January alone.
DATE_FROM, DATE_TO = dt.date(2026, 1, 18), dt.date(2026, 1, 20)
PERIOD_FROM, PERIOD_TO = dt.date(2026, 1, 1), dt.date(2026, 1, 31)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("aws") / "data",
        env={"SCHEDULER_TICK_SECONDS": "3600"},
        timeout=240,  # a loaded 2-core machine took over 90 s
    )
    yield running
    assert running.stop() == 0


def aws_pipeline(stack: RunningStack, key: str, export: LocalAwsExport, kind: str) -> str:
    """Credential (ACCESS_KEY or IAM_ROLE) + AWS provider config + aws_cost_export; its id."""
    iam = moto_admin_client(stack.data_dir, "iam")
    if kind == "IAM_ROLE":
        status, trust = get(stack, "/credentials/platform-identity", key)
        assert status == 200, trust
        secret = {
            "role_arn": trusting_role(iam, trust, export.bucket),
            "external_id": trust["external_id"],
        }
    else:
        secret = reader_user_keys(iam, bucket_read_policy(export.bucket))
    status, credential = post(
        stack,
        "/credentials/",
        {
            "provider": "AWS",
            "credential_type": kind,
            "credential_name": "aws export reader",
            "credentials": secret,
        },
        key,
    )
    assert status == 201, credential
    status, provider = post(
        stack,
        "/credentials/provider-configs",
        {
            "provider": "AWS",
            "currency": "USD",
            "credential_id": credential["credential_id"],
            "aws": export.settings(),
        },
        key,
    )
    assert status == 201, provider
    status, config = post(
        stack,
        "/pipelines/configs",
        {
            "name": "aws costs",
            "pipeline": "aws_cost_export",
            "provider_config_id": provider["config_id"],
            "schedule_cron": "0 6 * * *",
        },
        key,
    )
    assert status == 201, config
    return str(config["config_id"])


def run_once(stack: RunningStack, key: str, config_id: str) -> dict[str, Any]:
    status, started = post(
        stack,
        "/pipelines/runs",
        {"config_id": config_id, "date_from": str(DATE_FROM), "date_to": str(DATE_TO)},
        key,
    )
    assert status == 202, started
    [run_id] = started["run_ids"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status, run = get(stack, f"/pipelines/runs/{run_id}", key)
        if status == 200 and run["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return dict(run)
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish:\n{stack.output()[-3000:]}")


def period_summary(stack: RunningStack, key: str) -> dict[str | None, Decimal]:
    """GET /costs/summary over the billing period: BilledCost total per currency."""
    status, summary = get(stack, f"/costs/summary?from={PERIOD_FROM}&to={PERIOD_TO}", key)
    assert status == 200, summary
    return {t["currency"]: Decimal(t["billed_cost"]) for t in summary["totals"]}


def counted(stack: RunningStack, dataset_id: str, table: str) -> tuple[int, int]:
    """(rows, distinct source files) of a tenant table, read from the emulator."""
    endpoints = stack.endpoints()
    client = bigquery.Client(
        project=endpoints["project"],
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoints["emulator_url"]),
    )
    [row] = client.query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT x_source_file) AS files "
        f"FROM `{endpoints['project']}.{dataset_id}.{table}`"
    ).result()
    return int(row["n"]), int(row["files"])


def source_billed_total(table: pa.Table, export_type: str) -> Decimal:
    """The generated file's own total of the column the mapping reads as BilledCost.

    FOCUS 1.2: BilledCost. CUR 2.0 (shared/sources/aws/cur2_to_focus.sql):
    IFNULL(line_item_net_unblended_cost, line_item_unblended_cost), per line item.
    Each double counts as the NUMERIC of its shortest decimal text, as it lands.
    """
    if export_type == "CUR2":
        net = table.column("line_item_net_unblended_cost").to_pylist()
        gross = table.column("line_item_unblended_cost").to_pylist()
        values = [n if n is not None else g for n, g in zip(net, gross, strict=True)]
    else:
        values = table.column("BilledCost").to_pylist()
    return sum((exact(v) for v in values), Decimal(0))


@pytest.mark.parametrize(
    ("export_type", "fmt", "kind"),
    [("CUR2", "parquet", "ACCESS_KEY"), ("FOCUS_1_2_AWS", "csv", "IAM_ROLE")],
)
def test_an_aws_export_run_over_http_reconciles_exactly_in_the_cost_summary(
    stack: RunningStack, export_type: str, fmt: str, kind: str
) -> None:
    tenant = onboard(stack, "e2e_aws")
    key = tenant["api_key"]
    export = seed_local_export(stack.data_dir, export_type, PERIOD, rows=400, seed=3, fmt=fmt)
    config_id = aws_pipeline(stack, key, export, kind)

    run = run_once(stack, key, config_id)

    assert run["state"] == "SUCCEEDED", (run, stack.output()[-3000:])
    assert [s["step_name"] for s in run["steps"]] == ["land", "convert", "quality"]
    expected = source_billed_total(export.table, export_type)
    assert expected != 0 and export.table.num_rows == 400
    assert period_summary(stack, key) == {"USD": expected}
    assert counted(stack, tenant["dataset_id"], "focus_cost") == (
        export.table.num_rows,
        len(export.delivered.data_keys),
    )
    dq = {r["check_name"]: r for r in run["dq_results"]}
    assert dq[f"row_count[{PERIOD}]"]["status"] == "PASS", dq
    assert Decimal(str(dq[f"reconciliation_billed_cost[{PERIOD}]"]["actual"])) == expected


def test_a_manifest_naming_a_missing_file_fails_the_run_and_keeps_the_period(
    stack: RunningStack,
) -> None:
    tenant = onboard(stack, "e2e_aws")
    key = tenant["api_key"]
    export = seed_local_export(stack.data_dir, "CUR2", PERIOD, rows=120, seed=5)
    config_id = aws_pipeline(stack, key, export, "ACCESS_KEY")
    first = run_once(stack, key, config_id)
    assert first["state"] == "SUCCEEDED", (first, stack.output()[-3000:])
    before = period_summary(stack, key)
    rows_before = [counted(stack, tenant["dataset_id"], t) for t in ("focus_cost", "aws_cur2_raw")]
    assert rows_before[0] == rows_before[1] == (120, len(export.delivered.data_keys))
    assert before == {"USD": source_billed_total(export.table, "CUR2")}
    # AWS delivers the period again; one of the files its manifest names never arrives.
    s3 = moto_admin_client(stack.data_dir, "s3")
    again = write_export(
        s3, export.bucket, LOCAL_PREFIX, export.export_name, "CUR2", PERIOD, rows=90, seed=6
    )
    gone = again.data_keys[1]
    s3.delete_object(Bucket=export.bucket, Key=gone)

    run = run_once(stack, key, config_id)

    assert run["state"] == "FAILED", run
    land = next(s for s in run["steps"] if s["step_name"] == "land")
    assert land["status"] == "FAILED" and land["error_code"] == "source_file_missing", land
    assert gone in (land.get("error_message") or land.get("message") or ""), land
    assert period_summary(stack, key) == before
    # Neither the FOCUS rows nor the raw copy they come from lost the period.
    assert [counted(stack, tenant["dataset_id"], t) for t in ("focus_cost", "aws_cur2_raw")] == (
        rows_before
    )

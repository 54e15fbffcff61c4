"""e2e: a budget below the spend, a real pipeline run, the sender tick, one alert email.

Over the whole local stack: onboard, seed a GCP billing export and load it with
a `gcp_cost_billing` run (the runner evaluates budgets after a run that wrote
rows), tick `POST /trigger/notifications` as Cloud Scheduler does, and find the
budget emails in the local SMTP sink with their outbox rows SENT. A second run
of the same data records nothing new: one email per period and threshold.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import demo
from tests.e2e.stack import RunningStack, call, call_json, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # The test ticks the trigger itself; the stack's ticker stays out of the way.
    running = start_stack(
        tmp_path_factory.mktemp("budget_alert") / "data", env={"SCHEDULER_TICK_SECONDS": "3600"}
    )
    yield running
    assert running.stop() == 0


def created(stack: RunningStack, key: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    status, _, answer = call_json("POST", f"{stack.url}{path}", body, key)
    assert status in (201, 202), (path, status, answer)
    return answer


def run_and_wait(
    stack: RunningStack, target: demo.Stack, key: dict[str, str], config_id: str, day: dt.date
) -> dict[str, Any]:
    created(stack, key, "/pipelines/runs", {"config_id": config_id, "run_date": day.isoformat()})
    run = demo.wait_for_run(target, key, config_id, timeout=300)
    assert run["state"] == "SUCCEEDED", (run, stack.output()[-3000:])
    return dict(run)


def tick_notifications(stack: RunningStack) -> dict[str, Any]:
    status, _, report = call_json(
        "POST", f"{stack.url}/trigger/notifications", {}, {"X-Admin-Key": stack.admin_key()}
    )
    assert status == 200, report
    return dict(report)


def budget_messages(stack: RunningStack, key: dict[str, str]) -> list[dict[str, Any]]:
    status, _, page = call("GET", f"{stack.url}/notifications/messages", headers=key)
    assert status == 200, page
    return [m for m in page["messages"] if str(m["kind"]).startswith("budget_")]


def recorded_after_run(stack: RunningStack, key: dict[str, str]) -> list[dict[str, Any]]:
    """The runner marks the run SUCCEEDED, then evaluates budgets: wait for that."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        messages = budget_messages(stack, key)
        if messages:
            return messages
        time.sleep(1)
    raise AssertionError(f"no budget alert recorded:\n{stack.output()[-3000:]}")


def test_a_budget_below_the_spend_sends_its_alert_email_once(stack: RunningStack) -> None:
    endpoints = stack.endpoints()
    target = demo.Stack(
        endpoints["gateway_url"], endpoints["emulator_url"], endpoints["project"], "unused"
    )
    suffix = uuid.uuid4().hex[:6]
    run_date = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    export_table = f"gcp_billing_export_v1_alert_{suffix}"
    demo.seed_export(
        target,
        f"{endpoints['project']}.billing_export.{export_table}",
        run_date - dt.timedelta(days=demo.DEMO_DAYS - 2),
    )
    status, _, tenant = call_json(
        "POST",
        f"{stack.url}/onboard/",
        {
            "tenant_id": f"alert_{suffix}",
            "company_name": "Alert Corp",
            "admin_email": "finops@alert.example",
            "subscription_plan": "PROFESSIONAL",
        },
        {"X-Admin-Key": stack.admin_key()},
    )
    assert status == 201, tenant
    key = {"X-API-Key": tenant["api_key"]}
    credential = created(
        stack,
        key,
        "/credentials/",
        {
            "provider": "GCP",
            "credential_type": "WORKLOAD_IDENTITY",
            "credential_name": "billing export reader",
            "metadata": {"granted_to": "platform service account"},
        },
    )
    provider = created(
        stack,
        key,
        "/credentials/provider-configs",
        {
            "provider": "GCP",
            "source_project_id": endpoints["project"],
            "billing_export_dataset": "billing_export",
            "billing_export_table": export_table,
            "currency": "USD",
            "credential_id": credential["credential_id"],
        },
    )
    config = created(
        stack,
        key,
        "/pipelines/configs",
        {
            "name": "GCP costs",
            "pipeline": "gcp_cost_billing",
            "provider_config_id": provider["config_id"],
            "credential_id": credential["credential_id"],
            "schedule_cron": "0 6 * * *",
            "timezone": "UTC",
            "is_active": False,
            "parameters": {},
        },
    )
    # 1 USD: below any day of the generated export, so the month's spend (or,
    # on the 1st, the run-rate forecast) crosses it.
    budget = created(stack, key, "/costs/budgets", {"name": "everything", "amount": "1"})

    run_and_wait(stack, target, key, config["config_id"], run_date)
    started = time.monotonic()
    recorded = recorded_after_run(stack, key)
    first_wait = time.monotonic() - started
    assert all(m["status"] == "PENDING" for m in recorded), recorded
    assert all(budget["budget_id"] in str(m["facts"]) for m in recorded), recorded

    report = tick_notifications(stack)
    assert report.get("sent", 0) >= len(recorded), report

    mail_dir = Path(stack.data_dir) / "mail"
    sent = budget_messages(stack, key)
    assert {m["message_id"] for m in sent} == {m["message_id"] for m in recorded}
    assert all(m["status"] == "SENT" for m in sent), sent
    for message in sent:
        mail = email.message_from_bytes(
            (mail_dir / f"{message['message_id']}.eml").read_bytes(), policy=email.policy.default
        )
        assert "finops@alert.example" in mail["To"]
        assert mail["X-Convergence-Message-Id"] == message["message_id"]
    emails_before = sorted(p.name for p in mail_dir.glob("*.eml"))

    # The same day again: focus_cost is rewritten, the budget evaluated again,
    # and no threshold is new this period: nothing recorded, nothing sent.
    run_and_wait(stack, target, key, config["config_id"], run_date)
    # The evaluation follows SUCCEEDED (the first one's alerts showed up within
    # first_wait): watch the outbox for as long plus a margin.
    deadline = time.monotonic() + first_wait + 15
    while time.monotonic() < deadline:
        again = budget_messages(stack, key)
        assert {m["message_id"] for m in again} == {m["message_id"] for m in sent}
        time.sleep(1)
    assert tick_notifications(stack).get("claimed", 0) == 0
    assert sorted(p.name for p in mail_dir.glob("*.eml")) == emails_before

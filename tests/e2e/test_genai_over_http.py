"""e2e: OpenAI and Anthropic spend into focus_cost over HTTP, on the whole local stack (issue 19).

Like a customer: store an organization admin key, create the provider config and
a pipeline config, POST a run, poll it until SUCCEEDED, then read the tenant's
focus_cost and compare each day's SUM(BilledCost) with what the stack's admin
API stand-in reports for that day, exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from local import demo
from tests.e2e.stack import RunningStack, call_json, start_stack

DAY = dt.date(2026, 3, 10)
LOOKBACK = 2
ADMIN_KEYS = {
    "OPENAI": lambda suffix: f"sk-admin-e2e-{suffix}-organization",
    "ANTHROPIC": lambda suffix: f"sk-ant-admin01-e2e-{suffix}-organization",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("genai") / "data", env={"SCHEDULER_TICK_SECONDS": "3600"}
    )
    yield running
    assert running.stop() == 0


def _get(url: str, headers: dict[str, str]) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        return json.loads(r.read(), parse_float=Decimal)


def api_daily_totals(base: str, provider: str, admin_key: str) -> dict[dt.date, Decimal]:
    """The provider cost API's own total per day over the run's window, read exactly."""
    first = dt.datetime.combine(DAY - dt.timedelta(days=LOOKBACK), dt.time(), dt.UTC)
    last = first + dt.timedelta(days=LOOKBACK + 1)
    if provider == "OPENAI":
        query = urllib.parse.urlencode(
            {"start_time": int(first.timestamp()), "end_time": int(last.timestamp())}
        )
        body = _get(
            f"{base}/v1/organization/costs?{query}", {"Authorization": f"Bearer {admin_key}"}
        )
        return {
            dt.datetime.fromtimestamp(b["start_time"], dt.UTC).date(): sum(
                (Decimal(str(r["amount"]["value"])) for r in b["results"]), Decimal(0)
            )
            for b in body["data"]
        }
    query = urllib.parse.urlencode(
        {"starting_at": first.isoformat(), "ending_at": last.isoformat()}
    )
    body = _get(
        f"{base}/v1/organizations/cost_report?{query}",
        {"x-api-key": admin_key, "anthropic-version": "2023-06-01"},
    )
    return {
        dt.date.fromisoformat(b["starting_at"][:10]): sum(
            (Decimal(r["amount"]) for r in b["results"]), Decimal(0)
        )
        / 100
        for b in body["data"]
    }


def _wait_for(gateway: str, key: dict[str, str], run_id: str, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, run = call_json("GET", f"{gateway}/pipelines/runs/{run_id}", headers=key)
        if status == 200 and run["state"] in demo.TERMINAL:
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish in {timeout:.0f}s")


@pytest.mark.parametrize("provider", ["OPENAI", "ANTHROPIC"])
def test_a_genai_run_over_http_lands_focus_rows_equal_to_the_cost_api(
    stack: RunningStack, provider: str
) -> None:
    gateway, admin = stack.url, {"X-Admin-Key": stack.admin_key()}
    endpoints = stack.endpoints()
    suffix = uuid.uuid4().hex[:8]
    tenant_id = f"genai_{suffix}"
    status, _, tenant = call_json(
        "POST",
        f"{gateway}/onboard/",
        {
            "tenant_id": tenant_id,
            "company_name": "GenAI Corp",
            "admin_email": "finops@genai.example",
            "subscription_plan": "PROFESSIONAL",
        },
        admin,
    )
    assert status == 201, tenant
    key = {"X-API-Key": tenant["api_key"]}
    admin_key = ADMIN_KEYS[provider](suffix)

    status, _, credential = call_json(
        "POST",
        f"{gateway}/credentials/",
        {
            "provider": provider,
            "credential_type": "ADMIN_KEY",
            "credential_name": "cost reader",
            "credentials": {"admin_key": admin_key},
        },
        key,
    )
    assert status == 201 and credential["validation_status"] == "LIVE_VALID", credential
    status, _, provider_config = call_json(
        "POST",
        f"{gateway}/credentials/provider-configs",
        {"provider": provider, "currency": "USD", "credential_id": credential["credential_id"]},
        key,
    )
    assert status == 201, provider_config
    status, _, config = call_json(
        "POST",
        f"{gateway}/pipelines/configs",
        {
            "name": "genai costs",
            "pipeline": f"{provider.lower()}_costs",
            "provider_config_id": provider_config["config_id"],
            "credential_id": credential["credential_id"],
            "schedule_cron": "0 6 * * *",
            "timezone": "UTC",
            "is_active": False,
            "parameters": {"lookback_days": LOOKBACK},
        },
        key,
    )
    assert status == 201, config
    status, _, started = call_json(
        "POST",
        f"{gateway}/pipelines/runs",
        {"config_id": config["config_id"], "run_date": DAY.isoformat()},
        key,
    )
    assert status == 202, started

    run = _wait_for(gateway, key, started["run_ids"][0])

    assert run["state"] == "SUCCEEDED", (run, stack.output()[-3000:])
    assert [s["status"] for s in run["steps"]] == ["SUCCEEDED"] * 3, run["steps"]
    assert run["dq_results"] and all(r["status"] == "PASS" for r in run["dq_results"])
    client = demo.bigquery_client(
        demo.Stack(gateway, endpoints["emulator_url"], endpoints["project"], "")
    )
    rows = client.query(
        "SELECT DATE(ChargePeriodStart) AS day, SUM(BilledCost) AS total, "
        "ANY_VALUE(ProviderName) AS provider_name, COUNT(DISTINCT x_run_id) AS runs "
        f"FROM `{endpoints['project']}.{tenant['dataset_id']}.focus_cost` GROUP BY day"
    ).result()
    landed = {r["day"]: r["total"] for r in rows}
    expected = api_daily_totals(endpoints[f"{provider.lower()}_api_base"], provider, admin_key)
    assert landed == expected
    assert len(landed) == LOOKBACK + 1

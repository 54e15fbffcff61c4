"""OpenAI and Anthropic spend into focus_cost, against the admin API stand-ins and the emulator."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from local.genai_apis import GenAiStandIns
from shared.pipelines.context import RunContext, StepContext, StepError
from shared.pipelines.steps import genai
from tests.integration.conftest import Platform

DAY = dt.date(2026, 3, 10)
KEYS = {
    "openai": ("OPENAI", "sk-admin-" + uuid.uuid4().hex),
    "anthropic": ("ANTHROPIC", "sk-ant-admin01-" + uuid.uuid4().hex),
}


@pytest.fixture(scope="module")
def genai_apis() -> Iterator[GenAiStandIns]:
    server = GenAiStandIns()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(genai_apis: GenAiStandIns) -> dict[str, object]:
    return {"openai_admin_api_base": genai_apis.url, "anthropic_admin_api_base": genai_apis.url}


def credential(platform: Platform, key: str, provider: str, admin_key: str) -> Any:
    body = {
        "provider": provider,
        "credential_type": "ADMIN_KEY",
        "credential_name": "cost reader",
        "credentials": {"admin_key": admin_key},
    }
    return platform.tenant_call("credentials", "POST", "/", key, json=body)


def setup(platform: Platform, name: str) -> tuple[str, str]:
    provider, admin_key = KEYS[name]
    tenant = platform.onboarded()
    response = credential(platform, tenant["api_key"], provider, admin_key)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["validation_status"] == "LIVE_VALID"
    config = platform.tenant_call(
        "credentials",
        "POST",
        "/provider-configs",
        tenant["api_key"],
        json={
            "provider": provider,
            "currency": "USD",
            "credential_id": response.get_json()["credential_id"],
        },
    )
    assert config.status_code == 201, config.get_json()
    return tenant["tenant_id"], config.get_json()["config_id"]


def ctx(
    platform: Platform, tenant_id: str, config_id: str, name: str, **params: Any
) -> StepContext:
    run = RunContext(
        run_id="run_" + uuid.uuid4().hex[:12],
        tenant_id=tenant_id,
        config_id=config_id,
        pipeline=f"{name}_costs",
        run_date=DAY,
        dataset_id=tenant_id,
        provider_config_id=config_id,
        max_bytes_billed=10 * 1024**3,
    )
    return StepContext(
        platform.deps,
        run,
        "step",
        {"provider": name, "lookback_days": 2, **params},
        threading.Event(),
    )


def api_daily_totals(url: str, name: str) -> dict[dt.date, Decimal]:
    """What the provider's cost API reports per day, ungrouped, read exactly."""
    _, admin_key = KEYS[name]
    first = dt.datetime.combine(DAY - dt.timedelta(days=2), dt.time(), dt.UTC)
    last = first + dt.timedelta(days=3)
    if name == "openai":
        response = requests.get(
            f"{url}/v1/organization/costs",
            params={"start_time": int(first.timestamp()), "end_time": int(last.timestamp())},
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=10,
        )
        body = json.loads(response.text, parse_float=Decimal)
        return {
            dt.datetime.fromtimestamp(b["start_time"], dt.UTC).date(): sum(
                r["amount"]["value"] for r in b["results"]
            )
            for b in body["data"]
        }
    response = requests.get(
        f"{url}/v1/organizations/cost_report",
        params={"starting_at": first.isoformat(), "ending_at": last.isoformat()},
        headers={"x-api-key": admin_key, "anthropic-version": "2023-06-01"},
        timeout=10,
    )
    return {
        dt.date.fromisoformat(b["starting_at"][:10]): sum(
            Decimal(r["amount"]) for r in b["results"]
        )
        / 100
        for b in response.json()["data"]
    }


def focus_daily(platform: Platform, tenant_id: str) -> dict[dt.date, Decimal]:
    wh = platform.deps.warehouse
    rows = wh.query(
        "SELECT DATE(ChargePeriodStart) AS day, SUM(BilledCost) AS total "
        f"FROM {wh.table(tenant_id, 'focus_cost')} GROUP BY day"
    )
    return {r["day"]: r["total"] for r in rows}


@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_a_run_lands_focus_rows_whose_daily_totals_equal_the_cost_api_exactly(
    platform: Platform, genai_apis: GenAiStandIns, name: str
) -> None:
    tenant_id, config_id = setup(platform, name)

    for _ in range(2):  # a re-run replaces its days: idempotent
        genai.extract(ctx(platform, tenant_id, config_id, name, page_limit=2))
        genai.convert(ctx(platform, tenant_id, config_id, name))
    result = genai.check(ctx(platform, tenant_id, config_id, name))

    assert focus_daily(platform, tenant_id) == api_daily_totals(genai_apis.url, name)
    assert all(r.status == "PASS" for r in result.dq_results)
    wh = platform.deps.warehouse
    rows = wh.query(
        "SELECT ServiceCategory AS category, ServiceSubcategory AS subcategory, "
        "ProviderName AS provider, ChargeCategory AS charge, "
        "COUNTIF(ConsumedQuantity IS NOT NULL) AS with_tokens, COUNT(*) AS n "
        f"FROM {wh.table(tenant_id, 'focus_cost')} GROUP BY 1, 2, 3, 4"
    )
    assert len(rows) == 1
    assert rows[0]["category"] == "AI and Machine Learning"
    assert rows[0]["subcategory"] == "Generative AI"
    assert rows[0]["charge"] == "Usage"
    assert rows[0]["with_tokens"] > 0
    if name == "openai":
        # Every cost line item finds its quantity: completions tokens and the other
        # usage endpoints' tokens, images, characters and seconds.
        units = wh.query(
            "SELECT ConsumedUnit AS unit, COUNTIF(ConsumedQuantity IS NULL) AS missing "
            f"FROM {wh.table(tenant_id, 'focus_cost')} GROUP BY 1"
        )
        assert {r["unit"] for r in units} == {"Tokens", "Images", "Characters", "Seconds"}
        assert all(r["missing"] == 0 for r in units)


def test_a_401_mid_run_fails_the_step_naming_it_and_writes_nothing(
    platform: Platform, genai_apis: GenAiStandIns
) -> None:
    tenant_id, config_id = setup(platform, "anthropic")
    _, admin_key = KEYS["anthropic"]
    genai_apis.app.faults.set(
        [
            {
                "key": admin_key,
                "path": "/v1/organizations/cost_report",
                "kind": "status",
                "status": 401,
                "on_request": 2,
            }
        ]
    )

    with pytest.raises(StepError) as error:
        genai.extract(ctx(platform, tenant_id, config_id, "anthropic", page_limit=1))
    genai_apis.app.faults.set([])

    assert error.value.code == "credential_rejected"
    wh = platform.deps.warehouse
    count = wh.query(f"SELECT COUNT(*) AS n FROM {wh.table(tenant_id, 'anthropic_costs_raw')}")
    assert count[0]["n"] == 0


@pytest.mark.parametrize(
    ("kind", "code"),
    [("repeat_cursor", "repeated_cursor"), ("malformed_amount", "malformed_amount")],
)
def test_a_repeated_cursor_or_malformed_amount_fails_the_run(
    platform: Platform, genai_apis: GenAiStandIns, kind: str, code: str
) -> None:
    tenant_id, config_id = setup(platform, "openai")
    _, admin_key = KEYS["openai"]
    genai_apis.app.faults.set(
        [{"key": admin_key, "path": "/v1/organization/costs", "kind": kind, "on_request": 2}]
    )

    with pytest.raises(StepError) as error:
        genai.extract(ctx(platform, tenant_id, config_id, "openai", page_limit=1))
    genai_apis.app.faults.set([])

    assert error.value.code == code


def test_a_429_with_retry_after_is_waited_out(
    platform: Platform, genai_apis: GenAiStandIns
) -> None:
    tenant_id, config_id = setup(platform, "openai")
    _, admin_key = KEYS["openai"]
    genai_apis.app.faults.set(
        [
            {
                "key": admin_key,
                "path": "/v1/organization/costs",
                "kind": "status",
                "status": 429,
                "retry_after": 1,
                "times": 2,
            }
        ]
    )

    result = genai.extract(ctx(platform, tenant_id, config_id, "openai"))
    genai_apis.app.faults.set([])

    assert result.rows_processed and result.rows_processed > 0


@pytest.mark.parametrize(
    ("provider", "admin_key", "says"),
    [
        ("OPENAI", "sk-proj-" + "a" * 40, "ordinary API key"),
        ("ANTHROPIC", "sk-ant-api03-" + "a" * 40, "ordinary API key"),
        ("OPENAI", "sk-ant-admin01-" + "a" * 40, "use provider ANTHROPIC"),
        ("OPENAI", "sk-admin-revoked" + "a" * 30, "revoked"),
    ],
)
def test_an_admin_key_that_cannot_read_costs_is_refused_and_nothing_is_stored(
    platform: Platform, genai_apis: GenAiStandIns, provider: str, admin_key: str, says: str
) -> None:
    tenant = platform.onboarded()

    response = credential(platform, tenant["api_key"], provider, admin_key)

    assert response.status_code == 422
    assert says in response.get_json()["detail"]
    assert admin_key not in response.get_data(as_text=True)
    listed = platform.tenant_call("credentials", "GET", "/", tenant["api_key"]).get_json()
    assert listed["credentials"] == [] if isinstance(listed, dict) else listed == []

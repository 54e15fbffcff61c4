"""The OpenAI and Anthropic admin API stand-ins answer as the published contracts say."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from werkzeug.test import Client

from local.genai_apis import GenAiApis

OPENAI_ADMIN = "sk-admin-acme0123456789abcdef"
ANTHROPIC_ADMIN = "sk-ant-admin01-acme0123456789abcdef"
START = int(dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp())
DAY = 86_400


def openai(client: Client, path: str, key: str = OPENAI_ADMIN, **query: Any) -> Any:
    return client.get(path, query_string=query, headers={"Authorization": f"Bearer {key}"})


def anthropic(client: Client, path: str, key: str = ANTHROPIC_ADMIN, **query: Any) -> Any:
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return client.get(path, query_string=query, headers=headers)


def test_openai_costs_page_through_next_page_and_group_totals_add_up() -> None:
    client = Client(GenAiApis())
    query = {"start_time": START, "end_time": START + 5 * DAY, "limit": 2}
    pages, page = [], None
    while True:
        body = openai(
            client, "/v1/organization/costs", **query, **({"page": page} if page else {})
        ).json
        pages.append(body)
        if not body["has_more"]:
            break
        page = body["next_page"]
    grouped = openai(
        client,
        "/v1/organization/costs",
        start_time=START,
        end_time=START + DAY,
        group_by=["project_id", "line_item"],
    ).get_data(as_text=True)
    total = openai(client, "/v1/organization/costs", start_time=START, end_time=START + DAY)

    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert [b["start_time"] for p in pages for b in p["data"]] == [
        START + i * DAY for i in range(5)
    ]
    items = json.loads(grouped, parse_float=Decimal)["data"][0]["results"]
    assert {r["project_id"] for r in items} == {"proj_research", "proj_support"}
    assert (
        sum(r["amount"]["value"] for r in items)
        == json.loads(total.get_data(as_text=True), parse_float=Decimal)["data"][0]["results"][0][
            "amount"
        ]["value"]
    )


def test_openai_refuses_ordinary_and_revoked_keys() -> None:
    client = Client(GenAiApis())

    ordinary = openai(
        client, "/v1/organization/costs", key="sk-proj-abcdefabcdefabcdef", start_time=START
    )
    revoked = openai(
        client, "/v1/organization/costs", key="sk-admin-revoked-123456", start_time=START
    )

    assert ordinary.status_code == 403
    assert ordinary.json["error"]["code"] == "insufficient_permissions"
    assert revoked.status_code == 401
    assert revoked.json["error"]["code"] == "invalid_api_key"


def test_anthropic_cost_amounts_are_cent_strings_and_buckets_respect_edges() -> None:
    client = Client(GenAiApis())

    body = anthropic(
        client,
        "/v1/organizations/cost_report",
        starting_at="2026-03-01T12:00:00Z",
        ending_at="2026-03-04T00:00:00Z",
        **{"group_by[]": ["workspace_id", "description"]},
    ).json

    # A bucket starts on or after starting_at and ends by ending_at: 2 and 3 March.
    assert [b["starting_at"] for b in body["data"]] == [
        "2026-03-02T00:00:00Z",
        "2026-03-03T00:00:00Z",
    ]
    amounts = [r["amount"] for b in body["data"] for r in b["results"]]
    assert all(isinstance(a, str) and Decimal(a) >= 0 for a in amounts)
    assert {r["token_type"] for r in body["data"][0]["results"]} >= {
        "uncached_input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        None,
    }


def test_anthropic_refuses_an_ordinary_key_and_injected_429_says_retry_after() -> None:
    app = GenAiApis()
    client = Client(app)
    app.faults.set(
        [
            {
                "key": ANTHROPIC_ADMIN,
                "path": "/v1/organizations/cost_report",
                "kind": "status",
                "status": 429,
                "retry_after": 3,
            }
        ]
    )

    ordinary = anthropic(
        client,
        "/v1/organizations/cost_report",
        key="sk-ant-api03-abcdefabcdefabcdef",
        starting_at="2026-03-01T00:00:00Z",
    )
    limited = anthropic(client, "/v1/organizations/cost_report", starting_at="2026-03-01T00:00:00Z")
    after = anthropic(client, "/v1/organizations/cost_report", starting_at="2026-03-01T00:00:00Z")

    assert ordinary.status_code == 403
    assert ordinary.json["error"]["type"] == "permission_error"
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert after.status_code == 200


def test_openai_other_usage_endpoints_page_through_next_page_with_their_quantity() -> None:
    client = Client(GenAiApis())
    fields = {
        "embeddings": "input_tokens",
        "moderations": "input_tokens",
        "images": "images",
        "audio_speeches": "characters",
        "audio_transcriptions": "seconds",
    }
    query = {
        "start_time": START,
        "end_time": START + 3 * DAY,
        "limit": 2,
        "group_by": ["project_id", "model"],
    }
    for endpoint, field in fields.items():
        path = f"/v1/organization/usage/{endpoint}"
        pages, page = [], None
        while True:
            body = openai(client, path, **query, **({"page": page} if page else {})).json
            pages.append(body)
            if not body["has_more"]:
                break
            page = body["next_page"]
        results = [r for p in pages for b in p["data"] for r in b["results"]]

        assert [len(p["data"]) for p in pages] == [2, 1], endpoint
        assert [b["start_time"] for p in pages for b in p["data"]] == [
            START + i * DAY for i in range(3)
        ], endpoint
        assert {r["object"] for r in results} == {f"organization.usage.{endpoint}.result"}
        assert {r["project_id"] for r in results} == {"proj_research", "proj_support"}
        assert all(isinstance(r[field], int) and r["num_model_requests"] >= 1 for r in results)


def test_openai_usage_quantities_price_to_their_cost_line_items_and_limit_stops_at_31() -> None:
    client = Client(GenAiApis())
    day = {"start_time": START, "end_time": START + DAY}
    by = {"group_by": ["project_id", "model"]}
    images = openai(client, "/v1/organization/usage/images", **day, **by).json
    costs = openai(
        client, "/v1/organization/costs", **day, group_by=["project_id", "line_item"]
    ).get_data(as_text=True)
    too_many = openai(client, "/v1/organization/usage/embeddings", start_time=START, limit=32)
    unknown = openai(client, "/v1/organization/usage/nonsense", **day)

    items = json.loads(costs, parse_float=Decimal)["data"][0]["results"]
    for usage in images["data"][0]["results"]:
        (item,) = [
            i
            for i in items
            if i["project_id"] == usage["project_id"]
            and i["line_item"] == f"{usage['model']}, images"
        ]
        # dall-e-3 at $0.04 an image in the stand-in's price list.
        assert item["amount"]["value"] == Decimal(usage["images"]) * Decimal("0.04")
    assert not any(i["line_item"].startswith("omni-moderation") for i in items)
    assert too_many.status_code == 400
    assert unknown.status_code == 404

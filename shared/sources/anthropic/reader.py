"""Anthropic reader: daily cost report and messages usage of a date range, as raw rows.

Fields (https://platform.claude.com/docs/en/api/admin/cost_report): bucket
`starting_at`/`ending_at` (RFC 3339), results' `amount` (a decimal string in
the lowest currency unit, cents: "123.45" is $1.2345; parsed with Decimal,
never float), `currency` ("USD"), `workspace_id` (null: the default
workspace), `description`, `cost_type`, `model`, `token_type`,
`service_tier`, `context_window` (with group_by[]=workspace_id,description).
Usage (https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages):
`uncached_input_tokens`, `cache_creation.ephemeral_5m_input_tokens`,
`cache_creation.ephemeral_1h_input_tokens`, `cache_read_input_tokens`,
`output_tokens`, `server_tool_use.web_search_requests`, `workspace_id`, `model`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from shared.sources.admin_api import AdminApiError, key_headers, pages
from shared.sources.genai_reader import (
    check_bucket,
    day_bounds,
    decimal_string,
    numeric,
    token_count,
)

COSTS_PATH = "/v1/organizations/cost_report"
USAGE_PATH = "/v1/organizations/usage_report/messages"
_RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def _time(value: Any) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        raise AdminApiError("malformed_response", f"bad bucket time {value!r}"[:200]) from None


def _buckets(
    base_url: str, path: str, admin_key: str, params: dict[str, Any], timeout: float
) -> list[tuple[dt.datetime, dt.datetime, list[dict[str, Any]]]]:
    found = []
    for page in pages(f"{base_url}{path}", key_headers("ANTHROPIC", admin_key), params, timeout):
        for bucket in page["data"]:
            found.append(
                (
                    _time(bucket.get("starting_at")),
                    _time(bucket.get("ending_at")),
                    list(bucket.get("results") or []),
                )
            )
    return found


def read(
    base_url: str,
    admin_key: str,
    date_from: dt.date,
    date_to: dt.date,
    *,
    page_limit: int = 31,
    timeout: float = 30.0,
) -> dict[str, list[dict[str, Any]]]:
    """Every cost and usage row of the days; raises AdminApiError before returning anything."""
    first, last = day_bounds(date_from, date_to)
    base = {
        "starting_at": first.strftime(_RFC3339),
        "ending_at": last.strftime(_RFC3339),
        "bucket_width": "1d",
        "limit": page_limit,
    }
    costs = []
    cost_params = {**base, "group_by[]": ["workspace_id", "description"]}
    for start, end, results in _buckets(base_url, COSTS_PATH, admin_key, cost_params, timeout):
        check_bucket(start, end, first, last)
        for item in results:
            cents = decimal_string(item.get("amount"), f"amount of {start.date()}")
            costs.append(
                {
                    "bucket_start": start,
                    "bucket_end": end,
                    **{
                        k: item.get(k)
                        for k in (
                            "workspace_id",
                            "description",
                            "cost_type",
                            "model",
                            "token_type",
                            "service_tier",
                            "context_window",
                        )
                    },
                    "amount_cents": item.get("amount"),
                    "amount": numeric(cents / Decimal(100)),
                    "currency": str(item.get("currency") or "USD").upper(),
                }
            )
    usage = []
    usage_params = {**base, "group_by[]": ["workspace_id", "model"]}
    for start, end, results in _buckets(base_url, USAGE_PATH, admin_key, usage_params, timeout):
        check_bucket(start, end, first, last)
        for item in results:
            cache = item.get("cache_creation") or {}
            tools = item.get("server_tool_use") or {}
            usage.append(
                {
                    "bucket_start": start,
                    "bucket_end": end,
                    "workspace_id": item.get("workspace_id"),
                    "model": item.get("model"),
                    "uncached_input_tokens": token_count(
                        item.get("uncached_input_tokens"), "uncached_input_tokens"
                    ),
                    "cache_creation_5m_input_tokens": token_count(
                        cache.get("ephemeral_5m_input_tokens"), "ephemeral_5m_input_tokens"
                    ),
                    "cache_creation_1h_input_tokens": token_count(
                        cache.get("ephemeral_1h_input_tokens"), "ephemeral_1h_input_tokens"
                    ),
                    "cache_read_input_tokens": token_count(
                        item.get("cache_read_input_tokens"), "cache_read_input_tokens"
                    ),
                    "output_tokens": token_count(item.get("output_tokens"), "output_tokens"),
                    "web_search_requests": token_count(
                        tools.get("web_search_requests"), "web_search_requests"
                    ),
                }
            )
    return {"anthropic_costs_raw": costs, "anthropic_usage_raw": usage}

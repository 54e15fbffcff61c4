"""OpenAI reader: daily cost buckets and every usage endpoint of a date range, as raw rows.

Fields (https://platform.openai.com/docs/api-reference/usage/costs): bucket
`start_time`/`end_time` (Unix seconds), results' `amount.value` (a JSON
number, read as Decimal) and `amount.currency` ("usd"), `project_id`,
`line_item` (with group_by=project_id,line_item). Usage
(https://platform.openai.com/docs/api-reference/usage/completions):
`input_tokens`, `input_cached_tokens`, `output_tokens`, `num_model_requests`,
`project_id`, `model` (with group_by=project_id,model). The other usage
endpoints, grouped the same way, each with `num_model_requests` and one
quantity: embeddings `input_tokens`
(https://platform.openai.com/docs/api-reference/usage/embeddings), moderations
`input_tokens` (https://platform.openai.com/docs/api-reference/usage/moderations),
images `images` (https://platform.openai.com/docs/api-reference/usage/images),
audio_speeches `characters`
(https://platform.openai.com/docs/api-reference/usage/audio_speeches),
audio_transcriptions `seconds`
(https://platform.openai.com/docs/api-reference/usage/audio_transcriptions).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.sources.admin_api import AdminApiError, key_headers, pages
from shared.sources.genai_reader import check_bucket, day_bounds, json_number, numeric, token_count

COSTS_PATH = "/v1/organization/costs"
USAGE_PATH = "/v1/organization/usage/completions"
# Usage endpoints other than completions -> the one quantity each reports.
OTHER_USAGE = {
    "embeddings": "input_tokens",
    "moderations": "input_tokens",
    "images": "images",
    "audio_speeches": "characters",
    "audio_transcriptions": "seconds",
}


def _bucket_times(bucket: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    try:
        start = dt.datetime.fromtimestamp(int(bucket["start_time"]), dt.UTC)
        end = dt.datetime.fromtimestamp(int(bucket["end_time"]), dt.UTC)
    except (KeyError, TypeError, ValueError):
        raise AdminApiError("malformed_response", "a bucket without start_time/end_time") from None
    return start, end


def _buckets(
    base_url: str, path: str, admin_key: str, params: dict[str, Any], timeout: float
) -> list[tuple[dt.datetime, dt.datetime, list[dict[str, Any]]]]:
    found = []
    for page in pages(f"{base_url}{path}", key_headers("OPENAI", admin_key), params, timeout):
        for bucket in page["data"]:
            start, end = _bucket_times(bucket)
            found.append((start, end, list(bucket.get("results") or [])))
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
        "start_time": int(first.timestamp()),
        "end_time": int(last.timestamp()),
        "bucket_width": "1d",
        "limit": page_limit,
    }
    costs = []
    for start, end, results in _buckets(
        base_url, COSTS_PATH, admin_key, {**base, "group_by": ["project_id", "line_item"]}, timeout
    ):
        check_bucket(start, end, first, last)
        for item in results:
            amount = item.get("amount") or {}
            value = json_number(amount.get("value"), f"amount.value of {start.date()}")
            costs.append(
                {
                    "bucket_start": start,
                    "bucket_end": end,
                    "project_id": item.get("project_id"),
                    "line_item": item.get("line_item"),
                    "amount": numeric(value),
                    "currency": str(amount.get("currency") or "usd").upper(),
                }
            )
    usage = []
    for start, end, results in _buckets(
        base_url, USAGE_PATH, admin_key, {**base, "group_by": ["project_id", "model"]}, timeout
    ):
        check_bucket(start, end, first, last)
        for item in results:
            usage.append(
                {
                    "bucket_start": start,
                    "bucket_end": end,
                    "project_id": item.get("project_id"),
                    "model": item.get("model"),
                    **{
                        f: token_count(item.get(f), f)
                        for f in (
                            "input_tokens",
                            "input_cached_tokens",
                            "output_tokens",
                            "num_model_requests",
                        )
                    },
                }
            )
    other = []
    for endpoint, field in OTHER_USAGE.items():
        for start, end, results in _buckets(
            base_url,
            f"/v1/organization/usage/{endpoint}",
            admin_key,
            {**base, "group_by": ["project_id", "model"]},
            timeout,
        ):
            check_bucket(start, end, first, last)
            for item in results:
                other.append(
                    {
                        "bucket_start": start,
                        "bucket_end": end,
                        "endpoint": endpoint,
                        "project_id": item.get("project_id"),
                        "model": item.get("model"),
                        "quantity_field": field,
                        "quantity": token_count(item.get(field), f"{endpoint} {field}"),
                        "num_model_requests": token_count(
                            item.get("num_model_requests"), f"{endpoint} num_model_requests"
                        ),
                    }
                )
    return {"openai_costs_raw": costs, "openai_usage_raw": usage, "openai_usage_other_raw": other}

"""GET JSON from a GenAI provider's admin API: bounded retries, Retry-After, cursor paging.

Both providers' admin APIs page the same way (`has_more` + `next_page`, passed
back as `page`) and answer 429 with `retry-after` and 5xx when they are busy:
https://platform.openai.com/docs/api-reference/usage/costs,
https://platform.claude.com/docs/en/api/admin/cost_report,
https://docs.anthropic.com/en/api/rate-limits. Retries use google.api_core's
Retry (exponential backoff, bounded by a deadline); a 429 first waits the
seconds its Retry-After asks (capped, so a run never sleeps for long).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import requests
from google.api_core import retry as api_retry

# Longest Retry-After honoured; beyond it the run fails (and is retried later as a whole).
MAX_RETRY_AFTER_SECONDS = 30.0
RETRY_DEADLINE_SECONDS = 90.0
MAX_PAGES = 1000


class AdminApiError(Exception):
    """A failed read, with a stable code a step error can name."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class _Busy(Exception):
    """429 or 5xx: retried."""


def _retry_after(response: requests.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


def get_json(
    url: str, headers: dict[str, str], params: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """One GET with retries; JSON numbers come back as Decimal (never float)."""

    def attempt() -> requests.Response:
        try:
            response = requests.get(url, headers=headers, params=params, timeout=timeout)
        except requests.RequestException as exc:
            raise _Busy(type(exc).__name__) from None
        if response.status_code == 429:
            wait = _retry_after(response)
            if wait > MAX_RETRY_AFTER_SECONDS:
                raise AdminApiError(
                    "rate_limited", f"rate limited; Retry-After {wait:g}s is too long", 429
                )
            time.sleep(wait)
            raise _Busy("429")
        if response.status_code >= 500:
            raise _Busy(str(response.status_code))
        return response

    retry = api_retry.Retry(
        predicate=api_retry.if_exception_type(_Busy),
        initial=0.2,
        maximum=5.0,
        multiplier=2.0,
        timeout=RETRY_DEADLINE_SECONDS,
    )
    try:
        response = retry(attempt)()
    except _Busy as exc:
        raise AdminApiError("provider_unavailable", f"provider still busy ({exc})") from None
    except Exception as exc:
        if isinstance(exc, AdminApiError):
            raise
        # google.api_core raises RetryError once the deadline has passed.
        raise AdminApiError("provider_unavailable", "provider still busy after retries") from None
    if response.status_code == 401:
        raise AdminApiError("credential_rejected", "the provider rejected the admin key (401)", 401)
    if response.status_code == 403:
        raise AdminApiError(
            "credential_not_admin", "the key lacks admin permission on cost reports (403)", 403
        )
    if response.status_code != 200:
        raise AdminApiError(
            "provider_error", f"the provider answered {response.status_code}", response.status_code
        )
    try:
        body = json.loads(response.text, parse_float=Decimal)
    except ValueError:
        raise AdminApiError("malformed_response", "the provider's answer is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise AdminApiError("malformed_response", "the provider's answer has no data list")
    return body


def pages(
    url: str, headers: dict[str, str], params: dict[str, Any], timeout: float
) -> Iterator[dict[str, Any]]:
    """Every page, following `next_page`; a cursor seen twice fails (it would loop forever)."""
    seen: set[str] = set()
    query = dict(params)
    for _ in range(MAX_PAGES):
        body = get_json(url, headers, query, timeout)
        yield body
        if not body.get("has_more"):
            return
        cursor = body.get("next_page")
        if not isinstance(cursor, str) or not cursor:
            raise AdminApiError("malformed_response", "has_more without a next_page cursor")
        if cursor in seen:
            raise AdminApiError("repeated_cursor", f"the provider repeated page cursor {cursor!r}")
        seen.add(cursor)
        query["page"] = cursor
    raise AdminApiError("too_many_pages", f"more than {MAX_PAGES} pages")


# ------------------------------------------------------------------ admin keys


def key_headers(provider: str, admin_key: str) -> dict[str, str]:
    """How each provider takes an admin key."""
    if provider == "OPENAI":
        return {"Authorization": f"Bearer {admin_key}"}
    return {"x-api-key": admin_key, "anthropic-version": "2023-06-01"}


def probe_admin_key(provider: str, admin_key: str, base_url: str, timeout: float) -> None:
    """One cheap authenticated call: one daily cost bucket (raises AdminApiError)."""
    import datetime as dt

    yesterday = dt.datetime.now(dt.UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    ) - dt.timedelta(days=1)
    if provider == "OPENAI":
        url = f"{base_url}/v1/organization/costs"
        params: dict[str, Any] = {"start_time": int(yesterday.timestamp()), "limit": 1}
    else:
        url = f"{base_url}/v1/organizations/cost_report"
        params = {"starting_at": yesterday.strftime("%Y-%m-%dT%H:%M:%SZ"), "limit": 1}
    get_json(url, key_headers(provider, admin_key), params, timeout)

"""Shared parsing for the GenAI readers: days, timestamps, exact money."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from shared.sources.admin_api import AdminApiError

# NUMERIC keeps 9 decimals; amounts are rounded half away from zero there, as
# PARSE_NUMERIC does (docs/sources/genai.md, "Money").
NUMERIC_PLACES = Decimal("0.000000001")
_DECIMAL_TEXT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def numeric(value: Decimal) -> Decimal:
    return value.quantize(NUMERIC_PLACES, rounding=ROUND_HALF_UP)


def decimal_string(value: Any, what: str) -> Decimal:
    """A plain decimal string ("123.45"), exactly; anything else fails the run."""
    if not isinstance(value, str) or not _DECIMAL_TEXT.match(value):
        raise AdminApiError("malformed_amount", f"{what} is not a decimal string: {value!r}"[:200])
    try:
        return Decimal(value)
    except InvalidOperation:
        raise AdminApiError(
            "malformed_amount", f"{what} is not a decimal: {value!r}"[:200]
        ) from None


def json_number(value: Any, what: str) -> Decimal:
    """A JSON number read as Decimal (json.loads(parse_float=Decimal)) or an int."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise AdminApiError("malformed_amount", f"{what} is not a number: {value!r}"[:200])
    result = Decimal(value)
    if not result.is_finite():
        raise AdminApiError("malformed_amount", f"{what} is not finite")
    return result


def token_count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AdminApiError("malformed_response", f"{what} is not a token count: {value!r}"[:200])
    return value


def day_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first day 00:00 UTC, day after the last 00:00 UTC)."""
    start = dt.datetime.combine(date_from, dt.time(), dt.UTC)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), dt.UTC)
    return start, end


def check_bucket(
    start: dt.datetime, end: dt.datetime, first: dt.datetime, last: dt.datetime
) -> None:
    """A daily bucket inside the asked range; anything else is the provider's mistake."""
    if end - start != dt.timedelta(days=1) or start < first or end > last:
        raise AdminApiError(
            "malformed_response",
            f"bucket {start.isoformat()}..{end.isoformat()} is not a day asked for",
        )

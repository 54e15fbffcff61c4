"""Cost dimensions shared by the cost API filters and budget scopes: names, columns, values."""

from __future__ import annotations

import re
from typing import Any

from shared.platform.errors import unprocessable

# API name -> FOCUS column of `{tenant}.focus_cost`.
DIMENSIONS: dict[str, str] = {
    "provider": "ProviderName",
    "service": "ServiceName",
    "sub_account": "SubAccountId",
    "region": "RegionId",
    "charge_category": "ChargeCategory",
}
TAG_PREFIX = "tag:"
# Tag keys and values are matched inside the compact Tags JSON (TO_JSON_STRING
# form, see shared/sources/gcp/mapping.py) and inside budget scopes by
# pattern, so they are limited to the characters cloud tags allow in practice
# (GCP labels, AWS and Azure tags) minus anything JSON would escape.
TAG_TEXT_RE = re.compile(r"^[A-Za-z0-9_ .:/=+@-]{1,128}$")
# Other dimension values: printable, no quote or backslash (a budget scope is
# matched as canonical JSON text; see budget_alerts.py).
VALUE_RE = re.compile(r'^[^"\\\x00-\x1f\x7f]{1,256}$')
MAX_VALUES = 50
MAX_TAG_FILTERS = 5


def dimension_problem(name: str) -> str | None:
    """Why `name` is not a dimension, or None."""
    if name in DIMENSIONS:
        return None
    if name.startswith(TAG_PREFIX):
        if TAG_TEXT_RE.match(name[len(TAG_PREFIX) :]):
            return None
        return "a tag key is 1-128 letters, digits, spaces or _ . : / = + @ -"
    known = ", ".join([*DIMENSIONS, "tag:<key>"])
    return f"unknown dimension; use one of {known}"


def require_dimension(name: str, field: str) -> str:
    problem = dimension_problem(name)
    if problem:
        raise unprocessable("invalid_dimension", f"{field}: {problem}", field=field)
    return name


def check_values(name: str, values: list[Any], field: str) -> list[str]:
    """The filter values of a dimension: 1-50 distinct strings of the allowed shape."""
    if not isinstance(values, list) or not values or len(values) > MAX_VALUES:
        raise unprocessable(
            "invalid_filter", f"{field}: 1 to {MAX_VALUES} values are required", field=field
        )
    pattern = TAG_TEXT_RE if name.startswith(TAG_PREFIX) else VALUE_RE
    for value in values:
        if not isinstance(value, str) or not pattern.match(value):
            shape = (
                "1-128 letters, digits, spaces or _ . : / = + @ -"
                if pattern is TAG_TEXT_RE
                else "1-256 characters without quotes, backslashes or control characters"
            )
            raise unprocessable("invalid_filter", f"{field}: each value is {shape}", field=field)
    return sorted(set(values))


def check_filters(filters: dict[str, Any], field: str = "scope") -> dict[str, list[str]]:
    """A validated, canonical filter set: known dimensions, sorted distinct values."""
    tags = [name for name in filters if name.startswith(TAG_PREFIX)]
    if len(tags) > MAX_TAG_FILTERS:
        raise unprocessable(
            "invalid_filter", f"{field}: at most {MAX_TAG_FILTERS} tag filters", field=field
        )
    checked: dict[str, list[str]] = {}
    for name in sorted(filters):
        where = f"{field}.{name}"
        require_dimension(name, where)
        checked[name] = check_values(name, filters[name], where)
    return checked

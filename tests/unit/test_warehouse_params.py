"""Query parameters, retry classification and job labels of the warehouse module."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.platform.warehouse import Typed, is_retryable, job_labels, query_config, to_parameter


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        ("acme", "STRING"),
        (3, "INT64"),
        (True, "BOOL"),
        (1.5, "FLOAT64"),
        (decimal.Decimal("1.000000001"), "NUMERIC"),
        (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "TIMESTAMP"),
        (dt.date(2026, 1, 1), "DATE"),
    ],
)
def test_python_values_become_typed_scalar_parameters(value: object, type_: str) -> None:
    param = to_parameter("p", value)

    assert isinstance(param, bigquery.ScalarQueryParameter)
    assert param.type_ == type_
    assert param.value == value


def test_lists_become_array_parameters_of_their_element_type() -> None:
    param = to_parameter("ids", ["a", "b"])

    assert isinstance(param, bigquery.ArrayQueryParameter)
    assert param.array_type == "STRING"
    assert param.values == ["a", "b"]


def test_a_null_needs_an_explicit_type() -> None:
    with pytest.raises(TypeError, match="Typed"):
        to_parameter("p", None)

    param = to_parameter("p", Typed("TIMESTAMP", None))
    assert isinstance(param, bigquery.ScalarQueryParameter)
    assert param.type_ == "TIMESTAMP"
    assert param.value is None


def test_naive_datetimes_and_raw_bytes_are_refused() -> None:
    with pytest.raises(TypeError, match="naive"):
        to_parameter("p", dt.datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="FROM_BASE64"):
        to_parameter("p", b"secret")


@pytest.mark.parametrize(
    "exc",
    [
        gexc.BadRequest("Could not serialize access to table p:d.t due to concurrent update"),
        gexc.BadRequest("Transaction is aborted due to concurrent update against table"),
        gexc.BadRequest(
            "Resources exceeded during query execution: Too many DML statements outstanding "
            "against table p:d.tenant_usage_quotas, limit is 20."
        ),
        gexc.Forbidden("Exceeded rate limits: rateLimitExceeded"),
        gexc.InternalServerError("backend error"),
        gexc.ServiceUnavailable("try again"),
        gexc.TooManyRequests("slow down"),
    ],
)
def test_transient_and_concurrent_update_errors_are_retried(exc: Exception) -> None:
    assert is_retryable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        gexc.BadRequest("Syntax error: Unexpected keyword"),
        gexc.BadRequest("Resources exceeded during query execution: Not enough resources"),
        gexc.NotFound("Not found: Table"),
        gexc.Forbidden("Access Denied"),
        gexc.Conflict("Already Exists"),
        ValueError("boom"),
    ],
)
def test_permanent_errors_are_not_retried(exc: Exception) -> None:
    assert not is_retryable(exc)


def test_job_labels_are_sanitized_to_bigquery_label_rules() -> None:
    labels = job_labels("Onboard Tenant!", "acme_corp")

    assert labels == {
        "app": "convergence",
        "component": "onboard_tenant_",
        "tenant_id": "acme_corp",
    }
    assert all(len(v) <= 63 for v in job_labels("x" * 100).values())


def test_every_query_job_carries_labels_parameters_and_the_byte_cap() -> None:
    config = query_config({"t": "acme"}, "onboard", "acme", maximum_bytes_billed=10**9)

    assert config.labels == {"app": "convergence", "component": "onboard", "tenant_id": "acme"}
    assert [p.name for p in config.query_parameters] == ["t"]
    assert config.maximum_bytes_billed == 10**9
    assert config.use_legacy_sql is False

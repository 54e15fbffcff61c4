"""Tenant ids and BigQuery identifiers: only validated names reach SQL."""

from __future__ import annotations

import pytest

from shared.platform.errors import ApiError
from shared.platform.identifiers import (
    InvalidIdentifier,
    quote_table,
    require_tenant_id,
    tenant_id_problem,
)


@pytest.mark.parametrize("tenant_id", ["acme", "acme_corp_2", "a1b", "x" * 50])
def test_well_formed_tenant_ids_are_accepted(tenant_id: str) -> None:
    assert tenant_id_problem(tenant_id, "tenants") is None


@pytest.mark.parametrize(
    ("tenant_id", "problem"),
    [
        ("ab", "must match"),
        ("x" * 51, "must match"),
        ("Acme", "must match"),
        ("acme-corp", "must match"),
        ("acme;drop", "must match"),
        ("acme corp", "must match"),
        ("", "must match"),
        (None, "must match"),
        (123, "must match"),
        ("_acme", "must not start with '_'"),
        ("tenants", "reserved"),
        ("admin", "reserved"),
        ("information_schema", "reserved"),
        ("central_ds", "reserved"),
    ],
)
def test_bad_or_reserved_tenant_ids_are_refused(tenant_id: object, problem: str) -> None:
    found = tenant_id_problem(tenant_id, "central_ds" if tenant_id == "central_ds" else "tenants")

    assert found is not None
    assert problem in found


def test_require_tenant_id_raises_a_422_naming_the_field() -> None:
    with pytest.raises(ApiError) as err:
        require_tenant_id("Bad-Id", "tenants")

    assert err.value.status == 422
    assert err.value.extra["field"] == "tenant_id"


def test_quote_table_backquotes_validated_parts() -> None:
    assert quote_table("my-project", "acme", "billing") == "`my-project.acme.billing`"


@pytest.mark.parametrize(
    ("project", "dataset", "table"),
    [
        ("my-project", "acme`; DROP TABLE x; --", "t"),
        ("my-project", "acme", "t` UNION SELECT 1 --"),
        ("my-project", "acme.other", "t"),
        ("My Project", "acme", "t"),
        ("my-project", "", "t"),
    ],
)
def test_quote_table_refuses_anything_that_could_escape_the_quotes(
    project: str, dataset: str, table: str
) -> None:
    with pytest.raises(InvalidIdentifier):
        quote_table(project, dataset, table)

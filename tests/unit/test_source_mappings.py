"""The sources' mapping .sql files, parsed: their columns are focus_cost's, their values FOCUS's."""

from __future__ import annotations

import json

import pytest
import sqlglot
from google.cloud import bigquery
from sqlglot import expressions as exp

from shared.pipelines.context import StepError
from shared.platform.settings import REPO_ROOT
from shared.sources.focus_checks import ALLOWED_VALUES, FOCUS_1_3_ONLY
from shared.sources.focus_native import native
from shared.sources.gcp import mapping

FOCUS_COST = json.loads((REPO_ROOT / "schemas" / "tenant" / "focus_cost.json").read_text())
FOCUS_1_2 = {
    f["name"]
    for f in FOCUS_COST["schema"]
    if not f["name"].startswith("x_") and f["name"] not in FOCUS_1_3_ONLY
}


def gcp_select() -> exp.Select:
    parsed = sqlglot.parse_one(mapping.mapping_text().replace("{raw}", "raw"), read="bigquery")
    assert isinstance(parsed, exp.Select)
    return parsed


def outputs(node: exp.Expression) -> set[str]:
    """The literal values a CASE/IF expression can produce (its THEN and ELSE strings)."""
    found: set[str] = set()
    for case in node.find_all(exp.Case):
        for branch in case.args.get("ifs") or []:
            value = branch.args.get("true")
            if isinstance(value, exp.Literal) and value.is_string:
                found.add(value.this)
        default = case.args.get("default")
        if isinstance(default, exp.Literal) and default.is_string:
            found.add(default.this)
    return found


def test_the_gcp_mapping_yields_every_focus_1_2_column_once() -> None:
    names = [s.alias_or_name for s in gcp_select().expressions]

    assert len(names) == len(set(names))
    assert {n for n in names if not n.startswith("x_")} == FOCUS_1_2
    assert set(mapping.focus_columns("1.3")) == FOCUS_1_2 | {
        "ServiceProviderName",
        "HostProviderName",
    }


def test_every_service_pair_the_gcp_mapping_emits_is_a_focus_1_2_value() -> None:
    columns = {s.alias_or_name: s for s in gcp_select().expressions}

    categories = outputs(columns["ServiceCategory"])
    subcategories = outputs(columns["ServiceSubcategory"])

    assert categories <= set(ALLOWED_VALUES["ServiceCategory"])
    assert subcategories <= set(ALLOWED_VALUES["ServiceSubcategory"])
    assert "Generative AI" in subcategories


def test_the_convert_statement_inserts_the_run_lineage_and_skips_always_null_columns() -> None:
    sql = mapping.convert_sql("`p.t.gcp_billing_raw`", "`p.t.focus_cost`", "1.3")
    insert = sqlglot.parse_one(sql, read="bigquery")
    assert isinstance(insert, exp.Insert)
    names = [c.name for c in insert.this.expressions]

    assert {"x_focus_version", "x_run_id", "x_run_date", "ServiceProviderName"} <= set(names)
    assert "BillingAccountName" not in names  # CAST(NULL ...) in the mapping
    assert "'1.3'" in sql


def test_the_native_mapping_yields_every_focus_1_2_column_and_the_provider_json() -> None:
    names = native.mapping_columns()

    assert len(names) == len(set(names))
    assert set(names) == FOCUS_1_2 | {"x_export_time", "x_provider_columns"}
    assert set(native.focus_types()) == FOCUS_1_2


def schema(*fields: tuple[str, str]) -> list[bigquery.SchemaField]:
    return [bigquery.SchemaField(n, t) for n, t in fields]


REQUIRED = [(c, "NUMERIC" if "Cost" in c else "STRING") for c in native.REQUIRED]


def test_an_export_missing_a_required_column_is_refused_naming_it() -> None:
    fields = schema(*[(n, t) for n, t in REQUIRED if n != "ChargeCategory"])

    with pytest.raises(StepError) as refused:
        native.normalized_source_sql("`p.d.t`", fields, None)

    assert refused.value.code == "source_schema"
    assert "ChargeCategory" in str(refused.value)


def test_the_normalized_export_has_every_column_exact_money_and_one_json_of_x_columns() -> None:
    fields = schema(
        *[(n, t) for n, t in REQUIRED if n != "ListCost"],
        ("ListCost", "FLOAT64"),
        ("x_CostType", "STRING"),
        ("x_ServiceId", "STRING"),
    )

    sql = native.normalized_source_sql("`p.d.t`", fields, "_PARTITIONTIME")
    select = sqlglot.parse_one(sql, read="bigquery").find(exp.Select)
    assert select is not None
    by_name = {s.alias_or_name: s.sql("bigquery") for s in select.expressions}

    assert set(by_name) == set(native.focus_types()) | {"x_ExportTime", "x_provider_columns"}
    assert "PARSE_NUMERIC" in by_name["ListCost"]
    assert "NULL" in by_name["InvoiceId"]
    assert "x_CostType" in by_name["x_provider_columns"]
    assert "x_ServiceId" in by_name["x_provider_columns"]
    where = select.args["where"].sql("bigquery")
    assert "_PARTITIONTIME >= @partitions_from" in where

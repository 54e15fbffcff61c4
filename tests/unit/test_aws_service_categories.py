"""CUR 2.0 ServiceCategory: the mapping SQL holds exactly the Foundation's product-code table."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import sqlglot
from sqlglot import exp

HERE = Path(__file__).resolve().parents[2] / "shared" / "sources" / "aws"
# FOCUS 1.2 ServiceCategory allowed values (specification, ServiceCategory column).
FOCUS_12_CATEGORIES = {
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
    "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
    "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security",
    "Storage", "Web", "Other",
}  # fmt: skip


def _csv() -> dict[str, str]:
    with (HERE / "service_categories.csv").open() as handle:
        return {r["product_code"]: r["ServiceCategory"] for r in csv.DictReader(handle)}


def _sql_mapping() -> dict[str, str]:
    text = (HERE / "cur2_to_focus.sql").read_text()
    sql = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    sql = re.sub(r"\{(\w+)\}", r"\1", sql)
    tree = sqlglot.parse_one(sql, read="bigquery")
    case = next(a.this for a in tree.find_all(exp.Alias) if a.alias == "service_category")
    mapping: dict[str, str] = {}
    for branch in case.args["ifs"]:
        condition = branch.this
        assert isinstance(condition, exp.In)
        assert condition.this.name == "line_item_product_code"
        for code in condition.expressions:
            assert code.name not in mapping, f"{code.name} is mapped twice"
            mapping[code.name] = branch.args["true"].name
    assert case.args["default"].name == "Other"
    return mapping


def test_the_mapping_sql_maps_every_product_code_of_the_table_and_nothing_else() -> None:
    assert _sql_mapping() == _csv()


def test_every_category_is_a_focus_12_value() -> None:
    assert set(_csv().values()) <= FOCUS_12_CATEGORIES
    assert len(_csv()) >= 150  # the full table, not a handful

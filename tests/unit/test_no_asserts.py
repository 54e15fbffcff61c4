"""Shipped code never answers through an AssertionError (and `python -O` would strip the check)."""

from __future__ import annotations

import ast

from shared.platform.settings import REPO_ROOT

SHIPPED = ("shared", "functions", "jobs")


def test_no_assert_statement_in_code_that_is_deployed() -> None:
    found = []
    paths = [REPO_ROOT / "main.py"]
    for package in SHIPPED:
        paths.extend(sorted((REPO_ROOT / package).rglob("*.py")))
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        found += [
            f"{path.relative_to(REPO_ROOT)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Assert)
        ]
    assert not found, f"replace these asserts with an explicit error: {found}"

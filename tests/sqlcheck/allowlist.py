"""Statements the GoogleSQL check lets through, each with the reason right next to it.

An entry matches a recorded statement by a fragment of its SQL text and a
fragment of the code location that sent it (both must match). Keep this empty
unless GoogleSQL and BigQuery really disagree, or a test sends a statement
that must fail on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Allowed:
    sql_contains: str
    sender_contains: str
    reason: str


ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "SELECT no_such_column FROM UNNEST([1])",
        "tests/integration/test_executor.py",
        "the executor test sends SQL that must fail, to see a BigQuery error reported",
    ),
    Allowed(
        ".no_such_table`",
        "shared/pipelines/steps/dq.py",
        "test_dq checks that an expectation on a missing table fails alone, not the step",
    ),
    Allowed(
        # BigQuery documents this DDL (data-definition-language#alter_table_add_column_statement,
        # https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language).
        ".aws_cur2_raw` ADD COLUMN IF NOT EXISTS `",
        "shared/tenancy/tenant_dataset.py",
        "DDL BigQuery accepts; the analyzer admits only query and DML kinds because the same "
        "options vet tenant SQL, where DDL must stay refused (sql_analyzer.STATEMENT_KINDS)",
    ),
    Allowed(
        "WHERE `NoSuchColumn` = @p0",
        "shared/pipelines/steps/dq.py",
        "test_dq checks that an expectation on a missing column fails alone, not the step",
    ),
)


def allowed(sql: str, senders: Iterable[str]) -> str | None:
    """The reason a statement is let through, or None."""
    for entry in ALLOWED:
        if entry.sql_contains in sql and any(entry.sender_contains in s for s in senders):
            return entry.reason
    return None

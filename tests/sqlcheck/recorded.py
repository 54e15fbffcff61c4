"""The statements a test session sent to BigQuery, deduplicated and analyzed by ZetaSQL."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.platform.sql_analyzer import (
    BIGQUERY_FUNCTIONS,
    AnalysisError,
    SqlAnalyzer,
    SqlRefused,
    split_path,
)
from tests.sqlcheck.allowlist import allowed
from tests.sqlcheck.catalog import tables_for

# Per-run random suffixes of scratch tables: the same statement every run.
_RANDOM_SUFFIX = re.compile(r"\b(_dryrun|_stg_[a-z_]+?)_[0-9a-f]{8,}\b")


@dataclass
class Statement:
    """One distinct statement: a representative recording and every code location that sent it."""

    key: str
    record: dict[str, Any]
    senders: set[str] = field(default_factory=set)


@dataclass
class Failure:
    statement: Statement
    error: AnalysisError

    def describe(self) -> str:
        senders = "\n".join(f"    sent by {s}" for s in sorted(self.statement.senders))
        sql = "\n".join(f"    | {line}" for line in self.statement.record["sql"].splitlines())
        return f"GoogleSQL: {self.error}\n{senders}\n{sql}"


@dataclass
class Report:
    statements: list[Statement]
    failures: list[Failure]
    allowed: list[tuple[Statement, str]]
    records: int


def load(directory: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


def normalized(record: dict[str, Any], paths: list[tuple[str, ...]]) -> str:
    """The statement with its per-test names (project, datasets, scratch suffixes) as placeholders,
    so one statement sent for many random tenants counts once."""
    sql = record["sql"]
    names: dict[str, str] = {record["project"]: "{project}"}
    for path in paths:
        if len(path) >= 2:
            dataset = path[-2] if path[-2].upper() != "INFORMATION_SCHEMA" else path[-3]
            kind = "{central}" if dataset == record.get("central_dataset") else "{dataset}"
            names.setdefault(dataset, kind)
    for name, placeholder in sorted(names.items(), key=lambda item: -len(item[0])):
        sql = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", placeholder, sql)
    sql = _RANDOM_SUFFIX.sub(r"\1_{random}", sql)
    parameters = json.dumps(record["parameters"], sort_keys=True)
    return f"{sql}\n-- {parameters} default={record.get('default_dataset') is not None}"


def analyze_records(analyzer: SqlAnalyzer, records: list[dict[str, Any]]) -> Report:
    statements: dict[str, Statement] = {}
    parse_failures: list[Failure] = []
    allowed_ones: list[tuple[Statement, str]] = []
    paths_of: dict[str, list[tuple[str, ...]]] = {}
    for record in records:
        try:
            paths = [split_path(p) for p in analyzer.table_names(record["sql"])]
        except SqlRefused as refused:
            statement = Statement(record["sql"], record, {record["sender"]})
            # An allowlisted kind the analyzer does not take (DDL) is refused here already.
            reason = allowed(record["sql"], statement.senders)
            if not reason:
                parse_failures.append(Failure(statement, refused.error))
            elif all(other.record["sql"] != record["sql"] for other, _ in allowed_ones):
                allowed_ones.append((statement, reason))
            continue
        key = normalized(record, paths)
        statement = statements.setdefault(key, Statement(key, record))
        statement.senders.add(record["sender"])
        paths_of.setdefault(key, paths)
    failures = list(parse_failures)
    for key, statement in statements.items():
        record = statement.record
        reason = allowed(record["sql"], statement.senders)
        if reason:
            allowed_ones.append((statement, reason))
            continue
        untyped = [name for name, kind in record["parameters"].items() if kind is None]
        if untyped:
            message = f"parameter(s) {', '.join(untyped)} have no type (an empty STRUCT array)"
            failures.append(Failure(statement, AnalysisError(message)))
            continue
        tables = tables_for(
            paths_of[key],
            project=record["project"],
            central_dataset=record.get("central_dataset"),
            default_dataset=record.get("default_dataset"),
        )
        error = analyzer.analyze(record["sql"], tables, record["parameters"], BIGQUERY_FUNCTIONS)
        if error is not None:
            failures.append(Failure(statement, error))
    return Report(list(statements.values()), failures, allowed_ones, len(records))

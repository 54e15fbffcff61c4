"""Every `.sql` file of the repository, analyzed by ZetaSQL like the statements the suite sends.

A file is one statement. What it reads and binds is declared in `--` comment
lines of its own (docs/sql-check.md is the reference for source authors):

    -- sqlcheck: param run_date DATE
    -- sqlcheck: table {raw} tenant.gcp_billing_raw
    -- sqlcheck: table {source} export.gcp_billing
    -- sqlcheck: allow <reason this file is not a whole statement>

`table TOKEN KIND.NAME` replaces every literal TOKEN in the text (whatever
templating the loader uses: `{raw}`, `${raw}`, ...) with the table's full path.
KIND is `tenant` (schemas/tenant/NAME.json, the log views), `central`
(schemas/central/NAME.json) or `export` (`gcp_billing`: Google's billing export).
Unqualified table names resolve in the tenant dataset, as under a default
dataset. `allow` skips the file and says why in the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from shared.platform.settings import REPO_ROOT
from shared.platform.sql_analyzer import BIGQUERY_FUNCTIONS, AnalysisError, SqlAnalyzer, Table
from tests.sqlcheck.catalog import (
    PARTITION_PSEUDO_COLUMNS,
    central_columns,
    export_columns,
    tenant_columns,
)

PROJECT = "convergence-check"
CENTRAL = "central"
TENANT = "tenant"
EXPORT_DATASET = "billing_export"
EXPORTS = {"gcp_billing": "gcp_billing_export_resource_v1_0123AB_4567CD_89EF01"}
_SKIPPED_DIRS = {".git", "node_modules", ".local", ".pytest_cache", ".mypy_cache", "__pycache__"}
_DIRECTIVE = re.compile(r"^\s*--\s*sqlcheck:\s*(\w+)\s*(.*?)\s*$")


class DeclarationError(ValueError):
    """A `-- sqlcheck:` line that can't be understood."""


@dataclass
class SqlFile:
    path: Path
    sql: str
    parameters: dict[str, str] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    allowed: str | None = None


def discover(root: Path = REPO_ROOT) -> list[Path]:
    """Every .sql file under the repository, minus virtualenvs, node_modules and local data."""
    found = []
    for path in sorted(root.rglob("*.sql")):
        parts = path.relative_to(root).parts
        if any(p in _SKIPPED_DIRS or p.startswith(".venv") for p in parts):
            continue
        found.append(path)
    return found


def _table(kind_name: str) -> tuple[tuple[str, ...], Table]:
    kind, _, name = kind_name.partition(".")
    if kind == "tenant":
        path: tuple[str, ...] = (PROJECT, TENANT, name)
        columns = tenant_columns(name)
        pseudo: tuple[tuple[str, str], ...] = ()
    elif kind == "central":
        path, columns, pseudo = (PROJECT, CENTRAL, name), central_columns(name), ()
    elif kind == "export" and name in EXPORTS:
        path = (PROJECT, EXPORT_DATASET, EXPORTS[name])
        columns, pseudo = export_columns(), PARTITION_PSEUDO_COLUMNS
    else:
        raise DeclarationError(
            f"unknown table {kind_name!r} (tenant.X, central.X, export.gcp_billing)"
        )
    if columns is None:
        raise DeclarationError(f"no schema for {kind_name!r} in schemas/")
    return path, Table(path, columns, pseudo)


def parse(path: Path) -> SqlFile:
    """Reads the declarations and replaces each table token with its full path."""
    text = path.read_text(encoding="utf-8")
    parsed = SqlFile(path, text)
    tokens: dict[str, str] = {}
    for line in text.splitlines():
        match = _DIRECTIVE.match(line)
        if not match:
            continue
        directive, rest = match[1], match[2]
        words = rest.split()
        if directive == "param" and len(words) >= 2:
            parsed.parameters[words[0].lstrip("@")] = " ".join(words[1:])
        elif directive == "table" and len(words) == 2:
            table_path, table = _table(words[1])
            tokens[words[0]] = "`" + ".".join(table_path) + "`"
            parsed.tables.append(table)
        elif directive == "allow" and rest:
            parsed.allowed = rest
        else:
            raise DeclarationError(f"can't read {line.strip()!r}")
    # Longest token first, so `{raw}` never eats part of `{raw_staging}`.
    for token, replacement in sorted(tokens.items(), key=lambda item: -len(item[0])):
        parsed.sql = parsed.sql.replace(token, replacement)
    return parsed


def default_tables() -> list[Table]:
    """Unqualified names resolve in the tenant dataset (a default dataset)."""
    from tests.sqlcheck.catalog import schemas

    names = [*schemas().tenant, "pipeline_runs", "step_logs", "dq_results"]
    tables = []
    for name in names:
        columns = tenant_columns(name)
        if columns:
            tables += [Table((name,), columns), Table((TENANT, name), columns)]
    return tables


def check(analyzer: SqlAnalyzer, path: Path) -> AnalysisError | None:
    """GoogleSQL's error for the file, or None; a bad declaration is an error too."""
    try:
        parsed = parse(path)
    except DeclarationError as exc:
        return AnalysisError(f"sqlcheck declaration: {exc} (see docs/sql-check.md)")
    if parsed.allowed:
        return None
    tables = parsed.tables + default_tables()
    return analyzer.analyze(parsed.sql, tables, parsed.parameters, BIGQUERY_FUNCTIONS)

"""The tenant SQL sandbox: what a `bq_etl.query` step may run, decided by parsing with sqlglot.

A tenant's SQL is checked twice: when a config is uploaded (`validate_tenant_sql`
from the config API) and again right before the job runs, from the stored text,
so a tampered config row gains nothing. The rules:

- exactly one statement, and it is a query: SELECT, WITH ... SELECT, or set
  operations (UNION/INTERSECT/EXCEPT) of those; nothing that writes, defines,
  scripts, exports or calls (DML, DDL, DECLARE/SET, EXPORT DATA, CALL, ...);
- every table is in the tenant's own dataset: `table` (resolved to the tenant
  dataset), `dataset.table` or `project.dataset.table` with the platform project.
  A name that is neither (another dataset or project, INFORMATION_SCHEMA, a
  table-valued function like EXTERNAL_QUERY or ML.PREDICT, a 4-part name) is
  refused. (An implicit array join on an alias, `FROM t AS x, x.arr`, is parsed
  as the UNNEST it is, not as a table in a dataset `x`.)
- no qualified function calls (`dataset.fn()`: a persistent UDF elsewhere could
  read tables we never saw) and none of the functions that reach outside BigQuery;
- `${tenant_id}` and `${run_date}` are the only substitutions. They become the
  query parameters `@tenant_id` and `@run_date` (never pasted text); any other
  `${...}`, `@param`, `@@system_variable` or `?` is refused.

What runs is the SQL regenerated from the checked tree, with every real table
fully qualified, so the text we checked and the text BigQuery sees are the same.

Where GoogleSQL's reference analyzer is configured (`SqlAnalyzer`, ZetaSQL: the
local stack and the tests; not the deployed function, see docs/decisions.md),
two more checks follow, with a `TenantCatalog`:
- ZetaSQL's own parser lists the tables (ExtractTableNamesFromStatement): every
  one must be the tenant's, and the list must be the one sqlglot found, so an
  escape has to fool two independent parsers;
- the statement is analyzed against the tenant's own tables (their schemas),
  with `@tenant_id STRING` and `@run_date DATE`: a query BigQuery would refuse
  (unknown column, wrong types, a missing function) is refused here with
  GoogleSQL's message and its line and column in the tenant's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from shared.platform.sql_analyzer import (
    BIGQUERY_FUNCTIONS,
    AnalysisError,
    SqlAnalyzer,
    SqlRefused,
    Table,
    columns_of,
    split_path,
)

if TYPE_CHECKING:
    from shared.deps import Deps

# Substitutions a tenant may write, and the query parameter each one becomes.
SUBSTITUTIONS = {"tenant_id": "tenant_id", "run_date": "run_date"}
# Their GoogleSQL types, as bq_etl binds them.
PARAMETER_TYPES = {"tenant_id": "STRING", "run_date": "DATE"}
_SUBSTITUTION = re.compile(r"\$\{([^}]*)\}")
MAX_SQL_CHARS = 100_000

# Statement and clause kinds that are never a plain query. Looked up by name so
# a sqlglot upgrade that renames one can't make the check silently vanish: a
# missing name fails at import (see `_denied_nodes`).
_DENIED_NODE_NAMES = (
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Create",
    "Drop",
    "Alter",
    "Command",
    "Export",
    "Declare",
    "Set",
    "Transaction",
    "Commit",
    "Rollback",
    "Copy",
    "LoadData",
    "TruncateTable",
    "Into",
    "Use",
    "Describe",
    "Predict",
)
# Functions that reach outside the tenant's tables (federated queries, change
# history of arbitrary tables, ML/AI over models and connections).
_DENIED_FUNCTIONS = frozenset(
    {
        "EXTERNAL_QUERY",
        "EXTERNAL_OBJECT_TRANSFORM",
        "APPENDS",
        "CHANGES",
        "VECTOR_SEARCH",
        "GAP_FILL",
        "OBJ",
        "READ_FILE",
        "SESSION_USER",
    }
)
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _denied_nodes() -> tuple[type[exp.Expression], ...]:
    found = []
    for name in _DENIED_NODE_NAMES:
        node = getattr(exp, name, None)
        if node is None:
            raise ImportError(f"sqlglot has no expression {name}: review the SQL sandbox")
        found.append(node)
    return tuple(found)


_DENIED_NODES = _denied_nodes()


class TenantSqlError(ValueError):
    """Tenant SQL that must not run; the message says why, for the tenant to fix it."""


Columns = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TenantCatalog:
    """GoogleSQL's analyzer, and the columns of a table in the tenant's dataset (None: no such
    table). Built by `tenant_catalog` from the dependencies; None where no analyzer runs."""

    analyzer: SqlAnalyzer
    columns: Callable[[str], Columns | None]


def tenant_catalog(deps: Deps, dataset: str) -> TenantCatalog | None:
    """The tenant's own tables for the analyzer: the platform's from `schemas/` (and the log
    views), any other from the dataset itself (one tables.get each); None without an analyzer."""
    analyzer = deps.sql_analyzer
    if analyzer is None:
        return None
    from shared.tenancy.tenant_dataset import LOG_VIEWS

    schemas = deps.catalog

    def columns(name: str) -> Columns | None:
        if name in schemas.tenant:
            return columns_of(schemas.tenant[name].schema_)
        if name in LOG_VIEWS:
            return columns_of(schemas.central[LOG_VIEWS[name]].schema_)
        return _live_columns(deps, dataset, name)

    return TenantCatalog(analyzer, columns)


def _live_columns(deps: Deps, dataset: str, name: str) -> Columns | None:
    from google.api_core import exceptions as gexc

    warehouse = deps.warehouse
    if name.endswith("*"):
        # A wildcard table has the schema of the newest table it matches.
        prefix = name[:-1]
        try:
            listed = list(
                warehouse.client.list_tables(
                    f"{warehouse.project}.{dataset}", timeout=30, retry=warehouse.api_retry
                )
            )
        except gexc.NotFound:
            return None
        matching = [t for t in listed if t.table_id.startswith(prefix)]
        if not matching:
            return None
        name = max(matching, key=lambda t: t.created.timestamp() if t.created else 0.0).table_id
    try:
        table = warehouse.client.get_table(
            f"{warehouse.project}.{dataset}.{name}", timeout=30, retry=warehouse.api_retry
        )
    except gexc.NotFound:
        return None
    return columns_of(table.schema)


@dataclass(frozen=True)
class CheckedSql:
    """SQL that passed the sandbox: the text to run and the parameters it uses."""

    sql: str
    parameters: frozenset[str]
    tables: tuple[str, ...]


def validate_tenant_sql(
    sql: str, dataset: str, *, project: str | None = None, catalog: TenantCatalog | None = None
) -> CheckedSql:
    """Checks a tenant's SQL against the rules above; raises TenantSqlError with the reason.

    `project` is the platform project (the settings' by default): the only one a
    three-part table name may name. With `catalog`, GoogleSQL's analyzer checks too.
    """
    if project is None:
        from shared.platform.settings import get_settings

        project = get_settings().gcp_project
    if not isinstance(sql, str) or not sql.strip():
        raise TenantSqlError("the SQL is empty")
    if len(sql) > MAX_SQL_CHARS:
        raise TenantSqlError(f"the SQL is longer than {MAX_SQL_CHARS} characters")
    text = _substitute(sql)
    try:
        statements = [s for s in sqlglot.parse(text, read="bigquery") if s is not None]
    except SqlglotError as exc:
        raise TenantSqlError(f"the SQL does not parse: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise TenantSqlError(f"exactly one statement is allowed, found {len(statements)}")
    tree = statements[0]
    if not _is_query(tree):
        raise TenantSqlError(f"only a SELECT query is allowed, not {tree.key.upper()}")
    for node in tree.walk():
        _check_node(node)
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    tables = [_qualify(table, dataset, project, ctes) for table in tree.find_all(exp.Table)]
    used = frozenset(
        p.this.name for p in tree.find_all(exp.Parameter) if isinstance(p.this, exp.Var)
    )
    if catalog is not None:
        _analyze(sql, dataset, project, {t for t in tables if t}, catalog)
    # Comments dropped: an `@name` inside a comment breaks parameter binding
    # (emulator), and nothing unchecked should ride along.
    return CheckedSql(
        tree.sql(dialect="bigquery", comments=False), used, tuple(t for t in tables if t)
    )


def _substitute(sql: str, *, keep_positions: bool = False) -> str:
    """`${name}` -> `@name`; `keep_positions` pads with spaces so every later
    character keeps its line and column (GoogleSQL's positions are the tenant's)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name not in SUBSTITUTIONS:
            allowed = ", ".join("${" + k + "}" for k in SUBSTITUTIONS)
            raise TenantSqlError(f"unknown substitution ${{{name}}}; only {allowed}")
        # A query parameter, never the value: the value can't change the SQL.
        parameter = "@" + SUBSTITUTIONS[name]
        return parameter.ljust(len(match.group(0))) if keep_positions else parameter

    return _SUBSTITUTION.sub(replace, sql)


def _analyze(
    sql: str, dataset: str, project: str, tables: set[str], catalog: TenantCatalog
) -> None:
    """ZetaSQL's table list must be sqlglot's, all the tenant's own; then the statement
    must analyze against the tenant's tables."""
    text = _substitute(sql, keep_positions=True)
    try:
        paths = [split_path(p) for p in catalog.analyzer.table_names(text)]
    except SqlRefused as refused:
        raise TenantSqlError(_googlesql(refused.error)) from None
    found = set()
    for path in paths:
        qualified = _own_table(path, dataset, project)
        if qualified is None:
            raise TenantSqlError(f"table {'.'.join(path)} is outside your dataset {dataset}")
        found.add(qualified)
    if found != tables:
        # Two parsers read different tables out of one text: refuse rather than guess.
        differing = ", ".join(sorted(found ^ tables)) or "?"
        raise TenantSqlError(f"the SQL's tables are ambiguous ({differing}); write them plainly")
    entries = []
    for qualified in sorted(found):
        name = qualified.rsplit(".", 1)[1]
        columns = catalog.columns(name)
        if columns is None:
            raise TenantSqlError(f"table {name} does not exist in your dataset {dataset}")
        pseudo = (("_TABLE_SUFFIX", "STRING"),) if name.endswith("*") else ()
        for path in ((name,), (dataset, name), (project, dataset, name)):
            entries.append(Table(path, columns, pseudo))
    error = catalog.analyzer.analyze(text, entries, PARAMETER_TYPES, BIGQUERY_FUNCTIONS)
    if error is not None:
        raise TenantSqlError(_googlesql(error))


def _own_table(path: tuple[str, ...], dataset: str, project: str) -> str | None:
    """`project.dataset.name` if the path names a table of the tenant's dataset."""
    if len(path) == 1:
        return f"{project}.{dataset}.{path[0]}"
    if len(path) == 2 and path[0] == dataset:
        return f"{project}.{dataset}.{path[1]}"
    if len(path) == 3 and path[:2] == (project, dataset):
        return ".".join(path)
    return None


def _googlesql(error: AnalysisError) -> str:
    where = f" (line {error.line}, column {error.column})" if error.line is not None else ""
    return f"BigQuery would refuse this query: {error.message}{where}"


def _is_query(tree: exp.Expr) -> bool:
    while isinstance(tree, exp.Subquery):
        tree = tree.this
    return isinstance(tree, (exp.Select, exp.SetOperation))


def _check_node(node: exp.Expr) -> None:
    if isinstance(node, _DENIED_NODES):
        raise TenantSqlError(f"{node.key.upper()} is not allowed in a query step")
    if isinstance(node, exp.Placeholder):
        raise TenantSqlError("positional parameters (?) are not allowed")
    if isinstance(node, exp.Parameter):
        inner = node.this
        if not isinstance(inner, exp.Var) or inner.name not in SUBSTITUTIONS.values():
            raise TenantSqlError(
                f"parameter {node.sql(dialect='bigquery')} is not allowed; "
                "use ${tenant_id} or ${run_date}"
            )
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        raise TenantSqlError(
            f"qualified function calls are not allowed: {node.sql(dialect='bigquery')[:80]}"
        )
    if isinstance(node, exp.Anonymous):
        name = node.name
        if not _PLAIN_NAME.match(name) or name.upper() in _DENIED_FUNCTIONS:
            raise TenantSqlError(f"function {name} is not allowed")


def _qualify(table: exp.Table, dataset: str, project: str, ctes: set[str]) -> str | None:
    """Checks one table reference and rewrites it to `project`.`dataset`.name."""
    if not isinstance(table.this, exp.Identifier):
        # FROM EXTERNAL_QUERY(...), FROM ML.PREDICT(...), a 4-part name, ...
        raise TenantSqlError(f"table {table.sql(dialect='bigquery')[:80]} is not allowed")
    parts = [p.name for p in table.parts]
    shown = ".".join(parts)
    if any("information_schema" in part.lower() for part in parts):
        raise TenantSqlError("INFORMATION_SCHEMA is not allowed")
    catalog, db, name = table.catalog, table.db, table.name
    if not db:
        if catalog:
            raise TenantSqlError(f"table {shown} is not allowed")
        if name.lower() in ctes:
            return None  # a WITH clause's name, not a table
    elif db != dataset:
        raise TenantSqlError(f"table {shown} is outside your dataset {dataset}")
    if catalog and catalog != project:
        raise TenantSqlError(f"table {shown} is in another project")
    table.set("catalog", exp.to_identifier(project, quoted=True))
    table.set("db", exp.to_identifier(dataset, quoted=True))
    table.set("this", exp.to_identifier(name, quoted=True))
    return f"{project}.{dataset}.{name}"


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__

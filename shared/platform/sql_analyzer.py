"""The SQL analyzer port: GoogleSQL's reference analyzer (ZetaSQL) resolving a statement.

`SqlAnalyzer.analyze` resolves one statement against the tables it may read
(names, types, functions, parameters, exactly as GoogleSQL defines them) and
returns GoogleSQL's own error, with its position, or None. `table_names` lists
the tables a statement reads, from ZetaSQL's parser alone (no catalog), which
is the second opinion the tenant SQL sandbox asks for.

The adapter talks to ZetaSQL's local gRPC service (`remote_server.so` from the
`@fivetrandevelopers/zetasql` npm package) at `SQL_ANALYZER_ADDRESS`. Its Python
stubs are generated at install time (`make zetasql-stubs`, gitignored), so they
are imported by name, on first use, only where an address is configured: the
local stack and the tests. The deployed function has none (see
docs/decisions.md, "SQL analysis").
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# GoogleSQL as BigQuery documents it, not ZetaSQL's maximum: every feature is one
# BigQuery's GoogleSQL reference documents (docs/decisions.md lists why each is
# on). Anything else (proto types, INT32/UINT64, lambdas, DML RETURNING, array
# ordering and equality, ...) stays off, so SQL that needs it is refused here as
# BigQuery refuses it.
# https://cloud.google.com/bigquery/docs/reference/standard-sql/
BIGQUERY_FEATURES = (
    # Types: data-types page (NUMERIC, BIGNUMERIC, JSON, INTERVAL, RANGE,
    # GEOGRAPHY, DATETIME/TIME, parameterized STRING(n)/NUMERIC(p, s)).
    "FEATURE_NUMERIC_TYPE",
    "FEATURE_BIGNUMERIC_TYPE",
    "FEATURE_JSON_TYPE",
    "FEATURE_INTERVAL_TYPE",
    "FEATURE_RANGE_TYPE",
    "FEATURE_GEOGRAPHY",
    "FEATURE_V_1_2_CIVIL_TIME",
    "FEATURE_PARAMETERIZED_TYPES",
    # Query syntax page: window functions, TABLESAMPLE, QUALIFY, PIVOT/UNPIVOT,
    # WITH RECURSIVE and WITH inside subqueries, ROLLUP/GROUPING SETS, SELECT *
    # EXCEPT/REPLACE, FOR SYSTEM_TIME AS OF, ORDER BY ... NULLS FIRST/LAST,
    # GROUP BY a STRUCT.
    "FEATURE_ANALYTIC_FUNCTIONS",
    "FEATURE_TABLESAMPLE",
    "FEATURE_V_1_3_QUALIFY",
    "FEATURE_V_1_3_PIVOT",
    "FEATURE_V_1_3_UNPIVOT",
    "FEATURE_V_1_3_WITH_RECURSIVE",
    "FEATURE_V_1_1_WITH_ON_SUBQUERY",
    "FEATURE_GROUP_BY_ROLLUP",
    "FEATURE_V_1_4_GROUPING_SETS",
    "FEATURE_V_1_4_GROUPING_BUILTIN",
    "FEATURE_V_1_1_SELECT_STAR_EXCEPT_REPLACE",
    "FEATURE_V_1_1_FOR_SYSTEM_TIME_AS_OF",
    "FEATURE_V_1_3_NULLS_FIRST_LAST_IN_ORDER_BY",
    "FEATURE_V_1_2_GROUP_BY_STRUCT",
    "FEATURE_TABLE_VALUED_FUNCTIONS",
    "FEATURE_NAMED_ARGUMENTS",
    # Aggregate function calls page: ORDER BY / LIMIT / HAVING MAX|MIN inside an
    # aggregate, IGNORE|RESPECT NULLS.
    "FEATURE_V_1_1_ORDER_BY_IN_AGGREGATE",
    "FEATURE_V_1_1_LIMIT_IN_AGGREGATE",
    "FEATURE_V_1_1_HAVING_IN_AGGREGATE",
    "FEATURE_V_1_1_NULL_HANDLING_MODIFIER_IN_AGGREGATE",
    "FEATURE_V_1_1_NULL_HANDLING_MODIFIER_IN_ANALYTIC",
    # Operators and conversion pages: SAFE. prefix, IS [NOT] DISTINCT FROM, CAST
    # ... FORMAT, CAST between array types, date + integer, arr[0] (= OFFSET),
    # LIKE ANY/ALL, CONCAT of non-string values.
    "FEATURE_V_1_2_SAFE_FUNCTION_CALL",
    "FEATURE_V_1_3_IS_DISTINCT",
    "FEATURE_V_1_3_FORMAT_IN_CAST",
    "FEATURE_V_1_1_CAST_DIFFERENT_ARRAY_TYPES",
    "FEATURE_V_1_3_DATE_ARITHMETICS",
    "FEATURE_V_1_4_BARE_ARRAY_ACCESS",
    "FEATURE_V_1_3_LIKE_ANY_SOME_ALL",
    "FEATURE_V_1_3_CONCAT_MIXED_TYPES",
    # Function pages: JSON functions, the newer string/date-time signatures
    # (INSTR, INITCAP, TRANSLATE, DATE(year, month, day), WEEK(<weekday>), ...),
    # ROUND(x, n, rounding_mode), CBRT, inverse trigonometry, REGEXP_EXTRACT's
    # position/occurrence arguments.
    "FEATURE_JSON_ARRAY_FUNCTIONS",
    "FEATURE_JSON_VALUE_EXTRACTION_FUNCTIONS",
    "FEATURE_JSON_LAX_VALUE_EXTRACTION_FUNCTIONS",
    "FEATURE_JSON_CONSTRUCTOR_FUNCTIONS",
    "FEATURE_JSON_MUTATOR_FUNCTIONS",
    "FEATURE_V_1_3_ADDITIONAL_STRING_FUNCTIONS",
    "FEATURE_V_1_3_DATE_TIME_CONSTRUCTORS",
    "FEATURE_V_1_3_EXTENDED_DATE_TIME_SIGNATURES",
    "FEATURE_V_1_2_WEEK_WITH_WEEKDAY",
    "FEATURE_ROUND_WITH_ROUNDING_MODE",
    "FEATURE_CBRT_FUNCTIONS",
    "FEATURE_INVERSE_TRIG_FUNCTIONS",
    "FEATURE_V_1_3_ALLOW_REGEXP_EXTRACT_OPTIONALS",
    # DML page: UPDATE ... FROM (joins), INSERT without a column list,
    # correlated references in nested DML.
    "FEATURE_DML_UPDATE_WITH_JOIN",
    "FEATURE_V_1_3_OMIT_INSERT_COLUMN_LIST",
    "FEATURE_V_1_2_CORRELATED_REFS_IN_NESTED_DML",
    # Lexical page: project ids with dashes need no backquotes.
    "FEATURE_V_1_3_ALLOW_DASHES_IN_TABLE_NAME",
)
# The statements the platform issues (queries and DML); anything else (DDL,
# scripts, EXPORT DATA, ...) is refused until someone adds it here on purpose.
STATEMENT_KINDS = (
    "RESOLVED_QUERY_STMT",
    "RESOLVED_INSERT_STMT",
    "RESOLVED_UPDATE_STMT",
    "RESOLVED_DELETE_STMT",
    "RESOLVED_MERGE_STMT",
    "RESOLVED_TRUNCATE_STMT",
)

_AT = re.compile(r"\s*\[at (\d+):(\d+)\]\s*$")
_SCALARS = {
    "INT64": "TYPE_INT64",
    "INTEGER": "TYPE_INT64",
    "FLOAT64": "TYPE_DOUBLE",
    "FLOAT": "TYPE_DOUBLE",
    "BOOL": "TYPE_BOOL",
    "BOOLEAN": "TYPE_BOOL",
    "STRING": "TYPE_STRING",
    "BYTES": "TYPE_BYTES",
    "DATE": "TYPE_DATE",
    "DATETIME": "TYPE_DATETIME",
    "TIME": "TYPE_TIME",
    "TIMESTAMP": "TYPE_TIMESTAMP",
    "NUMERIC": "TYPE_NUMERIC",
    "BIGNUMERIC": "TYPE_BIGNUMERIC",
    "JSON": "TYPE_JSON",
    "GEOGRAPHY": "TYPE_GEOGRAPHY",
    "INTERVAL": "TYPE_INTERVAL",
}


@dataclass(frozen=True)
class Table:
    """A table (or view) a statement may read: its path and columns as GoogleSQL types.

    Types are spelled as in GoogleSQL DDL: `INT64`, `ARRAY<STRING>`,
    `STRUCT<amount NUMERIC, type STRING>`. Pseudo-columns (`_PARTITIONTIME` of an
    ingestion-time partitioned table) can be read but are not in `SELECT *`.
    """

    path: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    pseudo_columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Function:
    """A function BigQuery has and ZetaSQL's open-source catalog lacks.

    `signature` is `(ARG_TYPE, ...) -> RESULT_TYPE`; declare only what BigQuery
    documents, with the page in a comment where it is declared.
    """

    name: str
    arguments: tuple[str, ...]
    result: str


# BigQuery functions the platform uses that ZetaSQL's open-source catalog lacks,
# each with its documented signature and a comment citing its page. (None so
# far: every function our SQL calls resolves in ZetaSQL's own catalog.)
BIGQUERY_FUNCTIONS: tuple[Function, ...] = ()


@dataclass(frozen=True)
class AnalysisError:
    """GoogleSQL's refusal: its message and where (1-based line and column), if it said."""

    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.message} [at {self.line}:{self.column}]"


class SqlAnalyzer(Protocol):
    """GoogleSQL's reference analyzer, behind a port (a network service in every setup)."""

    def analyze(
        self,
        sql: str,
        tables: Iterable[Table],
        parameters: Mapping[str, str],
        functions: Iterable[Function] = (),
    ) -> AnalysisError | None:
        """None if the statement resolves against `tables`; else GoogleSQL's error."""
        ...

    def table_names(self, sql: str) -> list[tuple[str, ...]]:
        """The tables the statement reads, from the parser alone; raises AnalysisError
        (as an exception, `SqlRefused`) if it does not parse."""
        ...


class SqlRefused(ValueError):
    """The analyzer refused the statement outright (for `table_names`)."""

    def __init__(self, error: AnalysisError) -> None:
        super().__init__(str(error))
        self.error = error


class AnalyzerUnavailable(RuntimeError):
    """No analyzer could be reached (its stubs or its service are missing)."""


def split_path(segments: Iterable[str]) -> tuple[str, ...]:
    """BigQuery reads `` `p.d.t` `` as three names; ZetaSQL keeps one: split on dots."""
    return tuple(part for segment in segments for part in segment.split("."))


# --- types ------------------------------------------------------------------


def _split_top(text: str) -> list[str]:
    """Splits on commas outside <...>."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def type_proto(spelling: str, type_pb2: Any) -> Any:
    """A GoogleSQL type spelling as ZetaSQL's TypeProto."""
    text = spelling.strip()
    upper = text.upper()
    if upper.startswith("ARRAY<") and upper.endswith(">"):
        element = type_proto(text[len("ARRAY<") : -1], type_pb2)
        return type_pb2.TypeProto(
            type_kind=type_pb2.TYPE_ARRAY,
            array_type=type_pb2.ArrayTypeProto(element_type=element),
        )
    if upper.startswith("STRUCT<") and upper.endswith(">"):
        fields = []
        for part in _split_top(text[len("STRUCT<") : -1]):
            name, _, field_type = part.partition(" ")
            fields.append(
                type_pb2.StructFieldProto(
                    field_name=name, field_type=type_proto(field_type, type_pb2)
                )
            )
        return type_pb2.TypeProto(
            type_kind=type_pb2.TYPE_STRUCT, struct_type=type_pb2.StructTypeProto(field=fields)
        )
    kind = _SCALARS.get(re.split(r"[(\s]", upper, maxsplit=1)[0])
    if kind is None:
        raise ValueError(f"unknown GoogleSQL type {spelling!r}")
    return type_pb2.TypeProto(type_kind=getattr(type_pb2, kind))


def parse_error(message: str) -> AnalysisError:
    """GoogleSQL's one-line message: `... [at LINE:COLUMN]`."""
    match = _AT.search(message)
    if not match:
        return AnalysisError(message.strip())
    return AnalysisError(message[: match.start()].strip(), int(match[1]), int(match[2]))


# --- the gRPC adapter -------------------------------------------------------


@dataclass
class _Stubs:
    service: Any
    local_service: Any
    options: Any
    public_options: Any
    catalog: Any
    table: Any
    types: Any
    function: Any
    public_function: Any
    grpc: Any


def _load_stubs() -> _Stubs:
    try:
        return _Stubs(
            service=importlib.import_module("local_service_pb2_grpc"),
            local_service=importlib.import_module("local_service_pb2"),
            options=importlib.import_module("zetasql.proto.options_pb2"),
            public_options=importlib.import_module("zetasql.public.options_pb2"),
            catalog=importlib.import_module("zetasql.proto.simple_catalog_pb2"),
            table=importlib.import_module("zetasql.public.simple_table_pb2"),
            types=importlib.import_module("zetasql.public.type_pb2"),
            function=importlib.import_module("zetasql.proto.function_pb2"),
            public_function=importlib.import_module("zetasql.public.function_pb2"),
            grpc=importlib.import_module("grpc"),
        )
    except ImportError as exc:
        raise AnalyzerUnavailable(
            "ZetaSQL's gRPC stubs are missing: run `make zetasql-stubs` (needs `make node-deps`)"
        ) from exc


@dataclass
class _Node:
    tables: dict[str, Table] = field(default_factory=dict)
    children: dict[str, _Node] = field(default_factory=dict)


def _compositions(path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every way to write a path with dotted, backquoted groups: (a, b, c) ->
    (a.b.c), (a.b, c), (a, b.c), (a, b, c). BigQuery accepts all of them."""
    if len(path) == 1:
        return [path]
    result = []
    for rest in _compositions(path[1:]):
        result.append((path[0], *rest))
        result.append((f"{path[0]}.{rest[0]}", *rest[1:]))
    return result


class ZetaSqlAnalyzer:
    """ZetaSQL's local service over gRPC (insecure channel: a loopback or private address)."""

    def __init__(self, address: str, timeout: float = 30.0) -> None:
        self.address = address
        self.timeout = timeout
        self._lock = threading.Lock()
        self._stub: Any = None
        self._pb: _Stubs | None = None

    def _connect(self) -> tuple[Any, _Stubs]:
        with self._lock:
            if self._stub is None or self._pb is None:
                pb = _load_stubs()
                channel = pb.grpc.insecure_channel(
                    self.address,
                    options=[
                        ("grpc.max_send_message_length", 64 * 1024 * 1024),
                        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                    ],
                )
                self._stub = pb.service.ZetaSqlLocalServiceStub(channel)
                self._pb = pb
            return self._stub, self._pb

    def language_options(self, pb: _Stubs) -> Any:
        return pb.options.LanguageOptionsProto(
            name_resolution_mode=pb.public_options.NAME_RESOLUTION_DEFAULT,
            product_mode=pb.public_options.PRODUCT_EXTERNAL,
            enabled_language_features=[
                pb.public_options.LanguageFeature.Value(f) for f in BIGQUERY_FEATURES
            ],
            supported_statement_kinds=[
                importlib.import_module(
                    "zetasql.resolved_ast.resolved_node_kind_pb2"
                ).ResolvedNodeKind.Value(k)
                for k in STATEMENT_KINDS
            ],
        )

    def _catalog(self, pb: _Stubs, tables: Iterable[Table], functions: Iterable[Function]) -> Any:
        root = _Node()
        for table in tables:
            for path in _compositions(table.path):
                node = root
                for part in path[:-1]:
                    node = node.children.setdefault(part.lower(), _Node())
                node.tables.setdefault(path[-1].lower(), table)
        language = self.language_options(pb)
        serial = iter(range(1, 1_000_000))

        def build(name: str, node: _Node) -> Any:
            catalog = pb.catalog.SimpleCatalogProto(name=name)
            for table_name, table in node.tables.items():
                columns = [
                    pb.table.SimpleColumnProto(name=c, type=type_proto(t, pb.types))
                    for c, t in table.columns
                ] + [
                    pb.table.SimpleColumnProto(
                        name=c, type=type_proto(t, pb.types), is_pseudo_column=True
                    )
                    for c, t in table.pseudo_columns
                ]
                catalog.table.append(
                    pb.table.SimpleTableProto(
                        name=table_name,
                        full_name=".".join(table.path),
                        serialization_id=next(serial),
                        column=columns,
                    )
                )
            for child_name, child in node.children.items():
                catalog.catalog.append(build(child_name, child))
            return catalog

        catalog = build("bigquery", root)
        catalog.builtin_function_options.CopyFrom(
            pb.options.ZetaSQLBuiltinFunctionOptionsProto(language_options=language)
        )
        for function in functions:
            catalog.custom_function.append(self._function(pb, function))
        return catalog

    def _function(self, pb: _Stubs, function: Function) -> Any:
        def argument(spelling: str) -> Any:
            return pb.function.FunctionArgumentTypeProto(
                kind=pb.public_function.ARG_TYPE_FIXED,
                type=type_proto(spelling, pb.types),
                num_occurrences=1,
            )

        return pb.function.FunctionProto(
            name_path=[function.name],
            group="BigQuery",
            mode=pb.public_function.FunctionEnums.SCALAR,
            signature=[
                pb.function.FunctionSignatureProto(
                    argument=[argument(a) for a in function.arguments],
                    return_type=argument(function.result),
                    context_id=0,
                )
            ],
        )

    def analyze(
        self,
        sql: str,
        tables: Iterable[Table],
        parameters: Mapping[str, str],
        functions: Iterable[Function] = (),
    ) -> AnalysisError | None:
        stub, pb = self._connect()
        options = pb.options.AnalyzerOptionsProto(
            language_options=self.language_options(pb),
            query_parameters=[
                pb.options.AnalyzerOptionsProto.QueryParameterProto(
                    name=name, type=type_proto(spelling, pb.types)
                )
                for name, spelling in parameters.items()
            ],
            error_message_mode=pb.public_options.ERROR_MESSAGE_ONE_LINE,
            default_timezone="UTC",  # BigQuery's default time zone
            parameter_mode=pb.public_options.PARAMETER_NAMED,
        )
        request = pb.local_service.AnalyzeRequest(
            options=options,
            simple_catalog=self._catalog(pb, tables, functions),
            sql_statement=sql,
        )
        try:
            stub.Analyze(request, timeout=self.timeout)
        except pb.grpc.RpcError as exc:
            return self._refusal(pb, exc)
        return None

    def table_names(self, sql: str) -> list[tuple[str, ...]]:
        stub, pb = self._connect()
        request = pb.local_service.ExtractTableNamesFromStatementRequest(
            sql_statement=sql, options=self.language_options(pb)
        )
        try:
            response = stub.ExtractTableNamesFromStatement(request, timeout=self.timeout)
        except pb.grpc.RpcError as exc:
            raise SqlRefused(self._refusal(pb, exc)) from None
        return [tuple(name.table_name_segment) for name in response.table_name]

    def _refusal(self, pb: _Stubs, exc: Any) -> AnalysisError:
        code = exc.code()
        if code in (pb.grpc.StatusCode.INVALID_ARGUMENT, pb.grpc.StatusCode.NOT_FOUND):
            return parse_error(str(exc.details() or ""))
        raise AnalyzerUnavailable(
            f"the SQL analyzer at {self.address} failed: {code.name} {exc.details()}"
        ) from None


def analyzer_from(address: str | None) -> SqlAnalyzer | None:
    """The configured analyzer, or None where none is deployed."""
    return ZetaSqlAnalyzer(address) if address else None


def columns_of(fields: Sequence[Any]) -> tuple[tuple[str, str], ...]:
    """Schema fields as (name, GoogleSQL type) pairs, nested records too: `schemas/*.json`
    fields (FieldSpec) or the client's SchemaField (a live table's schema)."""

    def spell(spec: Any) -> str:
        kind = str(getattr(spec, "field_type", None) or spec.type).upper()
        if kind in ("RECORD", "STRUCT"):
            kind = "STRUCT<" + ", ".join(f"{f.name} {spell(f)}" for f in spec.fields) + ">"
        return f"ARRAY<{kind}>" if spec.mode == "REPEATED" else kind

    return tuple((spec.name, spell(spec)) for spec in fields)

"""The BigQuery access module: client factory, parameterized queries, retries and job labels."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry

from shared.platform.identifiers import quote_dataset, quote_table
from shared.platform.schemas import FieldSpec, TableSpec
from shared.platform.settings import Settings
from shared.platform.sql_record import record_statement

if TYPE_CHECKING:
    from google.cloud import bigquery
    from google.cloud.bigquery.table import RowIterator

# google.cloud.bigquery (with bigquery-storage, pyarrow and numpy when present)
# is a fifth of a second to import. Domain modules import this module for
# Typed, Records and the Warehouse type, so the client library is imported in
# the functions below, on first use: a request that never reaches the
# warehouse (a CORS preflight, a refused key) never pays for it.

log = logging.getLogger(__name__)

# Production BigQuery aborts one of two concurrent mutating DML statements on
# the same table with these messages, and refuses a mutating statement outright
# when 20 are already queued against the table (the usage table takes every
# admission of every tenant). Neither statement applied, so issuing it again
# is safe and the outcome is never lost.
_CONCURRENT_DML_MARKERS = (
    "concurrent update",
    "Could not serialize access",
    "Transaction is aborted due to concurrent update",
    "Too many DML statements outstanding against table",
)
_TRANSIENT = (
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,
    gexc.TooManyRequests,
)


def is_retryable(exc: BaseException) -> bool:
    """Transient server errors, rate limits, and concurrent-DML aborts."""
    if isinstance(exc, _TRANSIENT):
        return True
    if isinstance(exc, (gexc.BadRequest, gexc.Forbidden)):
        message = str(exc)
        if any(marker in message for marker in _CONCURRENT_DML_MARKERS):
            return True
        return "rateLimitExceeded" in message or "jobRateLimitExceeded" in message
    return False


def job_retry(timeout: float = 120.0) -> Retry:
    """Re-issues a whole query job that failed for a retryable reason."""
    return Retry(predicate=is_retryable, initial=0.25, maximum=8.0, multiplier=2.0, timeout=timeout)


def api_retry(unreachable_seconds: float | None) -> Retry:
    """The client's own retry of each API call (connection errors, 5xx), bounded in time when
    the caller must answer soon: an unreachable warehouse then fails the call, not hangs it."""
    from google.cloud.bigquery.retry import DEFAULT_RETRY  # with the client, never before

    if unreachable_seconds is None:
        return DEFAULT_RETRY
    return DEFAULT_RETRY.with_timeout(unreachable_seconds)


@dataclass(frozen=True)
class Typed:
    """A parameter whose BigQuery type must be spelled out (e.g. a NULL)."""

    type_: str
    value: Any


@dataclass(frozen=True)
class Records:
    """An ARRAY<STRUCT> parameter, e.g. the rows of a batch: each row maps a field name to
    (BigQuery type, value); read it in SQL with `FROM UNNEST(@name) AS r`, then `r.field`."""

    rows: list[dict[str, tuple[str, Any]]]


def to_parameter(
    name: str, value: Any
) -> bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter:
    """A query parameter from a plain Python value; bool before int, on purpose."""
    from google.cloud import bigquery

    if isinstance(value, (bigquery.ScalarQueryParameter, bigquery.ArrayQueryParameter)):
        return value
    if isinstance(value, Records):
        return bigquery.ArrayQueryParameter(
            name,
            "STRUCT",
            [
                bigquery.StructQueryParameter(
                    None,
                    *(bigquery.ScalarQueryParameter(k, t, v) for k, (t, v) in row.items()),
                )
                for row in value.rows
            ],
        )
    if isinstance(value, Typed):
        if isinstance(value.value, (list, tuple)):
            return bigquery.ArrayQueryParameter(name, value.type_, list(value.value))
        return bigquery.ScalarQueryParameter(name, value.type_, value.value)
    if isinstance(value, (list, tuple)):
        if not value:
            raise TypeError(f"empty array parameter @{name} needs Typed(type, [])")
        element = to_parameter(name, value[0])
        if not isinstance(element, bigquery.ScalarQueryParameter):
            raise TypeError(f"@{name}: an array of arrays or records needs Records or Typed")
        return bigquery.ArrayQueryParameter(name, element.type_, list(value))
    return bigquery.ScalarQueryParameter(name, _scalar_type(name, value), value)


def _scalar_type(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, decimal.Decimal):
        return "NUMERIC"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise TypeError(f"@{name}: naive datetimes are ambiguous; pass an aware UTC datetime")
        return "TIMESTAMP"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, bytes):
        # bqemulator stores BYTES parameters without decoding them; pass bytes
        # as base64 STRING and FROM_BASE64() in SQL, which both engines agree on.
        raise TypeError(f"@{name}: pass bytes as base64 text and use FROM_BASE64(@{name})")
    if value is None:
        raise TypeError(f"@{name} is None: wrap it as Typed('<TYPE>', None)")
    raise TypeError(f"@{name}: unsupported parameter type {type(value).__name__}")


_LABEL_VALUE = re.compile(r"[^a-z0-9_-]")


def job_labels(component: str, tenant_id: str | None = None) -> dict[str, str]:
    """Labels on every job, so billing and audit can attribute cost per tenant."""

    def clean(value: str) -> str:
        return _LABEL_VALUE.sub("_", value.lower())[:63]

    labels = {"app": "convergence", "component": clean(component)}
    if tenant_id:
        labels["tenant_id"] = clean(tenant_id)
    return labels


def query_config(
    params: Mapping[str, Any] | None,
    component: str,
    tenant_id: str | None = None,
    maximum_bytes_billed: int | None = None,
) -> bigquery.QueryJobConfig:
    """Parameters, labels and the byte cap every query job runs with."""
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(
        query_parameters=[to_parameter(k, v) for k, v in (params or {}).items()],
        labels=job_labels(component, tenant_id),
        use_legacy_sql=False,
    )
    if maximum_bytes_billed is not None:
        config.maximum_bytes_billed = maximum_bytes_billed
    return config


def bigquery_client(settings: Settings) -> bigquery.Client:
    """The real client; pointed at bqemulator when BIGQUERY_EMULATOR_HOST is set."""
    from google.cloud import bigquery

    if settings.bigquery_emulator_host:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=settings.gcp_project,
            location=settings.bq_location,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=settings.bigquery_emulator_host),
        )
    return bigquery.Client(project=settings.gcp_project, location=settings.bq_location)


class ConnectionFailures:
    """How many requests to the warehouse failed to connect, and when the last one did.

    The client retries a refused or reset connection for minutes, sleeping in a
    backoff that doubles up to 60 s, so a call can still be asleep after the
    warehouse is back: a probe after the fact then says "reachable" (drill 2,
    docs/drills.md). Counting failures as they happen lets the executor tell
    that an attempt lived through an outage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._last: float | None = None

    def record(self) -> None:
        with self._lock:
            self._count += 1
            self._last = time.monotonic()

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    @property
    def last(self) -> float | None:
        """`time.monotonic()` of the latest failure, None before the first."""
        with self._lock:
            return self._last


def watch_connection_failures(client: bigquery.Client, failures: ConnectionFailures) -> bool:
    """Wraps every transport adapter of the client's requests session so each connection
    error is recorded in `failures` before the client's retry sees it; False when the client
    has no requests session (a test double), which then records nothing."""
    import requests

    # `_http` is the client's transport (google.cloud.client.Client, the documented
    # `_http` constructor argument); it is built lazily, this builds it.
    session = getattr(client, "_http", None)
    if not isinstance(session, requests.Session):
        return False
    for prefix, adapter in list(session.adapters.items()):
        if not isinstance(adapter, _WatchedAdapter):
            session.mount(prefix, cast(Any, _WatchedAdapter(adapter, failures)))
    return True


class _WatchedAdapter:
    """Delegates to the session's own adapter; notes each connection error it raises.
    (A plain class: requests only calls `send` and `close`, and subclassing its
    BaseAdapter would import requests with this module.)"""

    def __init__(self, inner: Any, failures: ConnectionFailures) -> None:
        self.inner = inner
        self.failures = failures

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        import requests

        try:
            return self.inner.send(request, *args, **kwargs)
        except requests.ConnectionError:
            self.failures.record()
            raise

    def close(self) -> None:
        self.inner.close()


class Warehouse:
    """Parameterized SQL against BigQuery with retries and labels; nothing else talks SQL."""

    def __init__(self, client: bigquery.Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.project = settings.gcp_project
        self.connection_failures = ConnectionFailures()
        watch_connection_failures(client, self.connection_failures)

    def table(self, dataset: str, table: str) -> str:
        """A validated, quoted table reference for SQL text."""
        return quote_table(self.project, dataset, table)

    def central(self, table: str) -> str:
        return self.table(self.settings.central_dataset, table)

    @property
    def api_retry(self) -> Retry:
        """The retry every direct client call passes (`retry=warehouse.api_retry`).

        The client's default retries connection errors for 600 s: a request
        holding one would hang through an outage. Functions bound it by
        BQ_UNREACHABLE_SECONDS (then the request answers 503 + Retry-After);
        the runner job, unbounded, rides the outage out.
        """
        return api_retry(self.settings.bq_unreachable_seconds)

    def _run(
        self,
        sql: str,
        params: Mapping[str, Any] | None,
        component: str,
        tenant_id: str | None,
        maximum_bytes_billed: int | None,
    ) -> RowIterator:
        """One statement through jobs.query: a single round trip when the result is small.

        `query_and_wait` polls and pages only when it must (a slow statement, or
        a result bigger than one page); `job_retry` re-issues the whole
        statement on retryable failures, including concurrent-DML aborts.
        """
        config = query_config(params, component, tenant_id, maximum_bytes_billed)
        record_statement(
            sql, config, project=self.project, central_dataset=self.settings.central_dataset
        )
        return self.client.query_and_wait(
            sql,
            job_config=config,
            wait_timeout=self.settings.bq_job_timeout_seconds,
            retry=self.api_retry,
            job_retry=job_retry(),
        )

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        component: str = "platform",
        tenant_id: str | None = None,
        maximum_bytes_billed: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts."""
        rows = self._run(sql, params, component, tenant_id, maximum_bytes_billed)
        return [dict(row.items()) for row in rows]

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        component: str = "platform",
        tenant_id: str | None = None,
        maximum_bytes_billed: int | None = None,
    ) -> int:
        """Runs DML and returns how many rows it changed (the basis of every claim).

        `maximum_bytes_billed` caps a statement that reads tenant cost data (the
        alert MERGEs) at the plan's bytes, as the cost API's reads are.
        """
        rows = self._run(sql, params, component, tenant_id, maximum_bytes_billed)
        return int(rows.num_dml_affected_rows or 0)

    def reachable(self, seconds: float = 5.0) -> bool:
        """Whether the warehouse answers at all within `seconds`; any answer, even an error
        (no such dataset, forbidden), means it is up. Tells an outage from a slow step."""
        try:
            self.client.get_dataset(
                f"{self.project}.{self.settings.central_dataset}",
                retry=api_retry(seconds),
                timeout=seconds,
            )
        except gexc.GoogleAPICallError:
            return True
        except Exception:  # connection refused/reset, the bounded retry given up, a timeout
            return False
        return True

    def existing_tables(self, dataset: str, *, timeout: float | None = None) -> set[str]:
        """Table names of a dataset in one tables.list call (no job); empty if it is missing.

        With `timeout`, one attempt bounded by it (a health probe must answer
        fast when the warehouse is down, not retry for minutes).
        """
        bounded: dict[str, Any] = (
            {"retry": self.api_retry} if timeout is None else {"timeout": timeout, "retry": None}
        )
        try:
            tables = self.client.list_tables(f"{self.project}.{dataset}", **bounded)
            return {t.table_id for t in tables}
        except gexc.NotFound:
            return set()

    def table_shapes(self, dataset: str) -> dict[str, TableShape]:
        """Columns, partitioning and clustering of every table, in ONE INFORMATION_SCHEMA query.

        A `get_table` per table would be one REST call each; the COLUMNS view
        carries everything a drift check needs (`is_partitioning_column`,
        `clustering_ordinal_position`) for the whole dataset at once. Types come
        back in SQL spelling (`INT64`, `ARRAY<STRING>`, `STRUCT<...>`,
        `NUMERIC(10, 2)`) and are reduced to the API's type names here.
        """
        try:
            rows = self.query(
                "SELECT table_name, column_name, data_type, is_partitioning_column, "
                "clustering_ordinal_position "
                f"FROM {quote_dataset(self.project, dataset)}.INFORMATION_SCHEMA.COLUMNS "
                "ORDER BY table_name, ordinal_position",
                component="bootstrap",
            )
        except gexc.NotFound:
            return {}
        shapes: dict[str, TableShape] = {}
        clustering: dict[str, list[tuple[int, str]]] = {}
        for row in rows:
            name = str(row["table_name"])
            shape = shapes.setdefault(name, TableShape(name))
            column = str(row["column_name"])
            shape.columns[column] = _api_type(str(row["data_type"]))
            if row["is_partitioning_column"] == "YES":
                shape.partition_field = column
            if row["clustering_ordinal_position"] is not None:
                position = int(row["clustering_ordinal_position"])
                clustering.setdefault(name, []).append((position, column))
        for name, fields in clustering.items():
            shapes[name].clustering_fields = [column for _, column in sorted(fields)]
        return shapes

    def create_dataset(self, dataset_id: str, *, description: str, labels: dict[str, str]) -> bool:
        """Creates the dataset; False if it already exists (creation succeeds exactly once)."""
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.project}.{dataset_id}")
        dataset.location = self.settings.bq_location
        dataset.description = description
        dataset.labels = labels
        try:
            self.client.create_dataset(dataset, timeout=30, retry=self.api_retry)
        except gexc.Conflict:
            return False
        return True

    def dataset_labels(self, dataset_id: str) -> dict[str, str] | None:
        """The dataset's labels, or None if it does not exist."""
        try:
            return dict(
                self.client.get_dataset(
                    f"{self.project}.{dataset_id}", timeout=30, retry=self.api_retry
                ).labels
                or {}
            )
        except gexc.NotFound:
            return None

    def create_table(self, dataset_id: str, spec: TableSpec) -> bool:
        """Creates a table from its schema file; False if it already exists."""
        try:
            self.client.create_table(
                table_from_spec(self.project, dataset_id, spec), timeout=30, retry=self.api_retry
            )
        except gexc.Conflict:
            return False
        return True


@dataclass
class TableShape:
    """What a drift check compares: column types, partition column, clustering order."""

    name: str
    columns: dict[str, str] = field(default_factory=dict)
    partition_field: str | None = None
    clustering_fields: list[str] = field(default_factory=list)


_SQL_TYPE_ALIASES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "STRUCT": "RECORD"}


def _api_type(data_type: str) -> str:
    """SQL type spelling -> API type name.

    `ARRAY<STRING>` -> STRING (the mode says REPEATED), `STRUCT<...>` -> RECORD,
    `NUMERIC(9)` -> NUMERIC.
    """
    value = data_type.strip().upper()
    if value.startswith("ARRAY<") and value.endswith(">"):
        value = value[len("ARRAY<") : -1]
    value = re.split(r"[<(]", value, maxsplit=1)[0].strip()
    return _SQL_TYPE_ALIASES.get(value, value)


def _schema_field(spec: FieldSpec) -> bigquery.SchemaField:
    from google.cloud import bigquery

    return bigquery.SchemaField(
        spec.name,
        spec.type,
        mode=spec.mode,
        description=spec.description,
        fields=[_schema_field(f) for f in spec.fields or ()],
    )


def table_from_spec(project: str, dataset: str, spec: TableSpec) -> bigquery.Table:
    """A schema file as the client's Table: columns, description, partitioning, clustering."""
    from google.cloud import bigquery

    table = bigquery.Table(
        f"{project}.{dataset}.{spec.table}", schema=[_schema_field(f) for f in spec.schema_]
    )
    table.description = spec.description
    expiration = spec.timePartitioning.expirationMs
    table.time_partitioning = bigquery.TimePartitioning(
        type_=spec.timePartitioning.type,
        field=spec.timePartitioning.field,
        expiration_ms=int(expiration) if expiration else None,
    )
    table.clustering_fields = list(spec.clustering.fields)
    return table

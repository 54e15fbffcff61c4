"""Reads AWS Data Exports by manifest into a tenant's raw table, one billing period at a time.

Delivery (https://docs.aws.amazon.com/cur/latest/userguide/dataexports-export-delivery.html):
an export writes `data/BILLING_PERIOD=YYYY-MM/` files and, only after all of
them, a manifest under `metadata/BILLING_PERIOD=YYYY-MM/`
(https://docs.aws.amazon.com/cur/latest/userguide/dataexports-manifest.html:
`columns` [{name, type}], `dataFiles` [s3:// URIs], `executionId`). A period is
read from its newest manifest and REPLACES that config's whole period: the
files are streamed into a per-run staging table (bounded memory: Arrow record
batches, a spool file flushed into a load job every FLUSH_ROWS rows), then one
DELETE and one INSERT ... SELECT move them into the raw table, so every raw row
is DML-created and a failure before the DELETE leaves the period untouched.

Exactness: money becomes NUMERIC's own type before it leaves the runner: a
Parquet double is taken as its shortest round-trip text (what AWS wrote), a CSV
cell as written (checked to be a number), and either is cast by Arrow to
decimal and rounded to NUMERIC's 9 places half away from zero (as PARSE_NUMERIC
rounds), then staged as Parquet DECIMAL(38, 9), which a load job writes into a
NUMERIC column as is. The reader sums the billed column with pyarrow.compute
over those decimals and refuses a landing whose raw total or row count differs.
Every column is converted by Arrow kernels, batch by batch; no per-row Python
runs on the Parquet path.

Bad input fails the step with a StepError naming the file and the column: a
manifest naming a missing file, a truncated Parquet file, a CSV cell of the
wrong type, a missing required column, two currencies in one period, an export
whose columns match no known version (or not the configured one).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shared.pipelines.context import StepError
from shared.sources.aws.access import AwsExportAccess, export_root
from shared.sources.aws.columns import (
    BILLED,
    CURRENCY,
    EXPORT_COLUMNS,
    REQUIRED,
    ExportColumns,
    detect_export_type,
)
from shared.sources.identity import AccessProblem

# Rows per staging load job: bounds the spool file; few loads keep the emulator fast.
FLUSH_ROWS = 500_000
BATCH_ROWS = 65_536
# AWS rewrites a closed month for about two weeks: re-read it for this many days.
RESTATEMENT_DAYS = 15
NINE = Decimal("0.000000001")
_NUMBER = r"^\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
# Map text json.dumps writes unchanged apart from quote and backslash escapes.
_JSON_PLAIN = r"^[\x20-\x7e]*$"
NUMERIC = pa.decimal128(38, 9)
# Exact decimal types a money text is parsed into before rounding to 9 places:
# the narrow one holds every ordinary amount and is the faster kernel.
WIDE = (pa.decimal128(38, 18), pa.decimal256(76, 38))
NUMERIC_LIMIT = Decimal(10) ** 29
_PERIOD = re.compile(r"BILLING_PERIOD=(\d{4}-\d{2})/")


@dataclass(frozen=True)
class Manifest:
    key: str
    period: dt.date
    columns: tuple[str, ...]
    files: tuple[str, ...]  # object keys in the export's bucket


@dataclass
class Landed:
    """What one period's read produced: rows, the source's own billed total, currencies."""

    manifest: Manifest
    export_type: str
    rows: int = 0
    billed_total: Decimal = Decimal(0)
    currencies: set[str] = field(default_factory=set)
    loads: int = 0


def periods_for(run_date: dt.date, restatement_days: int = RESTATEMENT_DAYS) -> list[dt.date]:
    """A run date's billing periods: its month, and the previous one while AWS may restate it."""
    current = run_date.replace(day=1)
    previous = (current - dt.timedelta(days=1)).replace(day=1)
    if (run_date - current).days < restatement_days:
        return [previous, current]
    return [current]


def newest_manifest(access: AwsExportAccess, period: dt.date) -> Manifest | None:
    """The period's most recently written manifest, parsed and checked; None if none yet."""
    label = period.strftime("%Y-%m")
    candidates = [
        o
        for o in access.list_export(f"metadata/BILLING_PERIOD={label}/")
        if o.key.endswith("Manifest.json")
    ]
    if not candidates:
        return None
    newest = max(candidates, key=lambda o: (o.last_modified, o.key))
    body = _get(access, newest.key).read()
    try:
        doc = json.loads(body)
        columns = tuple(str(c["name"]) for c in doc["columns"])
        uris = [str(u) for u in doc["dataFiles"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise StepError("bad_manifest", f"{newest.key}: not a Data Exports manifest") from exc
    prefix = f"s3://{access.location.bucket}/{export_root(access.location)}data/"
    files = []
    for uri in uris:
        # A manifest may only name files of its own export and period.
        if not uri.startswith(prefix) or f"BILLING_PERIOD={label}/" not in uri:
            raise StepError("bad_manifest", f"{newest.key}: names a file outside the export: {uri}")
        files.append(uri[len(f"s3://{access.location.bucket}/") :])
    return Manifest(newest.key, period, columns, tuple(files))


def _get(access: AwsExportAccess, key: str) -> Any:
    from botocore.exceptions import ClientError

    try:
        return access.s3().get_object(Bucket=access.location.bucket, Key=key)["Body"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            raise StepError(
                "source_file_missing", f"{key}: named by the manifest, not in S3"
            ) from None
        raise StepError(
            "source_unavailable", f"{key}: S3 answered {code}", transient=True
        ) from None
    except AccessProblem as exc:
        raise StepError(exc.reason, f"{key}: {exc.detail}", transient=exc.retryable) from None


def _exact(text: str | None) -> Decimal | None:
    """One decimal text at NUMERIC's 9 places, half away from zero (the rare-value fallback)."""
    if text is None or text.strip() == "":
        return None
    with localcontext() as exact:
        exact.prec = 80  # wide enough for any NUMERIC and any double's text
        value = Decimal(text.strip()).quantize(NINE, rounding=ROUND_HALF_UP)
    if abs(value) >= NUMERIC_LIMIT:
        raise InvalidOperation(text)
    return value


class PeriodReader:
    """Streams one manifest's files as staging record batches (all checks on the way)."""

    def __init__(self, access: AwsExportAccess, manifest: Manifest, export_type: str) -> None:
        self.access = access
        self.manifest = manifest
        found = detect_export_type(manifest.columns)
        if found is None:
            raise StepError(
                "unknown_export_version",
                f"{manifest.key}: its columns match no known export "
                "(CUR 2.0, FOCUS 1.0, FOCUS 1.2)",
            )
        if found != export_type:
            raise StepError(
                "unknown_export_version",
                f"{manifest.key}: delivers {found}, the config says {export_type}",
            )
        self.columns: ExportColumns = EXPORT_COLUMNS[export_type]
        self.landed = Landed(manifest, export_type)
        for column in REQUIRED[export_type]:
            if column not in manifest.columns:
                raise StepError(
                    "missing_column", f"{manifest.key}: required column {column} is missing"
                )

    def batches(self) -> Iterator[pa.RecordBatch]:
        for key in self.manifest.files:
            for batch in self._file_batches(key):
                yield self._staged(key, batch)

    def _file_batches(self, key: str) -> Iterator[pa.RecordBatch]:
        body = _get(self.access, key)
        if key.endswith(".parquet"):
            yield from self._parquet(key, body)
        elif key.endswith(".csv.gz") or key.endswith(".csv"):
            yield from self._csv(key, body)
        else:
            raise StepError("unsupported_file", f"{key}: neither Parquet nor gzip CSV")

    def _parquet(self, key: str, body: Any) -> Iterator[pa.RecordBatch]:
        # Parquet needs its footer first: spool the object to disk in chunks, then
        # read it batch by batch (memory holds one batch, never the file).
        with tempfile.TemporaryFile() as spool:
            for chunk in iter(lambda: body.read(8 << 20), b""):
                spool.write(chunk)
            spool.seek(0)
            try:
                parquet = pq.ParquetFile(spool)
                self._require(key, parquet.schema_arrow.names)
                yield from parquet.iter_batches(batch_size=BATCH_ROWS)
            except (pa.ArrowInvalid, OSError) as exc:
                raise StepError(
                    "bad_source_file", f"{key}: unreadable Parquet ({_short(exc)})"
                ) from None

    def _csv(self, key: str, body: Any) -> Iterator[pa.RecordBatch]:
        stream = gzip.GzipFile(fileobj=body) if key.endswith(".gz") else body
        cols = self.columns
        # Everything as text: money stays exact, and each column is checked below by name.
        types = {c: pa.string() for c in cols.strings + cols.times + cols.money + cols.maps}
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=8 << 20),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=True
                ),
            )
            self._require(key, reader.schema.names)
            yield from reader
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise StepError("bad_source_file", f"{key}: unreadable CSV ({_short(exc)})") from None

    def _require(self, key: str, names: list[str]) -> None:
        for column in REQUIRED[self.landed.export_type]:
            if column not in names:
                raise StepError("missing_column", f"{key}: required column {column} is missing")

    def _staged(self, key: str, batch: pa.RecordBatch) -> pa.RecordBatch:
        """One source batch as staging columns: text money, UTC timestamps, JSON maps."""
        cols = self.columns
        n = batch.num_rows
        present = set(batch.schema.names)
        out: dict[str, pa.Array] = {}
        for name in cols.strings:
            out[name] = _column(batch, name, present, pa.string(), key, n)
        for name in cols.times:
            out[name] = _timestamps(batch, name, present, key, n)
        for name in cols.money:
            out[name] = _money(batch, name, present, key, n)
        for name in cols.maps:
            out[name] = _maps(batch, name, present, key, n)
        out["x_source_file"] = pc.fill_null(pa.nulls(n, pa.string()), key)
        self._account(key, out)
        return pa.RecordBatch.from_pydict(out)

    def _account(self, key: str, out: dict[str, pa.Array]) -> None:
        landed = self.landed
        export_type = landed.export_type
        currencies = {c for c in pc.unique(out[CURRENCY[export_type]]).to_pylist() if c}
        landed.currencies |= currencies
        if len(landed.currencies) > 1:
            raise StepError(
                "mixed_currency",
                f"{key}: column {CURRENCY[export_type]} holds "
                f"{', '.join(sorted(landed.currencies))} in one billing period",
            )
        billed = out[BILLED[export_type][0]]
        for fallback in BILLED[export_type][1:]:
            billed = pc.coalesce(billed, out[fallback])
        total = pc.sum(billed).as_py()
        landed.billed_total += total if total is not None else Decimal(0)
        landed.rows += len(billed)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]


def _column(  # noqa: PLR0917 - private helper, one call site
    batch: pa.RecordBatch, name: str, present: set[str], kind: pa.DataType, key: str, n: int
) -> pa.Array:
    if name not in present:
        return pa.nulls(n, kind)
    try:
        return pc.cast(batch.column(name), kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise StepError("bad_value", f"{key}: column {name} is not {kind}") from None


def _timestamps(batch: pa.RecordBatch, name: str, present: set[str], key: str, n: int) -> pa.Array:
    utc = pa.timestamp("us", tz="UTC")
    if name not in present:
        return pa.nulls(n, utc)
    column = batch.column(name)
    try:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            # ISO 8601 with 'T' or a space, optional fraction, UTC as Z or +00:00.
            trimmed = pc.replace_substring_regex(column, r"(Z|[+]00:?00)$", "")
            column = pc.cast(trimmed, pa.timestamp("us"))
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            column = pc.assume_timezone(column, "UTC")
        return pc.cast(column, utc)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise StepError(
            "bad_value", f"{key}: column {name} holds a value that is no timestamp"
        ) from None


def _money(batch: pa.RecordBatch, name: str, present: set[str], key: str, n: int) -> pa.Array:
    """A money column as decimal128(38, 9): NUMERIC's type, rounded as PARSE_NUMERIC rounds."""
    if name not in present:
        return pa.nulls(n, NUMERIC)
    column = batch.column(name)
    if pa.types.is_floating(column.type):
        if pc.any(pc.is_nan(column)).as_py():
            raise StepError("bad_value", f"{key}: column {name} holds NaN")
        # Arrow writes a double's shortest round-trip text: the decimal AWS wrote.
        return _numeric(pc.cast(column, pa.string()), name, key)
    if pa.types.is_integer(column.type) or pa.types.is_decimal(column.type):
        return _numeric(pc.cast(column, pa.string()), name, key)
    text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    ok = pc.or_kleene(pc.is_null(text), pc.match_substring_regex(text, _NUMBER))
    if not pc.all(ok).as_py():
        bad = pc.index(ok, False).as_py()
        raise StepError(
            "bad_value",
            f"{key}: column {name} row {bad + 1} holds {text[bad].as_py()!r}, not a number",
        )
    return _numeric(text, name, key)


def _numeric(text: pa.Array, name: str, key: str) -> pa.Array:
    """Decimal text -> decimal128(38, 9) by Arrow kernels; Python Decimal only if they refuse."""
    for wide in WIDE:
        try:
            exact = pc.cast(text, wide)  # refuses rather than rounds a digit it cannot hold
            rounded = pc.round(exact, ndigits=9, round_mode="half_towards_infinity")
            return pc.cast(rounded, NUMERIC)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue  # more digits than this width holds: try the next
    # A value beyond 38 places or NUMERIC's range: decide value by value.
    values = text.to_pylist()
    try:
        return pa.array([_exact(v) for v in values], NUMERIC)
    except (InvalidOperation, pa.ArrowInvalid):
        for row, value in enumerate(values):
            try:
                _exact(value)
            except InvalidOperation:
                raise StepError(
                    "bad_value",
                    f"{key}: column {name} row {row + 1} holds {value!r}, outside NUMERIC",
                ) from None
        raise StepError("bad_value", f"{key}: column {name} is outside NUMERIC") from None


def _maps(batch: pa.RecordBatch, name: str, present: set[str], key: str, n: int) -> pa.Array:
    if name not in present:
        return pa.nulls(n, pa.string())
    column = batch.column(name)
    if pa.types.is_map(column.type):
        return _map_json(column)
    # CSV: a JSON object per cell; checked so the mapping can trust it.
    values = pc.cast(column, pa.string()).to_pylist()
    out: list[str | None] = []
    for row, value in enumerate(values):
        if value in (None, "", "{}"):
            out.append(None)
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise StepError("bad_value", f"{key}: column {name} row {row + 1} is no JSON object")
        out.append(json.dumps(parsed, sort_keys=True))
    return pa.array(out, pa.string())


def _map_json(column: pa.Array) -> pa.Array:
    """map<string,string> -> the JSON text json.dumps(sort_keys=True) writes, by Arrow kernels.

    Entries are sorted by (row, key), quoted and joined per row; the row
    boundaries stay those of the map because sorting never moves an entry to
    another row. Text needing more than quote and backslash escapes (control
    characters, non-ASCII, which json.dumps writes as \\uXXXX) is rare: that
    batch takes the json.dumps path.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    # A copy at offset 0: MapArray.keys/items ignore a slice's offset.
    column = pa.concat_arrays([column])
    first, last = int(column.offsets[0].as_py()), int(column.offsets[-1].as_py())
    keys = column.keys.slice(first, last - first)
    items = column.items.slice(first, last - first)
    plain = pc.and_kleene(
        pc.all(pc.fill_null(pc.match_substring_regex(keys, _JSON_PLAIN), False)),
        pc.all(pc.match_substring_regex(pc.fill_null(items, ""), _JSON_PLAIN)),
    ).as_py()
    if plain is False or keys.null_count:
        return pa.array(
            [json.dumps(dict(v), sort_keys=True) if v else None for v in column.to_pylist()],
            pa.string(),
        )
    # Arrow's list kernels abort on or refuse a map (26.0): row numbers from the offsets.
    bounds = column.offsets.to_numpy()
    lengths = np.diff(bounds)
    parents = pa.array(np.repeat(np.arange(len(column)), lengths))
    order = pc.sort_indices(
        pa.table({"p": parents, "k": keys}), sort_keys=[("p", "ascending"), ("k", "ascending")]
    )
    keys, items = pc.take(keys, order), pc.take(items, order)
    quoted_items = pc.if_else(
        pc.is_null(items), "null", pc.binary_join_element_wise('"', _escape(items), '"', "")
    )
    pairs = pc.binary_join_element_wise('"', _escape(keys), '": ', quoted_items, "")
    offsets = pa.array(bounds - bounds[0], pa.int32())
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, pairs), ", ")
    text = pc.binary_join_element_wise("{", joined, "}", "")
    empty = pc.or_kleene(pc.is_null(column), pa.array(lengths == 0))
    return pc.if_else(empty, pa.scalar(None, pa.string()), text)


def _escape(text: pa.Array) -> pa.Array:
    return pc.replace_substring(pc.replace_substring(text, "\\", "\\\\"), '"', '\\"')


class StagingSpool:
    """Record batches -> Parquet spool file -> load job into the staging table, every FLUSH_ROWS."""

    def __init__(self, load: Any, schema: pa.Schema, flush_rows: int = FLUSH_ROWS) -> None:
        self._load = load  # callable(path) -> None
        self._schema = schema
        self._flush_rows = flush_rows
        self._dir = tempfile.mkdtemp(prefix="aws-stage-")
        self._path = os.path.join(self._dir, f"{uuid.uuid4().hex}.parquet")
        self._writer: pq.ParquetWriter | None = None
        self._pending = 0
        self.loads = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, self._schema, compression="snappy")
        self._writer.write_batch(batch.select(self._schema.names))
        self._pending += batch.num_rows
        if self._pending >= self._flush_rows:
            self.flush()

    def flush(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        if self._pending:
            self._load(self._path)
            self.loads += 1
        self._pending = 0
        os.remove(self._path)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if os.path.exists(self._path):
            os.remove(self._path)
        os.rmdir(self._dir)

"""Step `azure.land`: a tenant's Azure FocusCost export runs into `{tenant}.azure_focus_raw`.

Which export runs a run reads: the export writes one folder per date range
(`<directory>/<export>/<YYYYMMDD-YYYYMMDD>/<run id>/manifest.json`, see
local/azure_export.py). A pipeline run covers `date_from`..`date_to` (params; by
default its run date and the `lookback_days` before it, 5, so the previous month
is re-read while Microsoft still restates it). For every date-range folder that
overlaps the run's range, the latest manifest (by blob last-modified, then name)
is the export's current truth for that range.

How (bounded memory): each blob the manifest names is streamed (gzip CSV
decompressed on the fly; Parquet spooled to a temporary file, read row group by
row group), every column kept as text, and loaded into a per-run staging table in
chunks of CHUNK_ROWS rows. While streaming, Python counts rows and sums BilledCost
and EffectiveCost per billing period exactly (Decimal): the source's own totals,
stored in `azure_export_totals` for `azure.check`.

Bad input fails the step, naming the blob and the column, BEFORE anything is
replaced: a manifest naming a missing blob, an unreadable or truncated blob (or
fewer rows than the manifest says), a missing required column, a value that is
not of its column's type, two currencies in one billing period, a row outside
its export run's date range, an unknown dataset version or export type.

Then, for each export range, the config's raw rows whose ChargePeriodStart lies in
the range are REPLACED (DELETE, then one INSERT ... SELECT converting the staged
text: PARSE_NUMERIC for money, UTC timestamps), so every raw row is DML-created
and re-running never duplicates. Lineage: x_source_file (the blob),
x_export_manifest, x_export_run_id (Microsoft's runId), x_export_range_start/end.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from google.cloud import bigquery

from shared.pipelines.context import StepContext, StepError, StepResult
from shared.pipelines.steps import step_job_config
from shared.platform.warehouse import Typed
from shared.sources.azure.focuscost import ALL_COLUMNS, REQUIRED, VERSIONS
from shared.sources.identity import AccessProblem
from shared.sources.run_inputs import active_config, active_credential_type, run_query
from shared.tenancy.tenant_dataset import ensure_tenant_tables

log = logging.getLogger(__name__)

RAW_TABLE = "azure_focus_raw"
TOTALS_TABLE = "azure_export_totals"
STAGING_PREFIX = "_stg_azure_focus_"
DEFAULT_LOOKBACK_DAYS = 5
MAX_RANGE_DAYS = 400  # Microsoft keeps 13 months of history
CHUNK_ROWS = 50_000
_RANGE_FOLDER = re.compile(r"^(\d{8})-(\d{8})$")
SOURCE_COLUMNS = ("x_source_file", "x_export_manifest", "x_export_range_start")
LINEAGE = (
    "x_tenant_id",
    "x_pipeline_id",
    "x_credential_id",
    "x_run_date",
    "x_run_id",
    "x_ingested_at",
)


def staging_columns() -> tuple[tuple[str, str], ...]:
    """The staging table: every FocusCost column as text, plus where each row came from."""
    return tuple((name, "STRING") for name in (*ALL_COLUMNS, *SOURCE_COLUMNS))


# ---------------------------------------------------------------- conversions (SQL)


def ts_sql(col: str) -> str:
    """Microsoft's UTC date text -> the GoogleSQL canonical form: 1.0 writes no seconds
    ("2024-01-01T00:00Z"), 1.0r2 and 1.2-preview do; Parquet text has a space and micros."""
    return (
        f"CONCAT(SUBSTR({col}, 1, 16), IF(SUBSTR({col}, 17, 1) = ':', "
        f"SUBSTR({col}, 17, 3), ':00'), '+00:00')"
    )


def typed_sql(col: str, kind: str) -> str:
    """The exact conversion of one staged text column to its raw type."""
    if kind == "NUMERIC":
        return f"PARSE_NUMERIC({col})"
    if kind == "TIMESTAMP":
        return f"CAST({ts_sql(col)} AS TIMESTAMP)"
    if kind == "BOOL":
        return f"CAST(LOWER({col}) AS BOOL)"
    return col


def _bad_value_sql(col: str, kind: str) -> str:
    """True when a staged text value is not of its column's type."""
    if kind == "NUMERIC":
        return f"({col} IS NOT NULL AND SAFE_CAST({col} AS NUMERIC) IS NULL)"
    if kind == "TIMESTAMP":
        return (
            f"({col} IS NOT NULL AND (LENGTH({col}) < 17 "
            f"OR SAFE_CAST({ts_sql(col)} AS TIMESTAMP) IS NULL))"
        )
    return f"({col} IS NOT NULL AND LOWER({col}) NOT IN ('true', 'false'))"


def type_check_sql(staging: str) -> str:
    """Per blob, how many values of each typed column do not parse."""
    typed = [(n, k) for n, k in ALL_COLUMNS.items() if k != "STRING"]
    counts = ",\n  ".join(f"COUNTIF({_bad_value_sql(f's.`{n}`', k)}) AS `{n}`" for n, k in typed)
    return f"SELECT s.x_source_file,\n  {counts}\nFROM {staging} AS s GROUP BY s.x_source_file"


def currency_check_sql(staging: str) -> str:
    """Billing periods of one range with more than one currency, and a blob holding each."""
    return (
        "SELECT s.x_export_range_start AS range_start, s.BillingPeriodStart AS period, "
        "COUNT(DISTINCT s.BillingCurrency) AS currencies, "
        "STRING_AGG(DISTINCT s.BillingCurrency ORDER BY s.BillingCurrency) AS seen, "
        "MIN(s.x_source_file) AS first_file, MAX(s.x_source_file) AS last_file "
        f"FROM {staging} AS s GROUP BY range_start, period "
        "HAVING COUNT(DISTINCT s.BillingCurrency) > 1"
    )


def out_of_range_sql(staging: str) -> str:
    """Rows whose charge date lies outside their export run's date range."""
    start = f"CAST({ts_sql('s.ChargePeriodStart')} AS TIMESTAMP)"
    return (
        "SELECT s.x_source_file, COUNT(*) AS n, MIN(s.ChargePeriodStart) AS sample "
        f"FROM {staging} AS s JOIN UNNEST(@ranges) AS r ON r = s.x_export_range_start "
        f"WHERE DATE({start}) < PARSE_DATE('%Y%m%d', SUBSTR(r, 1, 8)) "
        f"OR DATE({start}) > PARSE_DATE('%Y%m%d', SUBSTR(r, 10, 8)) "
        "GROUP BY s.x_source_file ORDER BY s.x_source_file LIMIT 1"
    )


def delete_range_sql(raw_table: str) -> str:
    """The config's raw rows of one export range (the first half of a replace)."""
    return (
        f"DELETE FROM {raw_table} AS T WHERE T.x_pipeline_id = @pipeline_id "
        "AND T.ChargePeriodStart >= TIMESTAMP(@range_start) "
        "AND T.ChargePeriodStart < TIMESTAMP(DATE_ADD(@range_end, INTERVAL 1 DAY))"
    )


def insert_sql(raw_table: str, staging: str) -> str:
    """Every staged row, typed, with its source and lineage (the second half)."""
    typed = [f"{typed_sql(f's.`{n}`', k)} AS `{n}`" for n, k in ALL_COLUMNS.items()]
    extra = [
        "s.x_source_file AS x_source_file",
        "s.x_export_manifest AS x_export_manifest",
        "NULLIF(m.run_id, '') AS x_export_run_id",
        "PARSE_DATE('%Y%m%d', SUBSTR(s.x_export_range_start, 1, 8)) AS x_export_range_start",
        "PARSE_DATE('%Y%m%d', SUBSTR(s.x_export_range_start, 10, 8)) AS x_export_range_end",
        "m.version AS x_dataset_version",
        "@tenant_id AS x_tenant_id",
        "@pipeline_id AS x_pipeline_id",
        "@credential_id AS x_credential_id",
        "@run_date AS x_run_date",
        "@run_id AS x_run_id",
        "CURRENT_TIMESTAMP() AS x_ingested_at",
    ]
    names = [*ALL_COLUMNS, *(e.rsplit(" AS ", 1)[1] for e in extra)]
    columns = ", ".join(f"`{n}`" for n in names)
    select = ",\n  ".join([*typed, *extra])
    return (
        f"INSERT INTO {raw_table} ({columns})\nSELECT\n  {select}\nFROM {staging} AS s\n"
        "JOIN (SELECT manifest, run_id, version FROM UNNEST(@manifests) AS manifest WITH OFFSET i "
        "JOIN UNNEST(@run_ids) AS run_id WITH OFFSET j ON i = j "
        "JOIN UNNEST(@versions) AS version WITH OFFSET k ON i = k) AS m "
        "ON m.manifest = s.x_export_manifest"
    )


# ---------------------------------------------------------------- manifests


@dataclass
class Manifest:
    """One export run: its manifest, what it says, and the totals counted while reading it."""

    path: str
    range_key: str  # "YYYYMMDD-YYYYMMDD"
    range_start: dt.date
    range_end: dt.date
    version: str
    run_id: str | None
    blobs: list[dict[str, Any]]
    rows: int = 0
    # (BillingPeriodStart, currency) -> [rows, billed, effective]
    totals: dict[tuple[dt.datetime, str], list[Any]] = field(default_factory=dict)


def _fail(code: str, message: str) -> StepError:
    return StepError(code, message[:900])


def _range_of(folder: str) -> tuple[dt.date, dt.date] | None:
    match = _RANGE_FOLDER.match(folder)
    if not match:
        return None
    try:
        start = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
        end = dt.datetime.strptime(match.group(2), "%Y%m%d").date()
    except ValueError:
        return None
    return (start, end) if start <= end else None


def latest_manifests(
    listing: Iterator[Any], export_root: str, date_from: dt.date, date_to: dt.date
) -> dict[str, Any]:
    """range folder -> the newest manifest blob of the ranges overlapping the run's range."""
    chosen: dict[str, Any] = {}
    for blob in listing:
        rest = blob.name[len(export_root) :]
        parts = rest.split("/")
        if len(parts) != 3 or parts[2] != "manifest.json":
            continue
        bounds = _range_of(parts[0])
        if bounds is None or bounds[1] < date_from or bounds[0] > date_to:
            continue
        best = chosen.get(parts[0])
        key = (blob.last_modified or dt.datetime.min.replace(tzinfo=dt.UTC), blob.name)
        if best is None or key > (
            best.last_modified or dt.datetime.min.replace(tzinfo=dt.UTC),
            best.name,
        ):
            chosen[parts[0]] = blob
    return dict(sorted(chosen.items()))


def parse_manifest(path: str, range_key: str, data: bytes) -> Manifest:
    """The parts of a manifest the reader relies on, checked; StepError names what is wrong."""
    try:
        doc = json.loads(data)
        config, run, blobs = doc["exportConfig"], doc.get("runInfo") or {}, doc["blobs"]
    except (ValueError, KeyError, TypeError):
        raise _fail(
            "bad_manifest", f"manifest {path} is not a Cost Management export manifest"
        ) from None
    if str(config.get("type", "")).lower() != "focuscost":
        raise _fail(
            "unsupported_export_type",
            f"manifest {path}: exportConfig.type {config.get('type')!r} is not FocusCost",
        )
    version = str(config.get("dataVersion"))
    if version not in VERSIONS:
        raise _fail(
            "unknown_dataset_version",
            f"manifest {path}: exportConfig.dataVersion {version!r} is not one of "
            f"{', '.join(VERSIONS)}",
        )
    if not isinstance(blobs, list) or not all(
        isinstance(b, dict) and isinstance(b.get("blobName"), str) for b in blobs
    ):
        raise _fail("bad_manifest", f"manifest {path}: blobs[] has an entry without blobName")
    bounds = _range_of(range_key)
    if bounds is None:
        raise _fail("bad_manifest", f"manifest {path}: {range_key} is not a date range")
    return Manifest(
        path=path,
        range_key=range_key,
        range_start=bounds[0],
        range_end=bounds[1],
        version=version,
        run_id=str(run["runId"]) if run.get("runId") else None,
        blobs=blobs,
    )


# ---------------------------------------------------------------- streaming a blob


class _ChunkStream(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (a blob download), no seeking."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _text_batches(name: str, downloader: Any) -> Iterator[Any]:
    """The blob's rows as Arrow record batches of text columns."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if name.endswith(".parquet"):
        with tempfile.SpooledTemporaryFile(max_size=64 * 1024**2) as spool:
            downloader.readinto(spool)
            spool.seek(0)
            for batch in pq.ParquetFile(spool).iter_batches(batch_size=CHUNK_ROWS):
                yield _as_text(batch)
        return
    raw: Any = io.BufferedReader(_ChunkStream(downloader.chunks()), buffer_size=1024**2)
    if name.endswith(".gz"):
        raw = gzip.GzipFile(fileobj=raw, mode="rb")
    reader = pacsv.open_csv(
        raw,
        read_options=pacsv.ReadOptions(block_size=8 * 1024**2),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in ALL_COLUMNS}, strings_can_be_null=True
        ),
    )
    for batch in reader:
        yield _as_text(batch)


def _as_text(batch: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for original in batch.columns:
        column = original
        if pa.types.is_timestamp(column.type):
            column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
        elif not pa.types.is_string(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


# ---------------------------------------------------------------- the step


@dataclass
class _Staging:
    ctx: StepContext
    table: bigquery.Table
    pending: list[Any] = field(default_factory=list)
    pending_rows: int = 0
    loaded_rows: int = 0

    def add(self, batch: Any) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        if self.pending_rows >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending_rows:
            self.pending = []
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        out = io.BytesIO()
        pq.write_table(pa.Table.from_batches(self.pending), out)
        out.seek(0)
        deps = self.ctx.deps
        labels = step_job_config(self.ctx).labels
        job = deps.warehouse.client.load_table_from_file(
            out,
            self.table.reference,
            job_config=bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                labels=labels,
            ),
        )
        job.result(timeout=deps.settings.bq_job_timeout_seconds)
        self.loaded_rows += self.pending_rows
        self.pending, self.pending_rows = [], 0


def _conformed(batch: Any, source: str, manifest: Manifest) -> Any:
    """A batch with exactly the staging columns, in order (absent ones NULL)."""
    import pyarrow as pa

    present = set(batch.schema.names)
    n = batch.num_rows
    arrays = [
        batch.column(name) if name in present else pa.nulls(n, pa.string()) for name in ALL_COLUMNS
    ]
    arrays += [
        pa.array([source] * n, pa.string()),
        pa.array([manifest.path] * n, pa.string()),
        pa.array([manifest.range_key] * n, pa.string()),
    ]
    return pa.RecordBatch.from_arrays(arrays, names=[n for n, _ in staging_columns()])


def _count(manifest: Manifest, batch: Any, source: str) -> None:
    """The source totals, exactly, while the batch goes by."""
    periods = batch.column("BillingPeriodStart").to_pylist()
    currencies = batch.column("BillingCurrency").to_pylist()
    billed = batch.column("BilledCost").to_pylist()
    effective = batch.column("EffectiveCost").to_pylist()
    for i, (period, currency) in enumerate(zip(periods, currencies, strict=True)):
        try:
            key = (dt.datetime.fromisoformat(str(period)).replace(tzinfo=None), str(currency))
        except ValueError:
            raise _fail(
                "bad_value",
                f"blob {source}: column BillingPeriodStart, row {manifest.rows + i + 1}: "
                f"{str(period)[:40]!r} is not a date",
            ) from None
        entry = manifest.totals.setdefault(key, [0, Decimal(0), Decimal(0)])
        entry[0] += 1
        for slot, column, value in (
            (1, "BilledCost", billed[i]),
            (2, "EffectiveCost", effective[i]),
        ):
            if value is None:
                continue
            try:
                entry[slot] += Decimal(value)
            except InvalidOperation:
                raise _fail(
                    "bad_value",
                    f"blob {source}: column {column}, row {manifest.rows + i + 1}: "
                    f"{str(value)[:40]!r} is not a decimal number",
                ) from None
    manifest.rows += batch.num_rows


def _read_blob(
    container: Any, manifest: Manifest, entry: dict[str, Any], staging: _Staging
) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    name = str(entry["blobName"])
    try:
        downloader = container.download_blob(name)
    except ResourceNotFoundError:
        raise _fail(
            "source_blob_missing",
            f"manifest {manifest.path} names blob {name}, which is not in the container",
        ) from None
    required = REQUIRED[manifest.version]
    before = manifest.rows
    try:
        for batch in _text_batches(name, downloader):
            missing = [c for c in required if c not in batch.schema.names]
            if missing:
                raise _fail(
                    "missing_column",
                    f"blob {name}: required column {missing[0]} of FocusCost "
                    f"{manifest.version} is missing",
                )
            _count(manifest, batch, name)
            staging.add(_conformed(batch, name, manifest))
    except StepError:
        raise
    except AccessProblem:
        raise
    except Exception as exc:  # a truncated gzip/Parquet, a ragged CSV row: the file, not us
        raise _fail(
            "unreadable_blob", f"blob {name} cannot be read ({type(exc).__name__}: {_short(exc)})"
        ) from None
    expected = entry.get("dataRowCount")
    if isinstance(expected, int) and manifest.rows - before != expected:
        raise _fail(
            "truncated_blob",
            f"blob {name} holds {manifest.rows - before} rows; its manifest says {expected}",
        )


def _short(exc: BaseException) -> str:
    # Library messages name columns and rows, never a secret; keep the first line.
    return str(exc).splitlines()[0][:200] if str(exc) else ""


def export_location(ctx: StepContext) -> tuple[Any, str | None]:
    """The run's ACTIVE Azure provider config: (AzureExportSettings, credential id)."""
    from shared.vault.provider_configs import AzureExportSettings

    row = active_config(ctx, "AZURE", "settings_json, credential_id")
    settings = AzureExportSettings.model_validate(json.loads(row["settings_json"]))
    return settings, row["credential_id"] or ctx.run.credential_id


def _access(ctx: StepContext, location: Any, credential_id: str | None) -> Any:
    from shared.sources.azure.access import azure_access
    from shared.vault.credentials import CredentialUnavailable, decrypt_credential

    if not credential_id:
        raise StepError("credential_missing", "the Azure config names no credential")
    kind = active_credential_type(ctx, "AZURE", credential_id)
    try:
        secret = decrypt_credential(ctx.deps, ctx.run.tenant_id, credential_id)
    except CredentialUnavailable:
        raise StepError("credential_missing", f"no active credential {credential_id}") from None
    return azure_access(ctx.deps, ctx.run.tenant_id, kind, secret, location)


def run_range(ctx: StepContext) -> tuple[dt.date, dt.date]:
    """The dates this run covers: params date_from/date_to, else run date - lookback_days."""
    run_date = ctx.run.run_date
    try:
        lookback = int(ctx.params.get("lookback_days", DEFAULT_LOOKBACK_DAYS))
        date_to = dt.date.fromisoformat(str(ctx.params.get("date_to") or run_date))
        raw_from = ctx.params.get("date_from")
        date_from = (
            dt.date.fromisoformat(str(raw_from))
            if raw_from
            else date_to - dt.timedelta(days=lookback)
        )
    except (TypeError, ValueError):
        raise StepError(
            "invalid_parameter", "date_from/date_to must be dates, lookback_days an integer"
        ) from None
    if not 0 <= lookback <= 60:
        raise StepError("invalid_parameter", "lookback_days must be between 0 and 60")
    if date_from > date_to or (date_to - date_from).days > MAX_RANGE_DAYS:
        raise StepError(
            "invalid_parameter",
            f"date_from..date_to must be ordered and at most {MAX_RANGE_DAYS} days",
        )
    return date_from, date_to


def _validate_staged(ctx: StepContext, staging: str, manifests: list[Manifest]) -> None:
    # Column names as Microsoft spells them (the emulator lower-cases result names).
    spelled = {name.lower(): name for name in ALL_COLUMNS}
    for row in run_query(ctx, type_check_sql(staging), {}).rows:
        bad = [c for c, n in row.items() if c.lower() in spelled and n]
        if bad:
            column = spelled[bad[0].lower()]
            source = row.get("x_source_file", row.get("x_source_file".lower()))
            raise _fail(
                "bad_value",
                f"blob {source}: column {column} holds {row[bad[0]]} value(s) "
                f"that are not {ALL_COLUMNS[column]}",
            )
    for row in run_query(ctx, currency_check_sql(staging), {}).rows:
        raise _fail(
            "mixed_currency",
            f"column BillingCurrency: billing period {row['period']} holds {row['seen']} "
            f"(blobs {row['first_file']} .. {row['last_file']})",
        )
    ranges = Typed("STRING", [m.range_key for m in manifests])
    for row in run_query(ctx, out_of_range_sql(staging), {"ranges": ranges}).rows:
        raise _fail(
            "row_outside_range",
            f"blob {row['x_source_file']}: column ChargePeriodStart {row['sample']} lies outside "
            "its export run's date range",
        )


def _record_totals(ctx: StepContext, manifests: list[Manifest], base: dict[str, Any]) -> None:
    wh = ctx.deps.warehouse
    table = wh.table(ctx.run.dataset_id, TOTALS_TABLE)
    run_query(
        ctx,
        f"DELETE FROM {table} AS T WHERE T.x_pipeline_id = @pipeline_id "
        "AND T.x_export_range_start IN UNNEST(@starts)",
        {**base, "starts": Typed("DATE", [m.range_start for m in manifests])},
    )
    values: list[str] = []
    params = dict(base)
    for m in manifests:
        # An export run with no rows still owns its range: one row says so.
        entries: list[tuple[tuple[Any, Any], list[Any]]] = sorted(m.totals.items()) or [
            ((None, None), [0, None, None])
        ]
        for (period, currency), (rows, billed, effective) in entries:
            i = len(values)
            params |= {
                f"s{i}": m.range_start,
                f"e{i}": m.range_end,
                f"m{i}": m.path,
                f"r{i}": Typed("STRING", m.run_id),
                f"v{i}": m.version,
                f"p{i}": Typed("TIMESTAMP", period.replace(tzinfo=dt.UTC) if period else None),
                f"c{i}": Typed("STRING", currency),
                f"n{i}": rows,
                f"b{i}": Typed("STRING", None if billed is None else str(billed)),
                f"f{i}": Typed("STRING", None if effective is None else str(effective)),
            }
            values.append(
                f"(@s{i}, @e{i}, @m{i}, @r{i}, @v{i}, @p{i}, @c{i}, @n{i}, PARSE_NUMERIC(@b{i}), "
                f"PARSE_NUMERIC(@f{i}), @tenant_id, @pipeline_id, @credential_id, @run_date, "
                "@run_id, CURRENT_TIMESTAMP())"
            )
    run_query(
        ctx,
        f"INSERT INTO {table} (x_export_range_start, x_export_range_end, x_export_manifest, "
        "x_export_run_id, x_dataset_version, billing_period_start, billing_currency, source_rows, "
        "source_billed_cost, source_effective_cost, x_tenant_id, x_pipeline_id, x_credential_id, "
        "x_run_date, x_run_id, x_ingested_at) VALUES\n" + ",\n".join(values),
        params,
    )


def land(ctx: StepContext) -> StepResult:
    """Replaces the config's raw rows of each export range overlapping the run's dates."""
    run, deps = ctx.run, ctx.deps
    ensure_tenant_tables(
        deps.warehouse, deps.catalog, run.dataset_id, ("azure_focus_raw", "azure_export_totals")
    )
    date_from, date_to = run_range(ctx)
    location, credential_id = export_location(ctx)
    access = _access(ctx, location, credential_id)
    root = f"{location.directory}/{location.export_name}/"
    try:
        listing = access.list_export(f"{location.export_name}/")
        found = latest_manifests(listing, root, date_from, date_to)
        container = access.container()
        manifests = []
        for range_key, blob in found.items():
            data = container.download_blob(blob.name).readall()
            manifests.append(parse_manifest(blob.name, range_key, data))
    except AccessProblem as problem:
        raise StepError(
            "source_unavailable" if problem.retryable else "source_access_denied",
            problem.detail,
            transient=problem.retryable,
        ) from None
    if not manifests:
        return StepResult(
            rows_processed=0, message=f"no export run of {date_from}..{date_to} found under {root}"
        )
    wh = deps.warehouse
    staging = bigquery.Table(
        f"{wh.project}.{run.dataset_id}.{STAGING_PREFIX}{uuid.uuid4().hex[:16]}",
        schema=[bigquery.SchemaField(n, t) for n, t in staging_columns()],
    )
    staging.expires = deps.clock() + dt.timedelta(hours=6)  # a crashed run leaves nothing
    wh.client.create_table(staging)
    try:
        stage = _Staging(ctx, staging)
        for manifest in manifests:
            for entry in manifest.blobs:
                if ctx.stop.is_set():
                    raise StepError("cancelled", "the step was stopped while reading blobs")
                _read_blob(container, manifest, entry, stage)
        stage.flush()
        staged = wh.table(run.dataset_id, staging.table_id)
        _validate_staged(ctx, staged, manifests)
        base = {
            "tenant_id": run.tenant_id,
            "pipeline_id": run.config_id,
            "credential_id": Typed("STRING", credential_id),
            "run_date": run.run_date,
            "run_id": run.run_id,
        }
        raw_table = wh.table(run.dataset_id, RAW_TABLE)
        deleted = billed = 0
        for m in manifests:
            out = run_query(
                ctx,
                delete_range_sql(raw_table),
                {**base, "range_start": m.range_start, "range_end": m.range_end},
            )
            deleted += out.dml_affected_rows or 0
            billed += out.bytes_billed
        inserted = run_query(
            ctx,
            insert_sql(raw_table, staged),
            {
                **base,
                "manifests": Typed("STRING", [m.path for m in manifests]),
                "run_ids": Typed("STRING", [m.run_id or "" for m in manifests]),
                "versions": Typed("STRING", [m.version for m in manifests]),
            },
        )
        _record_totals(ctx, manifests, base)
    finally:
        wh.client.delete_table(staging.reference, not_found_ok=True)
    rows = inserted.dml_affected_rows or 0
    ranges = ", ".join(m.range_key for m in manifests)
    return StepResult(
        rows_processed=rows,
        bytes_billed=billed + inserted.bytes_billed,
        message=f"{rows} raw rows from export ranges {ranges} ({deleted} replaced)",
    )

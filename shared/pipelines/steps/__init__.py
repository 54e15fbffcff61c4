"""Helpers for step authors: query jobs with the run's labels, byte cap and stop signal.

`step_query(ctx, sql, params)` is how a step talks to BigQuery: the job carries
the labels (tenant, run, step, component) and `maximum_bytes_billed` from the
tenant's plan, and is cancelled if the run is stopped or the step times out
while it runs. It uses the warehouse's client and its `query_config`/`job_retry`
(the same parameter typing and retry rules as `Warehouse.query`); only the wait
differs: in short slices, so a stop request can cancel the job.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.pipelines.context import StepContext, StepError
from shared.platform.sql_record import record_statement
from shared.platform.warehouse import job_retry, query_config

_LABEL_VALUE = re.compile(r"[^a-z0-9_-]")
# How often a waiting step looks at its stop signal.
POLL_SECONDS = 0.5


def _label(value: str) -> str:
    return _LABEL_VALUE.sub("_", value.lower())[:63]


@dataclass
class QueryOutcome:
    """A finished job's rows and figures."""

    rows: list[dict[str, Any]]
    bytes_billed: int
    dml_affected_rows: int | None
    inserted_rows: int | None
    schema: list[bigquery.SchemaField]


def step_job_config(
    ctx: StepContext, params: Mapping[str, Any] | None = None
) -> bigquery.QueryJobConfig:
    """The job config every step query runs with: parameters, labels, byte cap."""
    config = query_config(
        params,
        component="pipeline",
        tenant_id=ctx.run.tenant_id,
        maximum_bytes_billed=ctx.run.max_bytes_billed,
    )
    config.labels = {
        **(config.labels or {}),
        "run_id": _label(ctx.run.run_id),
        "step": _label(ctx.step_name),
        "pipeline": _label(ctx.run.pipeline),
    }
    return config


def step_query(
    ctx: StepContext,
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    default_dataset: str | None = None,
) -> QueryOutcome:
    """Runs one query job for a step and waits for it, cancelling it on a stop request."""
    if ctx.stop.is_set():
        raise StepError("cancelled", "the step was stopped before its query started")
    warehouse = ctx.deps.warehouse
    config = step_job_config(ctx, params)
    if default_dataset:
        config.default_dataset = f"{warehouse.project}.{default_dataset}"
    record_statement(
        sql, config, project=warehouse.project, central_dataset=warehouse.settings.central_dataset
    )
    job = warehouse.client.query(sql, job_config=config, job_retry=job_retry())
    while True:
        try:
            rows = job.result(timeout=POLL_SECONDS)
            break
        except (TimeoutError, gexc.RetryError, requests.exceptions.Timeout):
            # Still running (the client reports a slice's timeout either way).
            if job.done():
                continue
        if ctx.stop.is_set():
            # Best effort: production cancels the job; the emulator may ignore it.
            with contextlib.suppress(gexc.GoogleAPICallError):
                job.cancel()
            raise StepError("cancelled", "the step was stopped while its query ran")
    return QueryOutcome(
        rows=[dict(row.items()) for row in rows],
        bytes_billed=int(job.total_bytes_billed or 0),
        dml_affected_rows=(
            int(job.num_dml_affected_rows) if job.num_dml_affected_rows is not None else None
        ),
        inserted_rows=_inserted(job),
        schema=list(rows.schema or []),
    )


def _inserted(job: bigquery.QueryJob) -> int | None:
    # A MERGE's affected rows count deletes too; its DML stats split them out.
    stats = getattr(job, "dml_stats", None)
    value = getattr(stats, "inserted_row_count", None) if stats is not None else None
    return int(value) if value is not None else None

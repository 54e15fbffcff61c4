"""Runs a tenant asks for: a manual run, a backfill (one run per date) or a retry, admitted like
scheduled runs (all or nothing) and enqueued at once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from shared.deps import Deps
from shared.platform.errors import ApiError, not_found
from shared.scheduling import admission, configs, runs
from shared.scheduling.history import get_run_row, run_view
from shared.tenancy.quota import refusal, usage_snapshot

MAX_BACKFILL_DAYS = 31


class StartRunRequest(BaseModel):
    """`run_date` for one run, or `date_from`..`date_to` (inclusive) for a backfill."""

    model_config = ConfigDict(extra="forbid")

    config_id: str
    run_date: dt.date | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @model_validator(mode="after")
    def _one_way(self) -> StartRunRequest:
        ranged = self.date_from is not None or self.date_to is not None
        if ranged and self.run_date is not None:
            raise ValueError("give run_date or date_from/date_to, not both")
        if ranged:
            if self.date_from is None or self.date_to is None:
                raise ValueError("a backfill needs both date_from and date_to")
            if self.date_to < self.date_from:
                raise ValueError("date_to is before date_from")
            if (self.date_to - self.date_from).days + 1 > MAX_BACKFILL_DAYS:
                raise ValueError(f"a backfill covers at most {MAX_BACKFILL_DAYS} days")
        return self

    def dates(self, today: dt.date) -> list[dt.date]:
        if self.date_from is not None and self.date_to is not None:
            days = (self.date_to - self.date_from).days + 1
            return [self.date_from + dt.timedelta(days=i) for i in range(days)]
        return [self.run_date or today - dt.timedelta(days=1)]


def _admit_and_enqueue(deps: Deps, tenant_id: str, new_runs: list[runs.NewRun]) -> list[str]:
    """All of `new_runs` admitted and enqueued, or a 429 and nothing left behind."""
    warehouse = deps.warehouse
    now = deps.clock()
    ids = [r.run_id for r in new_runs]
    runs.insert_pending(warehouse, new_runs, now)
    requests = [admission.Request(tenant_id, run_id, i) for i, run_id in enumerate(ids)]
    # Twin usage rows (see admission) are updated together: 2 is admitted too.
    if admission.admit(warehouse, requests, now, all_or_nothing=True) < 1:
        runs.discard_pending(warehouse, ids, now)
        snapshot = usage_snapshot(warehouse, tenant_id, now)
        if snapshot is None:
            raise not_found("no subscription for this tenant")
        raise refusal(tenant_id, snapshot, len(ids), now)
    runs.queue_admitted(warehouse, ids, now)
    for run_id in ids:
        deps.task_queue.enqueue_run(run_id)
    return ids


def start(deps: Deps, tenant_id: str, body: StartRunRequest) -> dict[str, Any]:
    # A paused config (is_active false) only stops its schedule; it still runs on demand.
    config = configs.config_row(deps, tenant_id, body.config_id)
    today = deps.clock().astimezone(dt.UTC).date()
    new_runs = [
        runs.NewRun(
            run_id=runs.manual_run_id(),
            tenant_id=tenant_id,
            config_id=config["config_id"],
            pipeline=config["pipeline"],
            trigger="MANUAL",
            run_date=run_date,
        )
        for run_date in body.dates(today)
    ]
    ids = _admit_and_enqueue(deps, tenant_id, new_runs)
    return {"run_ids": ids, "state": "QUEUED", "config_id": config["config_id"]}


def retry(deps: Deps, tenant_id: str, run_id: str) -> dict[str, Any]:
    """A new attempt of a failed or cancelled run: same config and date, admitted afresh."""
    previous = get_run_row(deps, tenant_id, run_id)
    if previous["state"] not in ("FAILED", "CANCELLED"):
        raise ApiError(
            409,
            "conflict",
            f"only a failed or cancelled run can be retried (it is {previous['state']})",
        )
    configs.config_row(deps, tenant_id, previous["config_id"])
    new = runs.NewRun(
        run_id=runs.manual_run_id(),
        tenant_id=tenant_id,
        config_id=previous["config_id"],
        pipeline=previous["pipeline"],
        trigger="RETRY",
        run_date=previous["run_date"],
        attempt=int(previous["attempt"] or 1) + 1,
        retry_of=run_id,
    )
    ids = _admit_and_enqueue(deps, tenant_id, [new])
    return {"run_ids": ids, "state": "QUEUED", "retry_of": run_id}


def cancel(deps: Deps, tenant_id: str, run_id: str) -> dict[str, Any]:
    """Cancels a queued run now, asks a running one to stop; a finished run is a 409."""
    # The conditional UPDATE decides; the one read after it tells 404 from 409.
    changed = runs.request_cancel(deps.warehouse, tenant_id, run_id, deps.clock())
    current = get_run_row(deps, tenant_id, run_id)
    if not changed:
        raise ApiError(409, "conflict", f"the run already ended ({current['state']})")
    return run_view(current)

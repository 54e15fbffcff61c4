"""Runs a tenant asks for: a manual run, a backfill (ONE run over a date range) or a retry,
admitted like scheduled runs and enqueued at once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from shared.deps import Deps
from shared.platform.errors import ApiError, conflict, not_found
from shared.scheduling import admission, configs, runs
from shared.scheduling.history import get_retry_source, get_run_row, run_view
from shared.tenancy.quota import refusal, usage_snapshot

# A backfill is one run, counted once, whatever its length. The cap bounds what one
# run may scan and replace: a bit more than a year, so "last year plus this month"
# of history is one request.
MAX_RANGE_DAYS = 400


class StartRunRequest(BaseModel):
    """`run_date` for one day, or `date_from`..`date_to` (inclusive) for one run over a range."""

    model_config = ConfigDict(extra="forbid")

    config_id: str
    run_date: dt.date | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @field_validator("date_to")
    @classmethod
    def _range(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("date_from")
        if value is None or start is None:
            return value
        if value < start:
            raise ValueError("date_to is before date_from")
        if (value - start).days + 1 > MAX_RANGE_DAYS:
            raise ValueError(f"a run covers at most {MAX_RANGE_DAYS} days")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> StartRunRequest:
        ranged = self.date_from is not None or self.date_to is not None
        if ranged and self.run_date is not None:
            raise ValueError("give run_date or date_from/date_to, not both")
        if ranged and (self.date_from is None or self.date_to is None):
            raise ValueError("a backfill needs both date_from and date_to")
        return self

    def defaulted_date(self) -> bool:
        """No date given: the run is for yesterday, whichever day that is."""
        return self.run_date is None and self.date_from is None

    def window(self, today: dt.date) -> tuple[dt.date, dt.date]:
        """The first and last data date of the run (both yesterday when no date is given)."""
        if self.date_from is not None and self.date_to is not None:
            return self.date_from, self.date_to
        day = self.run_date or today - dt.timedelta(days=1)
        return day, day


def _admit_and_enqueue(deps: Deps, tenant_id: str, ids: list[str]) -> None:
    """The PENDING runs `ids` admitted and enqueued, or a 429 and nothing left behind.

    The rows may have been inserted by a concurrent duplicate request: admission
    counts a run once, whoever asks, so the one that loses the race finds the
    runs admitted and only queues and enqueues them again (both are no-ops then).
    """
    warehouse = deps.warehouse
    now = deps.clock()
    requests = [admission.Request(tenant_id, run_id, i) for i, run_id in enumerate(ids)]
    # Twin usage rows (see admission) are updated together: 2 is admitted too.
    admitted = admission.admit(warehouse, requests, now, all_or_nothing=True) >= 1
    if not admitted and not runs.all_admitted(warehouse, tenant_id, ids, now):
        runs.discard_pending(warehouse, ids, now)
        snapshot = usage_snapshot(warehouse, tenant_id, now)
        if snapshot is None:
            raise not_found("no subscription for this tenant")
        raise refusal(tenant_id, snapshot, len(ids), now)
    runs.queue_admitted(warehouse, ids, now)
    for run_id in ids:
        deps.task_queue.enqueue_run(run_id)


def _replay(deps: Deps, tenant_id: str, body: StartRunRequest, new: runs.NewRun) -> list[str]:
    """The run an earlier request with this Idempotency-Key made, if it asked for the same;
    a 409 naming the header if it asked for something else."""
    earlier = runs.runs_by_id(deps.warehouse, tenant_id, [new.run_id])
    if not earlier:
        # The first request was refused (and discarded its runs) after our insert found them.
        raise conflict(
            "a request with this Idempotency-Key was refused meanwhile; send it again",
            field="Idempotency-Key",
        )
    first = earlier[0]
    same = first["config_id"] == new.config_id and (
        # Without run_date the date is "yesterday": a replay on a later day is the same request.
        body.defaulted_date()
        or (
            (first["date_from"] or first["run_date"], first["run_date"])
            == (new.date_from or new.run_date, new.run_date)
        )
    )
    if not same:
        raise conflict(
            "Idempotency-Key was already used with a different run request",
            field="Idempotency-Key",
        )
    ids = [str(r["run_id"]) for r in earlier]
    if any(r["state"] == "PENDING" for r in earlier):
        # A concurrent duplicate is still being admitted; admitting again counts nothing twice.
        _admit_and_enqueue(deps, tenant_id, ids)
    return ids


def start(
    deps: Deps, tenant_id: str, body: StartRunRequest, idempotency_key: str | None = None
) -> tuple[dict[str, Any], bool]:
    """One run over the requested dates (and whether it is new), admitted as one run: one
    unit of the daily and monthly quota, one concurrency slot. With an Idempotency-Key a
    retried request gets the run the first one started, never admitted or charged twice."""
    # A paused config (is_active false) only stops its schedule; it still runs on demand.
    config = configs.config_row(deps, tenant_id, body.config_id)
    now = deps.clock()
    date_from, date_to = body.window(now.astimezone(dt.UTC).date())
    run_id = (
        runs.keyed_run_id(tenant_id, idempotency_key) if idempotency_key else runs.manual_run_id()
    )
    new = runs.NewRun(
        run_id=run_id,
        tenant_id=tenant_id,
        config_id=config["config_id"],
        pipeline=config["pipeline"],
        trigger="MANUAL",
        run_date=date_to,
        date_from=date_from,
    )
    anchor = run_id if idempotency_key else None
    inserted = runs.insert_pending(deps.warehouse, [new], now, unless_exists=anchor)
    ids = [run_id]
    if idempotency_key and inserted == 0:
        ids = _replay(deps, tenant_id, body, new)
    else:
        _admit_and_enqueue(deps, tenant_id, ids)
    # A replay answers what the first request answered (its run was admitted: QUEUED).
    view = {
        "run_ids": ids,
        "state": "QUEUED",
        "config_id": config["config_id"],
        "date_from": date_from,
        "date_to": date_to,
    }
    return view, inserted > 0


def retry(deps: Deps, tenant_id: str, run_id: str) -> tuple[dict[str, Any], bool]:
    """A new attempt of a failed or cancelled run: same config and date, admitted afresh.

    A run is retried once: asking again (a client retry, or a concurrent duplicate)
    answers with that retry and its current state, and False (not new)."""
    previous = get_retry_source(deps, tenant_id, run_id)
    existing = previous["retry"]
    if existing is not None and existing["state"] != "PENDING":
        view = {"run_ids": [existing["run_id"]], "state": existing["state"], "retry_of": run_id}
        return view, False
    if previous["state"] not in ("FAILED", "CANCELLED"):
        raise ApiError(
            409,
            "conflict",
            f"only a failed or cancelled run can be retried (it is {previous['state']})",
        )
    configs.config_row(deps, tenant_id, previous["config_id"])
    new = runs.NewRun(
        run_id=runs.retry_run_id(tenant_id, run_id),
        tenant_id=tenant_id,
        config_id=previous["config_id"],
        pipeline=previous["pipeline"],
        trigger="RETRY",
        run_date=previous["run_date"],
        date_from=previous["date_from"],
        attempt=int(previous["attempt"] or 1) + 1,
        retry_of=run_id,
    )
    # 0 inserted: a concurrent duplicate made the row; admission still counts it once.
    inserted = runs.insert_pending(deps.warehouse, [new], deps.clock())
    _admit_and_enqueue(deps, tenant_id, [new.run_id])
    return {"run_ids": [new.run_id], "state": "QUEUED", "retry_of": run_id}, inserted == 1


def cancel(deps: Deps, tenant_id: str, run_id: str) -> dict[str, Any]:
    """Cancels a queued run now, asks a running one to stop; a finished run is a 409.

    Cancelling a cancelled run answers like the first cancel did: clients retry."""
    # The conditional UPDATE decides; the one read after it tells 404 from 409.
    changed = runs.request_cancel(deps.warehouse, tenant_id, run_id, deps.clock())
    current = get_run_row(deps, tenant_id, run_id)
    if not changed and current["state"] != "CANCELLED":
        raise ApiError(409, "conflict", f"the run already ended ({current['state']})")
    return run_view(current)

"""One scheduler tick: due configs, run rows, admission, settle and reap, advance, enqueue.

Six BigQuery statements whatever the number of tenants and configs. Every
step is idempotent (deterministic run ids and task names, conditional
updates), so a retried or duplicated tick creates nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from shared.deps import Deps
from shared.platform.warehouse import Records, Typed
from shared.scheduling import admission, runs, schedule
from shared.scheduling.admission import LIVE_HORIZON

log = logging.getLogger(__name__)

# One tick handles at most this many due configs; the rest stay due and are
# taken by the next tick (statement sizes stay bounded).
MAX_DUE_PER_TICK = 5000
# Enqueue is retried for QUEUED runs this young that no runner has claimed,
# so a run whose first enqueue failed still starts; names make it harmless.
REENQUEUE_WINDOW = dt.timedelta(hours=1)
# The run date a scheduled run processes: the day before its schedule day in
# the config's zone (billing exports of a day settle after it ends), unless
# the config's parameters say `run_date_lag_days`.
DEFAULT_LAG_DAYS = 1
_ACTIVE_TENANT_STATUSES = ("TRIALING", "ACTIVE", "PAST_DUE")


@dataclass
class TickReport:
    due: int = 0
    admitted: int = 0
    skipped: int = 0
    enqueued: int = 0
    reaped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def run_date_for(scheduled_for: dt.datetime, tz_name: str, lag_days: int) -> dt.date:
    local_day = scheduled_for.astimezone(schedule.zone(tz_name)).date()
    return local_day - dt.timedelta(days=lag_days)


def _lag(parameters_json: str | None) -> int:
    value = json.loads(parameters_json or "{}").get("run_date_lag_days", DEFAULT_LAG_DAYS)
    return value if isinstance(value, int) and 0 <= value <= 31 else DEFAULT_LAG_DAYS


def _due_configs(deps: Deps, now: dt.datetime) -> list[dict[str, Any]]:
    warehouse = deps.warehouse
    return warehouse.query(
        "SELECT config_id, tenant_id, pipeline, schedule_cron, timezone, next_run_at, "
        f"parameters_json FROM {warehouse.central('tenant_pipeline_configs')} "
        "WHERE status = 'ACTIVE' AND is_active AND next_run_at <= @now "
        "AND tenant_id IN (SELECT tenant_id FROM "
        f"{warehouse.central('tenant_profiles')} WHERE status IN UNNEST(@statuses) "
        "AND onboarding_state = 'COMPLETE') "
        "ORDER BY tenant_id, next_run_at, config_id LIMIT @max",
        {"now": now, "statuses": list(_ACTIVE_TENANT_STATUSES), "max": MAX_DUE_PER_TICK},
        component="trigger",
    )


def _next_or_none(config: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
    """The config's next fire time; None (no more scheduled runs) for a stored schedule that
    can never fire, so one config saved before that was refused can't fail every tick."""
    try:
        return schedule.next_fire(config["schedule_cron"], config["timezone"], now)
    except schedule.ScheduleError:
        log.warning("schedule never fires", extra={"config_id": config["config_id"]})
        return None


def _advance(deps: Deps, due: list[dict[str, Any]], now: dt.datetime) -> int:
    """Each due config's next fire time after now: a config down for a day gets one
    catch-up run, not one per missed slot. Conditional on the time we read, so a
    concurrent tick can't advance a config twice."""
    warehouse = deps.warehouse
    advances = Records(
        [
            {
                "config_id": ("STRING", c["config_id"]),
                "seen": ("TIMESTAMP", c["next_run_at"]),
                "next_run_at": ("TIMESTAMP", _next_or_none(c, now)),
            }
            for c in due
        ]
    )
    return warehouse.execute(
        f"UPDATE {warehouse.central('tenant_pipeline_configs')} AS c "
        "SET next_run_at = a.next_run_at, updated_at = a.now "
        "FROM (SELECT n.*, @now AS now FROM UNNEST(@advances) AS n) AS a "
        "WHERE c.config_id = a.config_id AND c.next_run_at = a.seen AND c.status = 'ACTIVE'",
        {"advances": advances, "now": now},
        component="trigger",
    )


def _outcomes(deps: Deps, tick_ids: list[str], now: dt.datetime) -> list[dict[str, Any]]:
    """The tick's runs, QUEUED runs still waiting for a runner, and what was just reaped."""
    warehouse = deps.warehouse
    return warehouse.query(
        f"SELECT run_id, tenant_id, state, error_code FROM "
        f"{warehouse.central('tenant_pipeline_runs')} WHERE created_at >= @horizon AND ("
        "run_id IN UNNEST(@ids) OR (state = 'QUEUED' AND admitted_at >= @recent) "
        "OR (updated_at = @now AND error_code IN ('lost_heartbeat', 'never_started')))",
        {
            "ids": Typed("STRING", tick_ids),
            "horizon": now - LIVE_HORIZON,
            "recent": now - REENQUEUE_WINDOW,
            "now": now,
        },
        component="trigger",
    )


def tick(deps: Deps) -> TickReport:
    """Admits and enqueues every due run of every active tenant, and reaps dead runs."""
    now = deps.clock()
    warehouse = deps.warehouse
    due = _due_configs(deps, now)
    new_runs = [
        runs.NewRun(
            run_id=runs.scheduled_run_id(c["config_id"], c["next_run_at"]),
            tenant_id=c["tenant_id"],
            config_id=c["config_id"],
            pipeline=c["pipeline"],
            trigger="SCHEDULE",
            run_date=run_date_for(c["next_run_at"], c["timezone"], _lag(c["parameters_json"])),
            scheduled_for=c["next_run_at"],
        )
        for c in due
    ]
    tick_ids = [r.run_id for r in new_runs]
    tenants = sorted({r.tenant_id for r in new_runs})
    if new_runs:
        runs.insert_pending(warehouse, new_runs, now)
        admission.admit(
            warehouse,
            [admission.Request(r.tenant_id, r.run_id, i) for i, r in enumerate(new_runs)],
            now,
            all_or_nothing=False,
        )
    runs.settle(
        warehouse,
        tick_ids,
        tenants,
        now,
        dt.timedelta(seconds=deps.settings.run_stale_after_seconds),
    )
    if due:
        _advance(deps, due, now)
    report = TickReport(due=len(due))
    ticked = set(tick_ids)
    for row in _outcomes(deps, tick_ids, now):
        if row["error_code"] in ("lost_heartbeat", "never_started") and row["run_id"] not in ticked:
            report.reaped += 1
            continue
        if row["run_id"] in ticked:
            report.admitted += row["state"] != "SKIPPED"
            report.skipped += row["state"] == "SKIPPED"
        if row["state"] == "QUEUED" and deps.task_queue.enqueue_run(str(row["run_id"])):
            report.enqueued += 1
    log.info("tick", extra=report.as_dict())
    return report

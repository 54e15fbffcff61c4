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
# taken by a later tick (statement sizes stay bounded). Which ones go first is
# fair across tenants: see _due_configs.
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


def _due_configs(deps: Deps, now: dt.datetime, max_due: int) -> list[dict[str, Any]]:
    """At most `max_due` due configs of active tenants, taken fairly across tenants.

    Each tenant's due configs take turns by next_run_at (its most overdue
    first), and the tick takes every tenant's first turn before anyone's
    second, so a tenant with many configs can't fill the cap and leave others
    due forever. Turns beyond what the tenant's daily or monthly quota can
    still admit come last: they would only be SKIPPED, and must not take
    slots from runs that can go. Within a class, older next_run_at goes first,
    so a config left out stays due and wins a later tick (no lost fire).
    Ties break on config_id: the selection is deterministic.
    """
    warehouse = deps.warehouse
    today, month = admission.utc_day(now)
    rows = warehouse.query(
        "WITH due AS ("
        "SELECT c.config_id, c.tenant_id, c.pipeline, c.schedule_cron, c.timezone, "
        "c.next_run_at, c.parameters_json, ROW_NUMBER() OVER ("
        "PARTITION BY c.tenant_id ORDER BY c.next_run_at, c.config_id) AS turn "
        f"FROM {warehouse.central('tenant_pipeline_configs')} AS c "
        "WHERE c.status = 'ACTIVE' AND c.is_active AND c.next_run_at <= @now "
        "AND c.tenant_id IN (SELECT tenant_id FROM "
        f"{warehouse.central('tenant_profiles')} WHERE status IN UNNEST(@statuses) "
        "AND onboarding_state = 'COMPLETE')), "
        # What admission would still grant today (same counters, same UTC
        # roll-over); concurrency is left out: slots free up between ticks.
        "headroom AS ("
        "SELECT s.tenant_id, LEAST("
        "s.daily_run_limit - IF(u.usage_date = @today, u.daily_runs, 0), "
        "s.monthly_run_limit - IF(u.usage_month = @month, u.monthly_runs, 0)) AS runs_left "
        f"FROM {warehouse.central('tenant_subscriptions')} AS s "
        f"JOIN {warehouse.central('tenant_usage_quotas')} AS u ON u.tenant_id = s.tenant_id "
        "WHERE s.tenant_id IN (SELECT tenant_id FROM due) "
        # One row per tenant even if its subscription or usage row has a twin.
        "QUALIFY ROW_NUMBER() OVER ("
        "PARTITION BY s.tenant_id ORDER BY s.created_at, u.created_at) = 1) "
        "SELECT d.config_id, d.tenant_id, d.pipeline, d.schedule_cron, d.timezone, "
        "d.next_run_at, d.parameters_json FROM due AS d "
        "LEFT JOIN headroom AS h ON h.tenant_id = d.tenant_id "
        "ORDER BY IF(d.turn <= IFNULL(h.runs_left, 0), 0, 1), d.turn, d.next_run_at, "
        "d.tenant_id, d.config_id LIMIT @max",
        {
            "now": now,
            "statuses": list(_ACTIVE_TENANT_STATUSES),
            "today": today,
            "month": month,
            "max": max_due,
        },
        component="trigger",
    )
    # A config row with a twin (two INSERT-only MERGEs) is one config: listed
    # twice, the advancing UPDATE ... FROM would match its rows to two sources.
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["config_id"], row)
    return list(unique.values())


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


def tick(deps: Deps, *, max_due: int = MAX_DUE_PER_TICK) -> TickReport:
    """Admits and enqueues due runs of active tenants (at most `max_due`), and reaps dead runs."""
    now = deps.clock()
    warehouse = deps.warehouse
    due = _due_configs(deps, now, max_due)
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

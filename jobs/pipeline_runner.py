"""The pipeline runner (Cloud Run job): claim one run, heartbeat, execute, write logs, finish.

Exit codes: 0 when the run succeeded, was cancelled, or was not ours to run
(a duplicate delivery, or the run is no longer QUEUED); 1 when it failed, so
Cloud Run's retries and monitoring see the truth; 2 for bad arguments.

One run of a config runs at a time (see runs.claim): a run whose sibling is
RUNNING waits, polling, for up to TURN_MAX_WAIT_SECONDS. If its turn has not
come by then it exits 0 and stays QUEUED; the reaper fails it as never
started once its sibling is done and it is older than the queue timeout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import threading
import time
from typing import Any

from shared.deps import Deps, deps
from shared.pipelines.context import PipelineOutcome, RunContext
from shared.platform.logs import configure_logging
from shared.scheduling import runs
from shared.scheduling.admission import LIVE_HORIZON

log = logging.getLogger("jobs.pipeline_runner")
_RUN_ID_RE = re.compile(r"^run_[0-9a-f]{32}$")
# Within the runner task's timeout (Terraform: 3600 s) with room for the run.
TURN_POLL_SECONDS = 15.0
TURN_MAX_WAIT_SECONDS = 30 * 60.0


def _load(current: Deps, run_id: str) -> dict[str, Any] | None:
    """The claimed run with its config, dataset and plan limit, in one read."""
    warehouse = current.warehouse
    rows = warehouse.query(
        "SELECT r.run_id, r.tenant_id, r.config_id, r.pipeline, r.run_date, r.date_from, "
        "r.attempt, "
        "c.parameters_json, c.provider_config_id, c.credential_id, p.dataset_id, s.plan "
        f"FROM {warehouse.central('tenant_pipeline_runs')} AS r "
        f"JOIN {warehouse.central('tenant_pipeline_configs')} AS c ON c.config_id = r.config_id "
        f"JOIN {warehouse.central('tenant_profiles')} AS p ON p.tenant_id = r.tenant_id "
        f"JOIN {warehouse.central('tenant_subscriptions')} AS s ON s.tenant_id = r.tenant_id "
        "WHERE r.run_id = @r AND r.created_at >= @horizon LIMIT 1",
        {"r": run_id, "horizon": current.clock() - LIVE_HORIZON},
        component="runner",
    )
    return rows[0] if rows else None


def _context(row: dict[str, Any]) -> RunContext:
    from shared.tenancy.plans import PLANS

    plan = PLANS.get(str(row["plan"]))
    return RunContext(
        run_id=row["run_id"],
        tenant_id=row["tenant_id"],
        config_id=row["config_id"],
        pipeline=row["pipeline"],
        run_date=row["run_date"],
        dataset_id=row["dataset_id"],
        parameters=json.loads(row["parameters_json"] or "{}"),
        provider_config_id=row["provider_config_id"],
        credential_id=row["credential_id"],
        max_bytes_billed=plan.max_bytes_billed if plan else None,
        attempt=int(row["attempt"] or 1),
        date_from=row["date_from"],
    )


class Heartbeat(threading.Thread):
    """Beats every RUN_HEARTBEAT_SECONDS; sets `stop` when the run was cancelled or reaped."""

    def __init__(self, current: Deps, run_id: str, tenant_id: str, stop: threading.Event) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.current, self.run_id, self.tenant_id, self.stop = current, run_id, tenant_id, stop
        self.done = threading.Event()

    def run(self) -> None:
        interval = self.current.settings.run_heartbeat_seconds
        while not self.done.wait(interval):
            try:
                runs.beat(self.current.warehouse, self.run_id, self.tenant_id, self.current.clock())
                if not runs.still_wanted(self.current.warehouse, self.run_id, self.current.clock()):
                    log.info("run cancelled or reaped; stopping", extra={"run_id": self.run_id})
                    self.stop.set()
            except Exception:
                # A missed beat is not fatal: the reaper waits for several.
                log.exception("heartbeat failed", extra={"run_id": self.run_id})


def _claim_in_turn(
    current: Deps, run_id: str, poll_seconds: float, max_wait_seconds: float
) -> bool:
    """Claims the run, waiting while another run of its config is RUNNING (runs.claim)."""
    warehouse = current.warehouse
    waited = 0.0
    while not runs.claim(warehouse, run_id, current.clock()):
        if waited >= max_wait_seconds:
            return False
        if not runs.waiting_for_its_turn(warehouse, run_id, current.clock()):
            # Not blocked: gone (a duplicate delivery, cancelled), or the sibling
            # finished between the two reads, which one more claim tells apart.
            return runs.claim(warehouse, run_id, current.clock())
        if waited == 0:
            log.info("waiting for another run of the config to finish", extra={"run_id": run_id})
        time.sleep(poll_seconds)
        waited += poll_seconds
    return True


def execute_run(
    current: Deps,
    run_id: str,
    *,
    poll_seconds: float = TURN_POLL_SECONDS,
    max_wait_seconds: float = TURN_MAX_WAIT_SECONDS,
) -> int:
    """Claims and runs `run_id`; the exit code of the job."""
    from shared.pipelines.executor import execute

    warehouse = current.warehouse
    if not _claim_in_turn(current, run_id, poll_seconds, max_wait_seconds):
        log.info(
            "run not claimable (duplicate delivery, no longer queued, or still not its turn)",
            extra={"run_id": run_id},
        )
        return 0
    row = _load(current, run_id)
    if row is None:  # pragma: no cover - the claim just saw it
        return 1
    context = _context(row)
    stop = threading.Event()
    heartbeat = Heartbeat(current, run_id, context.tenant_id, stop)
    heartbeat.start()
    try:
        outcome = execute(current, context, stop)
    except Exception as exc:
        log.exception("pipeline crashed", extra={"run_id": run_id})
        outcome = PipelineOutcome(
            "FAILED", error_code="internal_error", error_message=type(exc).__name__
        )
    finally:
        heartbeat.done.set()
    if stop.is_set() and outcome.state != "FAILED":
        outcome.state = "CANCELLED"
    now = current.clock()
    runs.write_logs(warehouse, row, outcome.steps, outcome.dq_results, now)
    if not runs.finish(warehouse, run_id, outcome, now):
        log.warning("run was reaped before it finished", extra={"run_id": run_id})
        return 1
    from shared.notify.run_alerts import record_run_end

    record_run_end(warehouse, run_id, now)
    if outcome.state == "SUCCEEDED" and outcome.rows_written:
        from shared.notify.anomaly import record_anomalies
        from shared.tenancy.tenant_dataset import dataset_id_for

        dataset_id = dataset_id_for(context.tenant_id, current.settings.tenant_dataset_suffix)
        # Bounded like the run's own statements: the MERGE reads focus_cost history.
        record_anomalies(
            warehouse,
            context.tenant_id,
            dataset_id,
            row["run_date"],
            now,
            maximum_bytes_billed=context.max_bytes_billed,
        )
        from shared.insights.budget_alerts import record_budget_alerts

        record_budget_alerts(current, context.tenant_id, now)
    log.info(
        "run finished",
        extra={"run_id": run_id, "tenant_id": context.tenant_id, "state": outcome.state},
    )
    return 1 if outcome.state == "FAILED" else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.pipeline_runner")
    parser.add_argument("--run-id", required=True)
    args = parser.parse_args(argv)
    if not _RUN_ID_RE.match(args.run_id):
        parser.error("--run-id must look like run_<32 hex>")
    # The functions' bound on an unreachable warehouse is not the runner's: a run rides out an
    # outage on the client's own retry instead of failing half-way (docs/drills.md, drill 2).
    os.environ.pop("BQ_UNREACHABLE_SECONDS", None)
    current = deps()
    configure_logging(current.settings.log_level, current.settings.gcp_project)
    return execute_run(current, args.run_id)


if __name__ == "__main__":
    sys.exit(main())

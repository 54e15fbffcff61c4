"""Failure drills 3, 4 and 6 (issue 17) against the running local stack: duplicated and
concurrent deliveries of tasks, ticks and Stripe events lose nothing and apply nothing twice.

The stack's dispatcher holds every task (LOCAL_RUNNER_CONCURRENCY=0): each drill is
the Cloud Tasks / Scheduler / Stripe side itself and delivers as those may. These run
in `make test` at a reduced size; `make drills` runs them at full size
(DRILL_SCALE=full) and prints their figures (docs/drills.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from tests.drills.harness import (
    Figures,
    create_config,
    deliver,
    onboard,
    query,
    quota,
    record,
    run_view,
    set_limits,
    start_manual_run,
    table,
    take_tasks,
)
from tests.e2e.stack import RunningStack, call, call_json, start_stack

FULL = os.environ.get("DRILL_SCALE") == "full"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("drills") / "data",
        # No ticker and no dispatcher of its own: the drills tick and deliver.
        env={"SCHEDULER_TICK_SECONDS": "86400", "LOCAL_RUNNER_CONCURRENCY": "0"},
        timeout=300,
    )
    yield running
    assert running.stop() == 0


# ------------------------------------------------------- drill 6: a task delivered twice


def test_drill_6_a_task_delivered_twice_at_once_executes_once(stack: RunningStack) -> None:
    started = time.monotonic()
    tenant = onboard(stack)
    key = tenant["api_key"]
    pairs = 5 if FULL else 2
    # One config per run: runs of one config wait for each other's turn anyway.
    run_ids = [
        start_manual_run(stack, key, create_config(stack, key, f"twice-{i}")) for i in range(pairs)
    ]
    take_tasks(stack, run_ids)

    # Both deliveries of every run start together, as two Cloud Run executions would.
    runners = [
        (run_id, deliver(stack, run_id, f"{run_id}-{copy}"))
        for run_id in run_ids
        for copy in (1, 2)
    ]
    codes = [process.wait(timeout=300) for _, process in runners]

    assert codes == [0] * len(runners)
    # Of each pair, exactly one runner found the run already claimed and stood down.
    for run_id in run_ids:
        logs = [(stack.data_dir / "drill-runs" / f"{run_id}-{c}.log").read_text() for c in (1, 2)]
        assert sum("run not claimable" in text for text in logs) == 1, logs
    steps = query(
        stack,
        f"SELECT run_id, COUNT(*) AS n FROM {table(stack, 'tenant_step_logs')} "
        "WHERE run_id IN UNNEST(@ids) GROUP BY run_id",
        ids=("STRING", run_ids),
    )
    # dryrun has two steps: a second execution would log four.
    assert {r["run_id"]: r["n"] for r in steps} == dict.fromkeys(run_ids, 2)
    for run_id in run_ids:
        run = run_view(stack, key, run_id)
        assert run["state"] == "SUCCEEDED", run
        assert [s["step_name"] for s in run["steps"]] == ["check_dataset", "check_credential"]
    used = quota(stack, key)
    assert used["daily"]["used"] == pairs and used["running"] == 0, used
    record(
        Figures(
            "6. task delivered twice at once",
            requests=2 * pairs,
            faults=f"{pairs} runs x 2 simultaneous runner executions",
            checked="one execution per run (step logs), quota counted once, slot freed",
            seconds=time.monotonic() - started,
        )
    )


# ------------------------------------------- drill 4: two ticks at once, again and again


def _tick_twice_at_once(stack: RunningStack) -> list[tuple[int, Any]]:
    barrier = threading.Barrier(2)
    answers: list[tuple[int, Any]] = []

    def tick() -> None:
        barrier.wait()
        status, _, body = call_json(
            "POST", f"{stack.url}/trigger/", {}, {"X-Admin-Key": stack.admin_key()}
        )
        answers.append((status, body))

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_drill_4_two_concurrent_ticks_never_give_a_config_two_runs_for_one_time(
    stack: RunningStack,
) -> None:
    started = time.monotonic()
    tenant = onboard(stack)
    key, tenant_id = tenant["api_key"], tenant["tenant_id"]
    # Every run is admitted, so a run created twice would also be counted twice.
    set_limits(
        stack,
        tenant_id,
        daily_run_limit=100_000,
        monthly_run_limit=1_000_000,
        concurrent_run_limit=100_000,
    )
    configs = [create_config(stack, key, f"ticked-{i}") for i in range(3)]
    rounds = 100 if FULL else 3
    first = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(
        minutes=rounds + 1
    )
    answers: list[tuple[int, Any]] = []
    for i in range(rounds):
        # Each round makes every config due at a new instant; then two ticks race for it.
        query(
            stack,
            f"UPDATE {table(stack, 'tenant_pipeline_configs')} SET next_run_at = @due "
            "WHERE config_id IN UNNEST(@ids)",
            due=("TIMESTAMP", first + dt.timedelta(minutes=i)),
            ids=("STRING", configs),
        )
        answers += _tick_twice_at_once(stack)

    assert [status for status, _ in answers] == [200] * (2 * rounds), [
        a for a in answers if a[0] != 200
    ]
    runs = query(
        stack,
        "SELECT config_id, scheduled_for, COUNT(*) AS rows_, COUNT(DISTINCT run_id) AS ids, "
        "LOGICAL_AND(state != 'SKIPPED') AS admitted "
        f"FROM {table(stack, 'tenant_pipeline_runs')} WHERE tenant_id = @t "
        "GROUP BY config_id, scheduled_for",
        t=tenant_id,
    )
    expected = {
        (config, first + dt.timedelta(minutes=i)) for config in configs for i in range(rounds)
    }
    assert {(r["config_id"], r["scheduled_for"]) for r in runs} == expected
    doubled = [r for r in runs if r["rows_"] != 1 or r["ids"] != 1]
    assert doubled == []
    assert all(r["admitted"] for r in runs)
    # The usage counter agrees with the run table: each run admitted (and counted) once.
    assert quota(stack, key)["daily"]["used"] == len(expected)
    record(
        Figures(
            "4. two trigger ticks at once",
            requests=2 * rounds,
            faults=f"{rounds} rounds x 2 concurrent ticks over {len(configs)} due configs",
            checked="one run per config and scheduled time; daily usage = admitted runs",
            seconds=time.monotonic() - started,
        )
    )


# ------------------------------------- drill 3: Stripe redelivers, shuffled and concurrent

LOOKUP_KEYS = {
    "STARTER": "convergence_starter_monthly",
    "PROFESSIONAL": "convergence_professional_monthly",
    "SCALE": "convergence_scale_monthly",
}
TENANT_STATUS = {"active": "ACTIVE", "past_due": "PAST_DUE", "trialing": "TRIALING"}


def _event(type_: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "object": "event",
        "type": type_,
        "created": created,
        "data": {"object": obj},
    }


def _signed_post(stack: RunningStack, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    payload = json.dumps(event)
    secret = json.loads((stack.data_dir / "secrets.json").read_text())["STRIPE_WEBHOOK_SECRET"]
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)  # type: ignore[attr-defined]
    return call(
        "POST",
        f"{stack.url}/stripe_webhook/",
        payload.encode(),
        {"Content-Type": "application/json", "Stripe-Signature": header},
    )


def test_drill_3_stripe_redeliveries_in_any_order_apply_each_event_once_and_the_latest_wins(
    stack: RunningStack,
) -> None:
    started = time.monotonic()
    rng = random.Random(17)
    tenant_id = "drill_" + uuid.uuid4().hex[:8]
    session = {
        "id": "cs_test_" + uuid.uuid4().hex,
        "object": "checkout.session",
        "client_reference_id": tenant_id,
        "customer": "cus_" + uuid.uuid4().hex[:14],
        "subscription": "sub_" + uuid.uuid4().hex[:14],
        "payment_status": "paid",
        "customer_details": {"email": "billing@drill.example", "name": "Drill Ltd"},
        "metadata": {"price_lookup_key": LOOKUP_KEYS["PROFESSIONAL"]},
    }
    t0 = int(time.time()) - 3600
    status, _, body = _signed_post(stack, _event("checkout.session.completed", session, t0))
    assert status == 200, body

    count = 50 if FULL else 10
    events = []
    for i in range(count):
        plan, sub_status = rng.choice(list(LOOKUP_KEYS)), rng.choice(list(TENANT_STATUS))
        subscription = {
            "id": session["subscription"],
            "object": "subscription",
            "customer": session["customer"],
            "status": sub_status,
            "items": {"data": [{"price": {"lookup_key": LOOKUP_KEYS[plan]}}]},
            "metadata": {},
        }
        # One second apart: Stripe's `created` orders them.
        events.append(_event("customer.subscription.updated", subscription, t0 + 1 + i))
    latest = events[-1]["data"]["object"]
    audit = table(stack, "tenant_audit_log")
    plan_changes_before = query(
        stack,
        f"SELECT COUNT(*) AS n FROM {audit} WHERE tenant_id = @t "
        "AND action = 'tenant.plan_changed'",
        t=tenant_id,
    )[0]["n"]

    deliveries = [event for event in events for _ in range(3)]
    rng.shuffle(deliveries)
    statuses: list[int] = []
    unexpected: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def stripe_sender() -> None:
        # Stripe's side: a delivery not answered 2xx is delivered again later.
        while True:
            with lock:
                if not deliveries:
                    return
                event = deliveries.pop()
            status, headers, body = _signed_post(stack, event)
            retry = status == 409 and bool(headers.get("Retry-After"))
            with lock:
                statuses.append(status)
                if retry:
                    deliveries.insert(0, event)
                elif status != 200:
                    unexpected.append((status, body))
            if retry:
                time.sleep(0.5)

    senders = [threading.Thread(target=stripe_sender) for _ in range(8)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert unexpected == []

    ledger = query(
        stack,
        "SELECT event_id, COUNT(*) AS rows_, MIN(status) AS status, MAX(attempts) AS attempts "
        f"FROM {table(stack, 'tenant_webhook_events')} WHERE event_id IN UNNEST(@ids) "
        "GROUP BY event_id",
        ids=("STRING", [e["id"] for e in events]),
    )
    assert len(ledger) == count
    # Every event claimed once (no second attempt), settled, and ledgered once.
    assert [r for r in ledger if r["rows_"] != 1 or r["attempts"] != 1] == []
    assert {r["status"] for r in ledger} <= {"PROCESSED", "IGNORED"}
    applied = sum(r["status"] == "PROCESSED" for r in ledger)
    plan_changes = query(
        stack,
        f"SELECT COUNT(*) AS n FROM {audit} WHERE tenant_id = @t "
        "AND action = 'tenant.plan_changed'",
        t=tenant_id,
    )[0]["n"]
    # Each applied event wrote its plan change once; ignored (older) ones wrote none.
    assert plan_changes - plan_changes_before == applied
    final = query(
        stack,
        f"SELECT s.plan, s.status AS sub_status, p.status FROM "
        f"{table(stack, 'tenant_subscriptions')} AS s JOIN {table(stack, 'tenant_profiles')} "
        "AS p USING (tenant_id) WHERE tenant_id = @t",
        t=tenant_id,
    )
    wanted_plan = next(
        p for p, k in LOOKUP_KEYS.items() if k == latest["items"]["data"][0]["price"]["lookup_key"]
    )
    assert final == [
        {
            "plan": wanted_plan,
            "sub_status": latest["status"],
            "status": TENANT_STATUS[latest["status"]],
        }
    ]
    redelivered = sum(s != 200 for s in statuses)
    record(
        Figures(
            "3. Stripe redelivers shuffled, concurrently",
            requests=len(statuses) + 1,
            faults=f"{count} events x 3 deliveries, shuffled, 8 senders; {redelivered} answered "
            "409 (in progress) and were redelivered",
            checked=f"each event ledgered and claimed once; {applied} applied, the rest older; "
            "final plan and status = latest event",
            seconds=time.monotonic() - started,
        )
    )

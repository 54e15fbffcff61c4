"""gcp_billing.extract + focus.convert_gcp over runs: idempotent re-runs, late corrections, keys."""

from __future__ import annotations

import datetime as dt
import logging
import os
from decimal import Decimal
from pathlib import Path

import pytest

from shared.pipelines.context import StepContext, StepError
from shared.sources.gcp import mapping as focus
from shared.sources.gcp import reader as gcp_billing
from tests.credential_samples import create_body, pem_marker
from tests.integration.conftest import Platform
from tests.integration.focus_support import FocusTenant, make_tenant
from tests.integration.test_focus_golden import DAY, row, ts

PREV = DAY - dt.timedelta(days=1)
NEXT = DAY + dt.timedelta(days=1)


def run(tenant: FocusTenant, day: dt.date, lookback: int = 0) -> None:
    gcp_billing.extract(tenant.ctx("extract", day, lookback_days=lookback))
    focus.convert_gcp(tenant.ctx("convert", day, lookback_days=lookback))


def totals(tenant: FocusTenant) -> tuple[int, Decimal, int]:
    f = tenant.query("SELECT COUNT(*) AS n, SUM(BilledCost) AS b FROM {focus}")[0]
    r = tenant.query("SELECT COUNT(*) AS n FROM {raw}")[0]
    return int(f["n"]), f["b"], int(r["n"])


@pytest.fixture
def tenant(platform: Platform) -> FocusTenant:
    t = make_tenant(platform)
    t.seed(
        [
            row("d-1", cost=1.25, usage_start_time=ts(DAY, 1), usage_end_time=ts(DAY, 2)),
            row("d-2", cost=2.5, usage_start_time=ts(DAY, 22), usage_end_time=ts(DAY, 23)),
            # The previous day, exported the same day: not in DAY's window (lookback 0).
            row(
                "prev",
                cost=100.0,
                usage_start_time=ts(PREV, 5),
                usage_end_time=ts(PREV, 6),
                export_time=ts(PREV, 9),
            ),
            # The next day: never in DAY's window.
            row(
                "next",
                cost=1000.0,
                usage_start_time=ts(NEXT, 5),
                usage_end_time=ts(NEXT, 6),
                export_time=ts(NEXT, 9),
            ),
        ]
    )
    return t


def test_a_run_takes_only_its_window_and_rerunning_it_never_duplicates(
    tenant: FocusTenant,
) -> None:
    run(tenant, DAY)
    assert totals(tenant) == (2, Decimal("3.75"), 2)
    first = tenant.query("SELECT x_run_id FROM {focus} LIMIT 1")[0]["x_run_id"]
    run(tenant, DAY)
    run(tenant, DAY)
    assert totals(tenant) == (2, Decimal("3.75"), 2)
    # The rows were replaced by the last run, not kept from the first.
    assert tenant.query("SELECT DISTINCT x_run_id FROM {focus}")[0]["x_run_id"] != first
    # Another date adds its own rows and leaves DAY's alone.
    run(tenant, PREV)
    assert totals(tenant) == (3, Decimal("103.75"), 3)


def test_a_late_correction_is_picked_up_by_the_next_run(tenant: FocusTenant) -> None:
    run(tenant, PREV)
    run(tenant, DAY)
    assert totals(tenant) == (3, Decimal("103.75"), 3)
    # Google exports a correction for PREV a day later (usage date PREV, export date NEXT).
    tenant.seed(
        [
            row(
                "late-correction",
                cost_type="adjustment",
                cost=-4.5,
                cost_at_list=-4.5,
                usage_start_time=ts(PREV, 5),
                usage_end_time=ts(PREV, 6),
                export_time=ts(NEXT, 2),
                adjustment_info={"id": "adj-9", "description": "fix", "mode": "M", "type": "T"},
            )
        ]
    )
    run(tenant, NEXT)
    assert totals(tenant) == (5, Decimal("1099.25"), 5)  # 103.75 + 1000 - 4.5
    late = tenant.query("SELECT * FROM {focus} WHERE ChargeDescription = 'late-correction'")
    assert len(late) == 1 and late[0]["ChargeClass"] == "Correction"
    # Re-running the corrected date, or the next one, keeps exactly one copy.
    run(tenant, PREV)
    run(tenant, NEXT)
    assert totals(tenant) == (5, Decimal("1099.25"), 5)
    result = focus.check_gcp(tenant.ctx("dq", NEXT, lookback_days=0))
    assert all(r.status == "PASS" for r in result.dq_results)


def test_lookback_rereads_the_previous_days(tenant: FocusTenant) -> None:
    run(tenant, DAY, lookback=1)
    assert totals(tenant) == (3, Decimal("103.75"), 3)


def test_a_ranged_run_takes_every_date_of_its_range_once_and_checks_it(
    tenant: FocusTenant,
) -> None:
    def ranged(step: str) -> StepContext:
        return tenant.ctx(step, NEXT, date_from=PREV, lookback_days=0)

    extracted = gcp_billing.extract(ranged("extract"))
    focus.convert_gcp(ranged("convert"))
    focus.convert_gcp(ranged("convert"))  # a retried step replaces, never duplicates

    assert extracted.rows_processed == 4
    assert totals(tenant) == (4, Decimal("1103.75"), 4)
    lineage = tenant.query("SELECT DISTINCT x_run_date AS d FROM {focus}")
    assert lineage == [{"d": NEXT}]  # the run's date: its last data date
    result = focus.check_gcp(ranged("dq"))
    assert all(r.status == "PASS" for r in result.dq_results)
    # A later daily run of one day inside the range replaces that day only.
    run(tenant, DAY)
    assert totals(tenant) == (4, Decimal("1103.75"), 4)


def test_a_missing_source_table_is_a_permanent_error(platform: Platform) -> None:
    tenant = make_tenant(platform)  # nothing seeded
    with pytest.raises(StepError) as caught:
        gcp_billing.extract(tenant.ctx("extract", DAY))
    assert caught.value.code == "source_not_found" and not caught.value.transient


def _files_containing(roots: list[Path], needle: bytes, since: float) -> list[str]:
    hits = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = Path(dirpath) / name
                try:
                    if path.stat().st_mtime < since or path.stat().st_size > 200_000_000:
                        continue
                    if needle in path.read_bytes():
                        hits.append(str(path))
                except OSError:
                    continue
    return hits


def test_service_account_extract_keeps_the_key_off_disk_and_out_of_logs(
    platform: Platform, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    body = create_body("GCP")
    needle = pem_marker(body["credentials"]["private_key"])
    tenant = make_tenant(platform, credential_body=body)
    tenant.seed([row("sa-1", cost=2.0), row("sa-2", cost=3.0, credits=[])])
    started = __import__("time").time() - 1
    caplog.set_level(logging.DEBUG)
    result = gcp_billing.extract(tenant.ctx("extract", DAY, lookback_days=0))
    assert result.message is not None and "SERVICE_ACCOUNT" in result.message
    focus.convert_gcp(tenant.ctx("convert", DAY, lookback_days=0))
    assert totals(tenant) == (2, Decimal("5.0"), 2)
    lineage = tenant.query("SELECT DISTINCT x_credential_id AS c FROM {raw}")
    assert lineage == [{"c": tenant.credential_id}]
    # No staging table is left behind in the tenant dataset.
    tables = {t.table_id for t in tenant.client.list_tables(tenant.tenant_id)}
    assert not [t for t in tables if t.startswith("_stg_")]
    out, err = capfd.readouterr()
    assert needle not in caplog.text and needle not in out and needle not in err
    # Nothing written during the run (temp dirs, cwd, the emulator's data) holds the key.
    roots = [Path("/tmp"), Path.cwd(), platform.deps.settings.local_data_dir]
    assert _files_containing(roots, needle.encode(), started) == []

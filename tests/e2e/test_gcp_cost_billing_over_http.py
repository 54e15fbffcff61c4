"""e2e: `gcp_cost_billing` on a schedule produces FOCUS rows over HTTP (the `make demo` flow).

Runs `local.demo` against a stack started for the test: seed an export, onboard,
credential + provider config, schedule, tick, wait, read the run (its steps and
DQ results through the run API) and the FOCUS rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local import demo
from tests.e2e.stack import RunningStack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # The test ticks the trigger itself; the stack's ticker stays out of the way.
    running = start_stack(
        tmp_path_factory.mktemp("gcp_cost_billing") / "data",
        env={"SCHEDULER_TICK_SECONDS": "3600"},
    )
    yield running
    assert running.stop() == 0


def test_a_scheduled_gcp_cost_billing_run_produces_reconciled_focus_rows(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = stack.endpoints()
    target = demo.Stack(
        endpoints["gateway_url"],
        endpoints["emulator_url"],
        endpoints["project"],
        stack.admin_key(),
        data_dir=stack.data_dir,  # the Azure part reads Azurite's account key there
    )

    assert demo.demo(target) == 0, capsys.readouterr().out + stack.output()[-3000:]

    out = capsys.readouterr().out
    assert ": SUCCEEDED" in out
    assert "reconciliation_billed_cost" in out and " FAIL " not in out

"""FOCUS conformance: the pipeline's own output, as Parquet, through the official focus-validator.

`make focus-venv` builds the Python 3.12 venv the validator needs (`make test`
depends on it; this test builds it too if it is missing). The gate
(../shared/tools/focus_gate.py) fails on any failed rule outside its allowlist.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq

from local.billing_export import ExportGenerator
from shared.platform.settings import REPO_ROOT
from shared.sources.gcp import mapping as focus
from shared.sources.gcp import reader as gcp_billing
from tests.integration.conftest import Platform
from tests.integration.focus_support import make_tenant

# ../shared beside the repo (CI, the main checkout); a git worktree one level deeper
# (/work/wt/<name>) finds it one level further up. FOCUS_GATE overrides both.
_CANDIDATES = [REPO_ROOT.parent / "shared", REPO_ROOT.parent.parent / "shared"]
GATE = Path(
    os.environ.get("FOCUS_GATE")
    or next(
        (str(c / "tools" / "focus_gate.py") for c in _CANDIDATES if (c / "tools").is_dir()),
        str(_CANDIDATES[0] / "tools" / "focus_gate.py"),
    )
)
FOCUS_PYTHON = REPO_ROOT / ".venv-focus" / "bin" / "python"
DAY = dt.date(2026, 11, 10)


def focus_python() -> Path:
    if not FOCUS_PYTHON.exists():
        subprocess.run(["make", "-s", "focus-venv"], cwd=REPO_ROOT, check=True, timeout=900)
    return FOCUS_PYTHON


def test_pipeline_output_passes_the_focus_gate(platform: Platform, tmp_path: Path) -> None:
    assert GATE.exists(), f"the FOCUS gate is missing: {GATE}"
    tenant = make_tenant(platform)
    generator = ExportGenerator(seed=7)
    tenant.seed(list(generator.rows(DAY - dt.timedelta(days=1), 2, 400)))
    ctx = {"lookback_days": 1}
    gcp_billing.extract(tenant.ctx("extract", DAY, **ctx))
    focus.convert_gcp(tenant.ctx("convert", DAY, **ctx))
    result = focus.check_gcp(tenant.ctx("dq", DAY, **ctx))
    assert all(r.status == "PASS" for r in result.dq_results), result.dq_results
    # The sample must hold every kind of row the mapping produces.
    kinds = tenant.query("SELECT DISTINCT ChargeCategory AS c, ChargeClass AS k FROM {focus}")
    assert {(r["c"], r["k"]) for r in kinds} >= {
        ("Usage", None),
        ("Tax", None),
        ("Adjustment", "Correction"),
        ("Adjustment", None),
    }

    wh = platform.deps.warehouse
    columns = ", ".join(f"`{c}`" for c in focus.focus_columns("1.2"))
    job = wh.client.query(f"SELECT {columns} FROM {wh.table(tenant.tenant_id, 'focus_cost')}")
    table = job.result().to_arrow(create_bqstorage_client=False)
    assert table.num_rows == 800
    sample = tmp_path / "focus_sample.parquet"
    pq.write_table(table, sample)
    if os.environ.get("FOCUS_SAMPLE_COPY"):
        pq.write_table(table, os.environ["FOCUS_SAMPLE_COPY"])

    python = focus_python()
    # The gate runs the `focus-validator` console script: the venv's bin goes first on PATH.
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    gate = subprocess.run(
        [str(python), str(GATE), str(sample)],
        env=env,
        check=False,  # the exit code is asserted below, with the gate's output
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(gate.stdout[-4000:], gate.stderr[-2000:])
    assert gate.returncode == 0, gate.stdout[-4000:] + gate.stderr[-2000:]

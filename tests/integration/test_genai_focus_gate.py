"""The GenAI sources' FOCUS output (OpenAI and Anthropic) through the official focus-validator."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from local.genai_apis import GenAiStandIns
from shared.pipelines.steps import genai
from shared.sources.gcp import mapping as focus
from tests.integration.conftest import Platform
from tests.integration.test_focus_conformance import GATE, focus_python
from tests.integration.test_genai_sources import ctx, genai_apis, settings_overrides, setup

__all__ = ["genai_apis", "settings_overrides"]  # fixtures shared with test_genai_sources


def test_genai_output_passes_the_focus_gate(
    platform: Platform, genai_apis: GenAiStandIns, tmp_path: Path
) -> None:
    assert GATE.exists(), f"the FOCUS gate is missing: {GATE}"
    wh = platform.deps.warehouse
    columns = ", ".join(f"`{c}`" for c in focus.focus_columns("1.2"))
    tables = []
    for name in ("openai", "anthropic"):
        tenant_id, config_id = setup(platform, name)
        genai.extract(ctx(platform, tenant_id, config_id, name))
        genai.convert(ctx(platform, tenant_id, config_id, name))
        result = genai.check(ctx(platform, tenant_id, config_id, name))
        assert all(r.status == "PASS" for r in result.dq_results), result.dq_results
        job = wh.client.query(f"SELECT {columns} FROM {wh.table(tenant_id, 'focus_cost')}")
        tables.append(job.result().to_arrow(create_bqstorage_client=False))
    table = pa.concat_tables(tables)
    providers = set(table.column("ProviderName").to_pylist())
    assert providers == {"OpenAI", "Anthropic"} and all(t.num_rows for t in tables)
    sample = tmp_path / "genai_focus_sample.parquet"
    pq.write_table(table, sample)

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
    assert gate.returncode == 0, gate.stdout[-6000:] + gate.stderr[-2000:]

"""Each function also runs on its own under functions-framework, as Cloud Functions runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local.emulator import free_port
from main import FUNCTION_NAMES
from shared.platform.settings import REPO_ROOT
from tests.e2e.stack import call


@pytest.mark.parametrize("target", FUNCTION_NAMES)
def test_a_function_serves_alone_with_functions_framework(target: str, tmp_path: Path) -> None:
    port = free_port()
    cli = Path(sys.executable).parent / "functions-framework"
    env = {**os.environ, "LOCAL_DATA_DIR": str(tmp_path), "ADMIN_API_KEY": "adm_standalone_key"}
    process = subprocess.Popen(
        [str(cli), "--source", str(REPO_ROOT / "main.py"), "--target", target, "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        status, headers, body = 0, {}, None
        while time.monotonic() < deadline:
            try:
                status, headers, body = call("OPTIONS", f"http://127.0.0.1:{port}/")
                break
            except OSError:
                time.sleep(0.2)
        assert status == 204
        # An unauthenticated call is refused by our own code, as JSON: the
        # function module, its routes and error handling all loaded.
        status, headers, body = call("DELETE", f"http://127.0.0.1:{port}/no/such/route")
        assert headers["Content-Type"] == "application/json"
        assert body["error"] in ("not_found", "not_implemented"), body
    finally:
        process.terminate()
        process.wait(timeout=10)

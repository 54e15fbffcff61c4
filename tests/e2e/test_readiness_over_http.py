"""/healthz means usable: a client that waits for it and then onboards is never refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from local.emulator import free_port
from shared.platform.settings import REPO_ROOT
from tests.e2e.stack import call, call_json, start_stack

ONBOARDING = {
    "tenant_id": "ready_corp",
    "company_name": "Ready Corp",
    "admin_email": "ops@ready.example",
    "subscription_plan": "STARTER",
}


def _health(url: str) -> tuple[int, dict[str, object]] | None:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
    except OSError:
        return None  # not listening yet


def test_the_first_healthy_answer_means_a_tenant_can_be_onboarded(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "LOCAL_DATA_DIR": str(data_dir),
        "PORT": str(port),
        "BQ_EMULATOR_PORT": str(free_port()),
        "BQ_EMULATOR_GRPC_PORT": str(free_port()),
    }
    url = f"http://127.0.0.1:{port}"
    log_path = data_dir / "stack.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        seen: list[tuple[int, object]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            answer = _health(url)
            if answer is not None:
                seen.append((answer[0], answer[1].get("status")))
                if answer[0] == 200:
                    break
            time.sleep(0.02)
        assert seen and seen[-1][0] == 200, seen
        # Every answer before the first 200 was a 503 "starting", never a 200 too early.
        assert all(s == (503, "starting") for s in seen[:-1]), seen

        # The moment it says healthy, the platform is usable.
        admin_key = json.loads((data_dir / "secrets.json").read_text())["ADMIN_API_KEY"]
        status, _, body = call_json(
            "POST", f"{url}/onboard/", ONBOARDING, {"X-Admin-Key": admin_key}
        )
        assert status == 201, body
        status, _, health = call("GET", f"{url}/healthz")
        assert (status, health["status"]) == (200, "ok")
    finally:
        process.terminate()
        process.wait(timeout=60)


def _until(check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_without_central_tables_health_and_requests_name_the_cure(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "data")
    try:
        endpoints = stack.endpoints()
        admin = {"X-Admin-Key": stack.admin_key()}
        client = bigquery.Client(
            project=endpoints["project"],
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=endpoints["emulator_url"]),
        )
        # An operator drops the central dataset (or points the stack at an empty one).
        client.delete_dataset(endpoints["central_dataset"], delete_contents=True)

        _until(lambda: call("GET", f"{stack.url}/healthz")[0] == 503)
        status, headers, health = call("GET", f"{stack.url}/healthz")
        assert (status, health["status"]) == (503, "not_bootstrapped")
        assert "POST /admin/bootstrap" in health["detail"]
        assert headers["Retry-After"]

        status, headers, body = call_json("POST", f"{stack.url}/onboard/", ONBOARDING, admin)
        assert (status, body["error"]) == (503, "not_bootstrapped"), body
        assert "POST /admin/bootstrap" in body["detail"]
        assert headers["Retry-After"]

        status, _, _ = call_json("POST", f"{stack.url}/admin/bootstrap", {}, admin)
        assert status == 201
        _until(lambda: call("GET", f"{stack.url}/healthz")[0] == 200)
        status, _, body = call_json("POST", f"{stack.url}/onboard/", ONBOARDING, admin)
        assert status == 201, body
    finally:
        stack.stop()

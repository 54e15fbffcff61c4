"""Starts the whole local stack (`python -m local.stack`) as a subprocess for e2e tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.emulator import free_port
from shared.platform.settings import REPO_ROOT
from tests.e2e.contract import check_response


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    data_dir: Path
    url: str
    log_path: Path

    def endpoints(self) -> dict[str, Any]:
        return dict(json.loads((self.data_dir / "endpoints.json").read_text()))

    def admin_key(self) -> str:
        return str(json.loads((self.data_dir / "secrets.json").read_text())["ADMIN_API_KEY"])

    def output(self) -> str:
        return self.log_path.read_text()

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_stack(
    data_dir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 90,
    *,
    new_session: bool = False,
) -> RunningStack:
    """`python -m local.stack` on free ports in `data_dir`, returned once it is ready.

    `new_session` makes it the leader of its own process group, as a shell's
    `make run` is, so a drill can kill -9 the whole group at once.
    """
    port = free_port()
    full_env = {
        **{k: v for k, v in os.environ.items() if k not in ("ADMIN_API_KEY",)},
        "LOCAL_DATA_DIR": str(data_dir),
        "PORT": str(port),
        "BQ_EMULATOR_PORT": str(free_port()),
        "BQ_EMULATOR_GRPC_PORT": str(free_port()),
        **(env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"stack-{port}.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=new_session,
        )
    stack = RunningStack(process, data_dir, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stack exited early:\n{stack.output()}")
        endpoints = data_dir / "endpoints.json"
        if (
            endpoints.exists()
            and json.loads(endpoints.read_text() or "{}").get("pid") == process.pid
        ):
            return stack
        time.sleep(0.2)
    stack.stop()
    raise RuntimeError(f"stack not ready in {timeout}s:\n{stack.output()}")


def call(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP call; returns status, headers and the parsed JSON body.

    Every response is checked against the OpenAPI document (tests/e2e/contract.py):
    a status, header or body the document does not allow fails the test.
    """
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            status, got = response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        raw = err.read()
        status, got = err.code, dict(err.headers)
    parsed = json.loads(raw) if raw else None
    check_response(method, url, status, got, parsed)
    return status, got, parsed


def call_json(
    method: str, url: str, payload: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    body = None if payload is None else json.dumps(payload).encode()
    return call(method, url, body, {"Content-Type": "application/json", **(headers or {})})


def onboard(stack: RunningStack, prefix: str = "e2e", plan: str = "PROFESSIONAL") -> dict[str, Any]:
    """A new tenant `<prefix>_<8 hex>` onboarded with the admin key; its onboarding answer."""
    status, _, body = call_json(
        "POST",
        f"{stack.url}/onboard/",
        {
            "tenant_id": f"{prefix}_{uuid.uuid4().hex[:8]}",
            "company_name": "E2E Corp",
            "admin_email": "ops@e2e.example",
            "subscription_plan": plan,
        },
        {"X-Admin-Key": stack.admin_key()},
    )
    if status != 201:
        raise RuntimeError(f"onboard answered {status}: {body}")
    return dict(body)


def post(stack: RunningStack, path: str, payload: Any, key: str) -> tuple[int, Any]:
    """POST JSON with the tenant's key; any 5xx fails the test."""
    status, _, body = call_json("POST", f"{stack.url}{path}", payload, {"X-API-Key": key})
    assert status < 500, body
    return status, body


def get(stack: RunningStack, path: str, key: str) -> tuple[int, Any]:
    """GET with the tenant's key; any 5xx fails the test."""
    status, _, body = call("GET", f"{stack.url}{path}", headers={"X-API-Key": key})
    assert status < 500, body
    return status, body

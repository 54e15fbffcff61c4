"""The whole local stack over HTTP: start, serve, refuse bad input, stop cleanly, restart."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from main import FUNCTION_NAMES
from tests.e2e.stack import call, call_json, start_stack


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _bq(endpoints: dict[str, str]) -> bigquery.Client:
    return bigquery.Client(
        project=endpoints["project"],
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoints["emulator_url"]),
    )


def test_the_stack_serves_bootstraps_refuses_bad_input_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    started = time.monotonic()
    stack = start_stack(data_dir)
    try:
        # Ready, with endpoints written and the generated admin key printed.
        status, _, health = call("GET", f"{stack.url}/healthz")
        assert status == 200
        assert health["status"] == "ok"
        assert time.monotonic() - started < 60
        endpoints = stack.endpoints()
        assert endpoints["gateway_url"] == stack.url
        assert endpoints["emulator_url"].startswith("http://127.0.0.1:")
        admin_key = stack.admin_key()
        assert admin_key in stack.output()

        # Every function is mounted at /<name>/ and answers JSON itself.
        for name in FUNCTION_NAMES:
            status, headers, body = call("GET", f"{stack.url}/{name}/")
            assert headers["Content-Type"] == "application/json", name
            assert "no function at" not in body.get("detail", ""), name

        # Bootstrap ran at start-up; calling it again creates nothing.
        admin = {"X-Admin-Key": admin_key}
        status, _, report = call_json("POST", f"{stack.url}/admin/bootstrap", {}, admin)
        assert status == 200
        assert report["created"] == []
        assert len(report["existing"]) >= 12

        # Bad input is a 4xx JSON error, never a 500.
        bootstrap_url = f"{stack.url}/admin/bootstrap"
        json_headers = {**admin, "Content-Type": "application/json"}
        status, _, body = call("POST", bootstrap_url, b"{not json", json_headers)
        assert (status, body["error"]) == (400, "invalid_json")
        status, _, body = call(
            "POST", bootstrap_url, b"dry_run=1", {**admin, "Content-Type": "text/plain"}
        )
        assert (status, body["error"]) == (415, "unsupported_media_type")
        status, _, body = call(
            "POST", bootstrap_url, b"{" + b" " * (1024 * 1024 + 10) + b"}", json_headers
        )
        assert (status, body["error"]) == (413, "payload_too_large")

        # A row written now must survive the restart.
        client = _bq(endpoints)
        table = f"`{endpoints['project']}.{endpoints['central_dataset']}.tenant_audit_log`"
        client.query(
            f"INSERT INTO {table} (audit_id, actor, action, occurred_at) "
            "VALUES ('marker', 'test', 'restart_check', CURRENT_TIMESTAMP())"
        ).result()
    finally:
        code = stack.stop()

    # Ctrl-C stops everything: exit 0, no orphan emulator, endpoints removed.
    assert code == 0, stack.output()
    assert not _alive(endpoints["emulator_pid"])
    assert not (data_dir / "endpoints.json").exists()

    again = start_stack(data_dir)
    try:
        assert again.admin_key() == admin_key
        status, _, report = call_json(
            "POST", f"{again.url}/admin/bootstrap", {}, {"X-Admin-Key": admin_key}
        )
        assert status == 200
        assert report["created"] == []
        rows = list(
            _bq(again.endpoints())
            .query(f"SELECT audit_id FROM {table} WHERE action = 'restart_check'")
            .result()
        )
        assert [r.audit_id for r in rows] == ["marker"]
    finally:
        assert again.stop() == 0


def test_an_admin_key_from_the_environment_wins(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "data", env={"ADMIN_API_KEY": "adm_from_env_0123456789"})
    try:
        status, _, _ = call_json(
            "POST",
            f"{stack.url}/admin/bootstrap",
            {"dry_run": True},
            {"X-Admin-Key": "adm_from_env_0123456789"},
        )
        assert status == 200
    finally:
        assert stack.stop() == 0


def test_a_second_stack_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "data")
    try:
        try:
            start_stack(tmp_path / "data", timeout=30)
        except RuntimeError as err:
            assert "already running" in str(err)
        else:
            raise AssertionError("a second stack started on the same data dir")
    finally:
        assert stack.stop() == 0


def test_a_busy_emulator_port_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        try:
            start_stack(tmp_path / "data", env={"BQ_EMULATOR_PORT": str(port)}, timeout=30)
        except RuntimeError as err:
            assert f"port {port} is already in use" in str(err)
        else:
            raise AssertionError("the stack started on a busy emulator port")

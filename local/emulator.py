"""Starts and stops bqemulator, the DuckDB-backed BigQuery REST emulator, as a child process."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DUCKDB_VERSION = "v1.5.5"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ensure_spatial_extension() -> None:
    """bqemulator loads DuckDB's spatial extension; install it offline from its PyPI wheel."""
    home = Path(os.environ.get("HOME", str(Path.home())))
    if list((home / ".duckdb" / "extensions" / DUCKDB_VERSION).glob("*/spatial.duckdb_extension")):
        return
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from duckdb_extensions import import_extension as i; i('spatial')",
        ],
        check=True,
        timeout=120,
    )


def _die_with_parent() -> None:
    # Linux: the emulator gets SIGTERM if the stack dies, even by kill -9, so a
    # crashed stack never leaves an orphan holding the data dir.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:
        pass


class Emulator:
    """One bqemulator server for one data dir (it allows no more)."""

    name = "bqemulator"

    def __init__(
        self,
        data_dir: Path,
        project: str,
        rest_port: int,
        grpc_port: int,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.project = project
        self.rest_port = rest_port
        self.grpc_port = grpc_port
        self.log_path = log_path or data_dir / "emulator.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def environment(self) -> dict[str, str]:
        return {"BIGQUERY_EMULATOR_HOST": self.url}

    def endpoints(self) -> dict[str, object]:
        return {
            "emulator_url": self.url,
            "emulator_pid": self.process.pid if self.process else None,
        }

    def start(self, timeout: float = 90.0) -> None:
        # A server already on our port would answer /readyz in our place.
        for port in (self.rest_port, self.grpc_port):
            if port_in_use(port):
                raise RuntimeError(
                    f"port {port} is already in use (another emulator or stack?); "
                    "stop it or set BQ_EMULATOR_PORT / BQ_EMULATOR_GRPC_PORT"
                )
        ensure_spatial_extension()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.bqemulator_server",  # bqemulator without per-write snapshots
                "start",
                "--rest-host",
                "127.0.0.1",
                "--rest-port",
                str(self.rest_port),
                "--grpc-port",
                str(self.grpc_port),
                "--persistent",
                "--data-dir",
                str(self.data_dir),
                "--project",
                self.project,
                "--log-level",
                "warning",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent,  # so `-m local...` resolves
            # Own session: Ctrl-C reaches the stack, which stops the emulator
            # in order after the gateway has drained.
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only sets a signal
        )
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"bqemulator exited with code {self.process.returncode}; see {self.log_path}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"bqemulator not ready after {timeout:.0f}s; see {self.log_path}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait, so DuckDB checkpoints; SIGKILL only if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

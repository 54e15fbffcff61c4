"""A local server run as a child process: free port, readiness wait, orphan-safe stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from local.emulator import _die_with_parent, port_in_use


class ChildServer:
    """Starts `command`, waits until `ready()` answers, stops it with SIGTERM (SIGKILL if stuck).

    The child gets SIGTERM when its parent dies (even by kill -9), so a crashed
    stack or test session never leaves it holding a port.
    """

    name = "server"

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {}

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> None:
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is already in use; {self.name} needs a free one")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            self.command(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, **self.environment()},
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only sets a signal
        )
        log_file.close()
        self._wait(timeout, self.ready)

    def _wait(self, timeout: float, ready: Callable[[], bool]) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.process.returncode}; see {self.log_path}"
                )
            if ready():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

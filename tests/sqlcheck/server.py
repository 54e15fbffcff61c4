"""One ZetaSQL analyzer service for the whole test session, started on first use."""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path

from local.zetasql import ZetaSqlServer

_server: ZetaSqlServer | None = None


def analyzer_address() -> str:
    """host:port of the session's analyzer; starts it the first time."""
    global _server
    if _server is None:
        log_dir = Path(tempfile.mkdtemp(prefix="zetasql-"))
        server = ZetaSqlServer(log_dir / "zetasql.log")
        server.start()
        atexit.register(server.stop)
        _server = server
    return _server.address


def stop() -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None

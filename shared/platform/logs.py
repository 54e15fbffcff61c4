"""Structured JSON logging in the Cloud Logging format, with per-request context."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
from typing import Any

# Set by the HTTP layer for each request; every log line carries them.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
trace_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}

# Defence in depth: code never logs secrets on purpose, but an exception
# message might carry one. These shapes are masked before anything is written.
_SECRET_PATTERNS = [
    re.compile(r"[a-z0-9_]{3,50}_api_[A-Za-z0-9_-]{16,}"),  # tenant API keys
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"\b(sk|rk|whsec|sk-ant|sk-proj)[-_][A-Za-z0-9_-]{8,}"),
]

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[REDACTED]", text)
    return text


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per line; Cloud Logging reads `severity` and the trace key."""

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "logger": record.name,
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        trace = trace_var.get()
        if trace and self.project:
            entry["logging.googleapis.com/trace"] = f"projects/{self.project}/traces/{trace}"
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            # Stack traces go to the log only, never to a client.
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


_configured = False


def configure_logging(level: str = "INFO", project: str | None = None) -> None:
    """Install the JSON handler on the root logger once per process."""
    global _configured
    root = logging.getLogger()
    root.setLevel(level)
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter(project))
    root.handlers = [handler]
    _configured = True

"""Structured logs: Cloud Logging fields, request context, and secrets masked."""

from __future__ import annotations

import json
import logging

from shared.platform.logs import CloudLoggingFormatter, redact, request_id_var, trace_var


def _format(message: str, **extra: object) -> dict[str, object]:
    record = logging.makeLogRecord({"msg": message, "levelno": logging.WARNING, **extra})
    return dict(json.loads(CloudLoggingFormatter(project="my-project").format(record)))


def test_a_log_line_is_json_with_severity_and_request_context() -> None:
    rid = request_id_var.set("req-1")
    tid = trace_var.set("abc123")
    try:
        entry = _format("hello", tenant_id="acme")
    finally:
        request_id_var.reset(rid)
        trace_var.reset(tid)

    assert entry["severity"] == "WARNING"
    assert entry["message"] == "hello"
    assert entry["request_id"] == "req-1"
    assert entry["logging.googleapis.com/trace"] == "projects/my-project/traces/abc123"
    assert entry["tenant_id"] == "acme"


def test_api_keys_private_keys_and_stripe_secrets_are_masked() -> None:
    key = "acme_api_" + "Zx9" * 10
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----"

    text = redact(f"key={key} pem={pem} hook=whsec_abcdefghijkl")

    assert key not in text
    assert "MIIEvQIBADANBg" not in text
    assert "whsec_abcdefghijkl" not in text
    assert text.count("[REDACTED]") == 3


def test_masking_applies_to_formatted_lines_including_extra_fields() -> None:
    entry = _format("lookup", api_key="acme_api_" + "q" * 30)

    assert "q" * 30 not in json.dumps(entry)

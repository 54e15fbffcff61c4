"""Webhook signatures like Stripe's: `t=<unix ts>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>`."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Convergence-Signature"
MESSAGE_ID_HEADER = "Convergence-Message-Id"
# Receivers should refuse signatures older than this (replays); docs/notifications.md.
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A signing secret: whsec_ + 256 random bits, shown to the tenant once."""
    return "whsec_" + secrets.token_hex(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: the header's timestamp is fresh and one v1 matches (constant time)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)

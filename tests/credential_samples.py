"""Generated, never-real credentials for tests: fresh RSA keys, API keys with unique markers."""

from __future__ import annotations

import functools
import secrets
import string
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@functools.cache
def rsa_pem() -> str:
    """One fresh 2048-bit RSA key per test session, PKCS#8 PEM like Google's key files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def pem_marker(pem: str) -> str:
    """40 characters from the middle of the key body: unique to this key, a planted needle."""
    body = "".join(pem.strip().splitlines()[1:-1])
    return body[200:240]


def service_account(**changes: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "type": "service_account",
        "project_id": "acme-billing-prod",
        "private_key_id": secrets.token_hex(20),
        "private_key": rsa_pem(),
        "client_email": "exporter@acme-billing-prod.iam.gserviceaccount.com",
        "client_id": "".join(secrets.choice(string.digits) for _ in range(21)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/exporter",
        "universe_domain": "googleapis.com",
    }
    info.update(changes)
    return {k: v for k, v in info.items() if v is not None}


def marker() -> str:
    return "MARKER" + secrets.token_hex(12)


def openai_key(needle: str | None = None) -> str:
    return f"sk-proj-{needle or marker()}{secrets.token_urlsafe(24)}"


def anthropic_key(needle: str | None = None) -> str:
    return f"sk-ant-api03-{needle or marker()}{secrets.token_urlsafe(24)}"


def aws_key(needle: str | None = None) -> dict[str, str]:
    alphabet = string.ascii_uppercase + string.digits
    secret = (needle or "") + "".join(
        secrets.choice(string.ascii_letters + string.digits + "/+") for _ in range(40)
    )
    return {
        "access_key_id": "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
        "secret_access_key": secret[:40],
    }


def create_body(provider: str, **changes: Any) -> dict[str, Any]:
    """A valid create body for each provider."""
    bodies: dict[str, dict[str, Any]] = {
        "GCP": {
            "credential_type": "SERVICE_ACCOUNT",
            "credentials": service_account(),
        },
        "OPENAI": {"credential_type": "API_KEY", "credentials": {"api_key": openai_key()}},
        "ANTHROPIC": {"credential_type": "API_KEY", "credentials": {"api_key": anthropic_key()}},
        "AWS": {"credential_type": "ACCESS_KEY", "credentials": aws_key()},
    }
    body = {
        "provider": provider,
        "credential_name": f"{provider.lower()} billing reader",
        "metadata": {"team": "finops"},
        **bodies[provider],
    }
    body.update(changes)
    return body

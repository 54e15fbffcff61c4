"""A stand-in for Google's OIDC signing: its keys, its certificate endpoint, the tokens it signs."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt


@dataclass(frozen=True)
class SigningKey:
    """An RSA key and its self-signed certificate, published under `kid`."""

    kid: str
    private_pem: str
    cert_pem: str

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-google-signer")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .sign(key, hashes.SHA256())
        )
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        return cls(kid or uuid.uuid4().hex, private_pem, cert_pem)

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        signer = crypt.RSASigner.from_string(self.private_pem, key_id=self.kid)
        token: bytes = jwt.encode(signer, claims, header=header or None)  # type: ignore[no-untyped-call]
        return token.decode()


def scheduler_claims(
    email: str, audience: str, *, lifetime: dt.timedelta = dt.timedelta(hours=1), **changes: Any
) -> dict[str, Any]:
    """What Cloud Scheduler's OIDC token for a service account carries."""
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": "1234567890",
        "sub": "1234567890",
        "email": email,
        "email_verified": True,
        "iat": now,
        "exp": now + int(lifetime.total_seconds()),
    }
    claims.update(changes)
    return claims


@dataclass
class CertsEndpoint:
    """Serves {kid: certificate PEM} like https://www.googleapis.com/oauth2/v1/certs."""

    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0
    failing: bool = False
    url: str = ""

    def body(self) -> tuple[int, bytes]:
        self.fetches += 1
        if self.failing:
            return 500, b'{"error": "backend"}'
        return 200, json.dumps({k.kid: k.cert_pem for k in self.keys}).encode()


@contextmanager
def serving(endpoint: CertsEndpoint) -> Iterator[CertsEndpoint]:
    """Runs `endpoint` on 127.0.0.1 (a free port) for the duration of the block."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = endpoint.body()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/oauth2/v1/certs"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()

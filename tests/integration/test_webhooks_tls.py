"""Webhook TLS: a receiver's certificate is verified; an untrusted one is never sent to.

A local HTTPS receiver serves a certificate signed by a test CA. The sender
trusts it only when that CA is given (WEBHOOK_CA_BUNDLE, local stack and tests
only; production uses the system store). Otherwise the TLS handshake fails,
nothing is sent, and the outbox keeps the message PENDING for a later attempt.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.deps import Deps
from shared.notify import outbox, sender
from tests.integration.conftest import Platform
from tests.integration.test_notifications import (
    NOW,
    call,
    outbox_rows,
    quiet_tenant,
    record_alert,
)

pytestmark = pytest.mark.parametrize("settings_overrides", [{"webhook_localhost_allowed": True}])


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_pki(directory: Path, ca_name: str) -> tuple[Path, Path, Path]:
    """A test CA and a localhost server certificate it signed: (ca.pem, cert.pem, key.pem)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(_pem_key(key))
    return paths


class TlsReceiver:
    """An HTTPS webhook receiver on 127.0.0.1 that records the requests it got."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.requests: list[bytes] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        # A failed handshake is the client's refusal: the server just drops it.
        self.server.handle_error = lambda *args: None  # type: ignore[method-assign]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"https://localhost:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    return make_pki(tmp_path / "pki", "Convergence test CA")


@pytest.fixture
def tls_receiver(pki: tuple[Path, Path, Path]) -> Iterator[TlsReceiver]:
    _, cert, key = pki
    server = TlsReceiver(cert, key)
    yield server
    server.stop()


def trusting(deps: Deps, ca_bundle: Path | None, when: dt.datetime) -> Deps:
    return dataclasses.replace(
        deps,
        clock=lambda: when,
        settings=deps.settings.model_copy(update={"webhook_ca_bundle": ca_bundle}),
    )


def test_a_receiver_signed_by_the_given_ca_gets_the_webhook(
    platform: Platform, tls_receiver: TlsReceiver, pki: tuple[Path, Path, Path]
) -> None:
    tenant = quiet_tenant(platform)
    created = call(platform, "POST", "/webhooks", tenant["api_key"], json={"url": tls_receiver.url})
    assert created.status_code == 201, created.get_json()
    record_alert(platform.deps, tenant["tenant_id"])

    report = sender.send_due(trusting(platform.deps, pki[0], NOW))

    assert (report.claimed, report.sent) == (1, 1)
    assert len(tls_receiver.requests) == 1
    [row] = outbox_rows(platform.deps, tenant["tenant_id"])
    assert (row["status"], row["attempts"]) == ("SENT", 1)


@pytest.mark.parametrize("trusted", ["none", "another CA"])
def test_an_untrusted_certificate_is_never_sent_to_and_the_message_is_retried(
    platform: Platform,
    tls_receiver: TlsReceiver,
    pki: tuple[Path, Path, Path],
    tmp_path: Path,
    trusted: str,
) -> None:
    tenant = quiet_tenant(platform)
    call(platform, "POST", "/webhooks", tenant["api_key"], json={"url": tls_receiver.url})
    record_alert(platform.deps, tenant["tenant_id"])
    # No bundle: the system store, which does not know the test CA (production's case).
    ca = None if trusted == "none" else make_pki(tmp_path / "other", "Another CA")[0]

    report = sender.send_due(trusting(platform.deps, ca, NOW))

    assert (report.claimed, report.sent, report.retrying) == (1, 0, 1)
    assert tls_receiver.requests == []
    [row] = outbox_rows(platform.deps, tenant["tenant_id"])
    assert (row["status"], row["attempts"]) == ("PENDING", 1)
    assert row["next_attempt_at"] == NOW + dt.timedelta(seconds=outbox.BACKOFF_FIRST_SECONDS)
    assert "SSL" in row["last_error"] or "Certificate" in row["last_error"]

    # Once the CA is trusted, the retry delivers the same message.
    later = NOW + dt.timedelta(seconds=outbox.BACKOFF_FIRST_SECONDS + 1)
    retried = sender.send_due(trusting(platform.deps, pki[0], later))
    assert (retried.claimed, retried.sent) == (1, 1)
    assert len(tls_receiver.requests) == 1
    [row] = outbox_rows(platform.deps, tenant["tenant_id"])
    assert (row["status"], row["attempts"]) == ("SENT", 2)

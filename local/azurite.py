"""Azurite (Azure Blob, from local/node) over HTTPS with OAuth, and a local Entra token endpoint.

Token credentials only travel over HTTPS (the Azure SDK refuses bearer tokens
on plain HTTP, and so does Azurite), so Azurite serves TLS with a certificate
made here (`tls/cert.pem`, which clients trust through CLOUD_CA_BUNDLE) and
`--oauth basic`: it accepts any unexpired token from an Entra-shaped issuer
for the storage audience. It checks no role assignment: that a federated app
holds Storage Blob Data Reader on the container is not testable locally.

The Entra stand-in (`local.azurite_entra`) answers the client-credentials
flow the Azure SDK uses (client secret, or a client assertion for workload
identity federation) from `entra-apps.json`, verifying Google-signed
assertions against the local certificates.

Storage accounts are fixed at start (AZURITE_ACCOUNTS); their keys are
written to `azurite-accounts.json` for the tests and the demo.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from local.child_server import ChildServer
from shared.platform.settings import REPO_ROOT

AZURITE_BIN = REPO_ROOT / "local" / "node" / "node_modules" / ".bin" / "azurite-blob"


def ensure_local_tls(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (kept once made): (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "convergence-local")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class Azurite(ChildServer):
    """The Azurite blob service for `accounts`, and the Entra stand-in beside it."""

    name = "azurite"

    def __init__(
        self, data_dir: Path, port: int, entra_port: int, google_certs: Path, accounts: list[str]
    ) -> None:
        super().__init__(port, data_dir / "azurite.log")
        self.data_dir = data_dir
        self.entra_port = entra_port
        self.google_certs = google_certs
        self.cert, self.key = ensure_local_tls(data_dir / "tls")
        self.accounts = self._account_keys(accounts)
        from local.azurite_entra import EntraStandIn

        self.entra = EntraStandIn(
            entra_port, data_dir / "entra-apps.json", google_certs, self.cert, self.key
        )

    def _account_keys(self, names: list[str]) -> dict[str, str]:
        path = self.data_dir / "azurite-accounts.json"
        keys: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        for name in names:
            keys.setdefault(name, base64.b64encode(secrets.token_bytes(64)).decode())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(keys, indent=2))
        path.chmod(0o600)
        return keys

    @property
    def blob_endpoint(self) -> str:
        """AZURE_BLOB_ENDPOINT: Azurite serves each account under its path."""
        return f"https://127.0.0.1:{self.port}/{{account}}"

    def account_url(self, account: str) -> str:
        return self.blob_endpoint.format(account=account)

    def command(self) -> list[str]:
        if not AZURITE_BIN.exists():
            raise RuntimeError("Azurite is not installed: run `make node-deps`")
        return [
            str(AZURITE_BIN),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--location",
            str(self.data_dir / "blob"),
            "--cert",
            str(self.cert),
            "--key",
            str(self.key),
            "--oauth",
            "basic",
            "--skipApiVersionCheck",
            "--disableProductStyleUrl",
            "--silent",
        ]

    def environment(self) -> dict[str, str]:
        return {"AZURITE_ACCOUNTS": ";".join(f"{n}:{k}" for n, k in self.accounts.items())}

    def ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.cert))
        try:
            urllib.request.urlopen(  # any HTTP answer means it is listening
                f"https://127.0.0.1:{self.port}/{next(iter(self.accounts))}?comp=list",
                timeout=2,
                context=context,
            )
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def start(self, timeout: float = 60.0) -> None:
        self.entra.start()
        try:
            super().start(timeout)
        except BaseException:
            self.entra.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.entra.stop()

    def admin_container(self, account: str, container: str) -> object:
        """A ContainerClient with the account key: for tests and the demo to set up exports."""
        from azure.storage.blob import ContainerClient

        return ContainerClient(
            self.account_url(account),
            container,
            credential={"account_name": account, "account_key": self.accounts[account]},
            connection_verify=str(self.cert),
        )

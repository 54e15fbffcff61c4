"""The platform's Google identity as AWS and Entra see it: ID tokens, audiences, access errors.

Every tenant's AWS role and Entra app trusts the SAME Google identity (the
runner service account), so that identity alone would let the platform act
for tenant A on tenant B's role: the confused deputy AWS's external ID exists
for. AssumeRoleWithWebIdentity has no ExternalId parameter, so the tenant's
external id travels in the one claim only the platform chooses: the ID
token's audience, `<CLOUD_TOKEN_AUDIENCE>/<external id>`. The customer's trust
names that audience (AWS: `accounts.google.com:oaud`; Entra: the federated
credential's audience), and the platform only ever mints tokens for the
calling tenant's own audience.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shared.platform.errors import ApiError, unavailable, unprocessable
from shared.platform.identifiers import derived_id
from shared.platform.settings import Settings

GOOGLE_ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME = dt.timedelta(hours=1)


def external_id_for(tenant_id: str) -> str:
    """The tenant's external id: fixed per tenant (ids are never reused), not a secret."""
    return derived_id("cvg-", "cloud-access", tenant_id)


def audience_for(settings: Settings, tenant_id: str) -> str:
    """The audience of every ID token the platform presents for this tenant."""
    return f"{settings.cloud_token_audience.rstrip('/')}/{external_id_for(tenant_id)}"


def platform_identity(settings: Settings, tenant_id: str) -> dict[str, Any]:
    """What a customer writes into its AWS trust policy and Entra federated credential."""
    audience = audience_for(settings, tenant_id)
    subject = settings.runner_identity_subject
    return {
        "issuer": GOOGLE_ISSUER,
        "subject": subject,
        "audience": audience,
        "external_id": external_id_for(tenant_id),
        "aws": {
            "federated_principal": "accounts.google.com",
            "conditions": {
                "accounts.google.com:aud": subject,
                "accounts.google.com:sub": subject,
                "accounts.google.com:oaud": audience,
            },
        },
        "azure": {"issuer": GOOGLE_ISSUER, "subject": subject, "audience": audience},
    }


class AccessProblem(Exception):
    """The provider refused or could not be reached; `detail` never holds a secret.

    `retryable` problems (network, the provider's own outage, our token
    refused) are the platform's and become 503; the others are the tenant's to
    fix and become 422 naming `field`.
    """

    def __init__(self, reason: str, detail: str, field: str, *, retryable: bool = False) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field
        self.retryable = retryable

    def to_api_error(self) -> ApiError:
        if self.retryable:
            return unavailable(self.detail, retry_after_seconds=30)
        return unprocessable(
            "cloud_access_failed",
            f"{self.field}: {self.detail}",
            field=self.field,
            reason=self.reason,
        )


class IdTokens(Protocol):
    """Google-signed ID tokens of the platform's runner identity, for one audience."""

    def id_token(self, audience: str) -> str: ...


class GoogleIdTokens:
    """Production: the metadata server (the runner itself) or IAM Credentials impersonation.

    The credentials function checks access as the runner, so customers trust
    one identity: it holds roles/iam.serviceAccountOpenIdTokenCreator on the
    runner service account (terraform/iam.tf) and asks for the runner's token.
    """

    def __init__(self, target_service_account: str | None) -> None:
        self.target = target_service_account
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, float]] = {}

    def id_token(self, audience: str) -> str:
        with self._lock:
            cached = self._cache.get(audience)
            if cached and cached[1] - time.time() > 300:
                return cached[0]
        token = self._fetch(audience)
        with self._lock:
            self._cache[audience] = (token, time.time() + 3000)
        return token

    def _fetch(self, audience: str) -> str:
        import google.auth
        from google.auth import impersonated_credentials
        from google.auth.transport.requests import Request
        from google.oauth2 import id_token

        if self.target is None:
            return str(id_token.fetch_id_token(Request(), audience))  # type: ignore[no-untyped-call]
        source, _ = google.auth.default()  # type: ignore[no-untyped-call]
        runner = impersonated_credentials.Credentials(  # type: ignore[no-untyped-call]
            source_credentials=source,
            target_principal=self.target,
            target_scopes=["https://www.googleapis.com/auth/cloud-platform"],
        )
        credentials = impersonated_credentials.IDTokenCredentials(  # type: ignore[no-untyped-call]
            runner, target_audience=audience, include_email=True
        )
        credentials.refresh(Request())  # type: ignore[no-untyped-call]
        return str(credentials.token)


@dataclass(frozen=True)
class LocalIdTokens:
    """Local stack and tests: tokens shaped like Google's, signed with a local key.

    The local STS and the local Entra stand-in verify them against the
    certificates published next to the key (`certs.json`, the {kid: PEM} form
    of Google's v1 certs endpoint).
    """

    key_file: Path
    subject: str
    email: str = "runner@convergence-local.iam.gserviceaccount.com"

    def id_token(self, audience: str) -> str:
        from google.auth import crypt, jwt

        material = json.loads(self.key_file.read_text())
        signer = crypt.RSASigner.from_string(material["private_key"], key_id=material["kid"])  # type: ignore[no-untyped-call]
        now = int(time.time())
        claims = {
            "iss": GOOGLE_ISSUER,
            "aud": audience,
            "azp": self.subject,
            "sub": self.subject,
            "email": self.email,
            "email_verified": True,
            "iat": now,
            "exp": now + int(TOKEN_LIFETIME.total_seconds()),
            "jti": uuid.uuid4().hex,
        }
        token: bytes = jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
        return token.decode()


def id_tokens_from(settings: Settings) -> IdTokens:
    if settings.local_id_token_key is not None:
        return LocalIdTokens(settings.local_id_token_key, settings.runner_identity_subject)
    return GoogleIdTokens(settings.runner_service_account)


def write_local_signing_key(directory: Path) -> Path:
    """A fresh RSA key (`id-token-key.json`) and its certificate (`certs.json`) in `directory`.

    Kept once written, so a restarted local stack keeps trusting earlier tokens.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key_path = directory / "id-token-key.json"
    if key_path.exists():
        return key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local-google-id-tokens")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    kid = uuid.uuid4().hex
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    (directory / "certs.json").write_text(
        json.dumps({kid: cert.public_bytes(serialization.Encoding.PEM).decode()})
    )
    tmp = key_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"kid": kid, "private_key": pem}))
    tmp.chmod(0o600)
    tmp.replace(key_path)
    return key_path

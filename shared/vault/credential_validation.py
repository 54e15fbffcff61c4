"""Pure checks of tenant cloud credentials: providers, secret formats, metadata, fingerprints."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, ValidationError

from shared.platform.errors import ApiError, unavailable, unprocessable
from shared.platform.logs import redact

Provider = Literal["GCP", "AWS", "AZURE", "OPENAI", "ANTHROPIC"]

# provider -> the credential types it accepts; the first is the usual one
# (keyless where the provider allows: docs/sources/aws-access.md, azure-access.md).
CREDENTIAL_TYPES: dict[str, tuple[str, ...]] = {
    "GCP": ("SERVICE_ACCOUNT", "WORKLOAD_IDENTITY"),
    "AWS": ("IAM_ROLE", "ACCESS_KEY"),
    "AZURE": ("FEDERATED_CREDENTIAL", "SAS_TOKEN", "CLIENT_SECRET"),
    "OPENAI": ("API_KEY", "ADMIN_KEY"),
    "ANTHROPIC": ("API_KEY", "ADMIN_KEY"),
}
# Types that carry no secret: the platform's own identity is granted access instead.
SECRETLESS_TYPES = frozenset({"WORKLOAD_IDENTITY"})

PROJECT_ID_RE = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
# google-auth posts a signed assertion to token_uri: anything but Google's
# endpoint would make the pipeline runner send requests wherever a tenant says.
_GOOGLE_TOKEN_URIS = frozenset(
    {"https://oauth2.googleapis.com/token", "https://accounts.google.com/o/oauth2/token"}
)
_METADATA_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
# Metadata is stored and shown in clear: keys that announce a secret are refused.
_SECRET_WORDS = ("secret", "password", "passwd", "private_key", "api_key", "apikey", "token")
_MAX_METADATA_KEYS = 32
_MAX_METADATA_VALUE = 1024
_FINGERPRINT_HEX = 12


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def _private_key_loads(value: str) -> str:
    try:
        key = serialization.load_pem_private_key(value.encode(), password=None)
    except Exception:
        # cryptography's message can quote the PEM; say only what is wrong.
        raise ValueError("must be an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("must be an RSA private key (Google service-account keys are RSA)")
    return value


def _google_token_uri(value: str) -> str:
    if value not in _GOOGLE_TOKEN_URIS:
        raise ValueError("must be Google's OAuth token endpoint")
    return value


class GcpServiceAccountKey(_Strict):
    """A Google service-account key file, as downloaded; fields we don't know are refused."""

    type: Literal["service_account"]
    project_id: str = Field(pattern=PROJECT_ID_RE)
    private_key_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,100}$")
    private_key: Annotated[str, Field(max_length=16_384), AfterValidator(_private_key_loads)]
    client_email: EmailStr
    client_id: str | None = Field(default=None, pattern=r"^[0-9]{1,30}$")
    auth_uri: str | None = Field(default=None, pattern=r"^https://[^\s]{1,500}$")
    # Required, and Google's: without it google-auth can't mint a token.
    token_uri: Annotated[str, AfterValidator(_google_token_uri)]
    auth_provider_x509_cert_url: str | None = Field(default=None, pattern=r"^https://[^\s]{1,500}$")
    client_x509_cert_url: str | None = Field(default=None, pattern=r"^https://[^\s]{1,500}$")
    # Pinned: for another universe google-auth signs its own JWT instead of asking
    # Google, so any RSA key would pass live validation (and reads would go elsewhere).
    universe_domain: Literal["googleapis.com"] | None = None


def _openai_key(value: str) -> str:
    if value.startswith("sk-ant-"):
        raise ValueError("is an Anthropic key; use provider ANTHROPIC")
    if not re.fullmatch(r"sk-[A-Za-z0-9_-]{20,300}", value):
        raise ValueError("must start with 'sk-' followed by 20-300 letters, digits, '-' or '_'")
    return value


class OpenAiApiKey(_Strict):
    api_key: Annotated[str, AfterValidator(_openai_key)]
    organization_id: str | None = Field(default=None, pattern=r"^org-[A-Za-z0-9]{1,64}$")


class AnthropicApiKey(_Strict):
    api_key: str = Field(pattern=r"^sk-ant-[A-Za-z0-9_-]{20,300}$")


def _openai_admin_key(value: str) -> str:
    # https://platform.openai.com/docs/api-reference/admin-api-keys: admin keys are sk-admin-...
    if value.startswith("sk-ant-"):
        raise ValueError("is an Anthropic key; use provider ANTHROPIC")
    if value.startswith("sk-") and not value.startswith("sk-admin-"):
        raise ValueError(
            "is an ordinary API key; cost reports need an organization Admin API key (sk-admin-...)"
        )
    if not re.fullmatch(r"sk-admin-[A-Za-z0-9_-]{20,300}", value):
        raise ValueError("must be an OpenAI Admin API key: 'sk-admin-' and 20-300 characters")
    return value


def _anthropic_admin_key(value: str) -> str:
    # https://docs.anthropic.com/en/api/administration-api: admin keys are sk-ant-admin...
    if value.startswith("sk-") and not value.startswith("sk-ant-"):
        raise ValueError("is an OpenAI key; use provider OPENAI")
    if value.startswith("sk-ant-") and not value.startswith("sk-ant-admin"):
        raise ValueError(
            "is an ordinary API key; cost reports need an Admin API key (sk-ant-admin01-...)"
        )
    if not re.fullmatch(r"sk-ant-admin[0-9]{2}-[A-Za-z0-9_-]{20,300}", value):
        raise ValueError("must be an Anthropic Admin API key: 'sk-ant-admin01-' and 20-300 chars")
    return value


class OpenAiAdminKey(_Strict):
    """An OpenAI organization Admin API key (usage and costs read)."""

    admin_key: Annotated[str, AfterValidator(_openai_admin_key)]
    organization_id: str | None = Field(default=None, pattern=r"^org-[A-Za-z0-9]{1,64}$")


class AnthropicAdminKey(_Strict):
    """An Anthropic organization Admin API key."""

    admin_key: Annotated[str, AfterValidator(_anthropic_admin_key)]


class AwsAccessKey(_Strict):
    access_key_id: str = Field(pattern=r"^AKIA[A-Z0-9]{16}$")
    secret_access_key: str = Field(pattern=r"^[A-Za-z0-9/+=]{40}$")


# https://docs.aws.amazon.com/IAM/latest/APIReference/API_Role.html (RoleName: [\w+=,.@-]{1,64},
# Path: / or /.../), and the partitions of https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
ROLE_ARN_RE = (
    r"^arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{12}:role/"
    r"(?:[\x21-\x7E]{1,510}/)?[A-Za-z0-9_+=,.@-]{1,64}$"
)


class AwsIamRole(_Strict):
    """An IAM role in the customer's account that trusts the platform's Google identity."""

    role_arn: str = Field(pattern=ROLE_ARN_RE, max_length=2048)
    # Must be the tenant's own (GET /credentials/platform-identity); checked in
    # check_tenant_binding, since only the caller's tenant knows which it is.
    external_id: str = Field(min_length=2, max_length=1224, pattern=r"^[A-Za-z0-9_+=,.@:/-]+$")


# Entra tenant and application (client) ids are GUIDs.
_GUID_RE = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class AzureFederatedCredential(_Strict):
    """An Entra app whose federated credential trusts the platform's Google identity."""

    tenant_id: str = Field(pattern=_GUID_RE)
    client_id: str = Field(pattern=_GUID_RE)


class AzureClientSecret(_Strict):
    tenant_id: str = Field(pattern=_GUID_RE)
    client_id: str = Field(pattern=_GUID_RE)
    # Entra secrets are 40 printable characters today; leave room, refuse whitespace.
    client_secret: str = Field(pattern=r"^[\x21-\x7E]{16,256}$")


# Account SAS or service SAS: https://learn.microsoft.com/rest/api/storageservices/create-service-sas
# ("sp" read r, list l); the platform only ever reads, so a token that can write is refused.
_SAS_READ_PERMISSIONS = frozenset("rl")


def _sas_token(value: str) -> str:
    query = value[1:] if value.startswith("?") else value
    if not re.fullmatch(r"[A-Za-z0-9%=&._~:+/-]{20,4096}", query):
        raise ValueError("must be a SAS query string (sv=...&sig=...)")
    fields = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    missing = [k for k in ("sv", "sp", "se", "sig") if not fields.get(k)]
    if missing:
        raise ValueError(f"is missing {', '.join(missing)}")
    permissions = set(fields["sp"])
    if not {"r", "l"} <= permissions:
        raise ValueError("sp must grant read (r) and list (l)")
    if permissions - _SAS_READ_PERMISSIONS:
        raise ValueError("sp must grant only read (r) and list (l): the platform never writes")
    try:
        expiry = dt.datetime.fromisoformat(fields["se"].replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("se must be an ISO 8601 expiry time") from None
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=dt.UTC)
    if expiry <= dt.datetime.now(dt.UTC):
        raise ValueError("has expired (se is in the past)")
    return query


class AzureSasToken(_Strict):
    sas_token: Annotated[str, AfterValidator(_sas_token)]


SECRET_MODELS: dict[tuple[str, str], type[_Strict]] = {
    ("GCP", "SERVICE_ACCOUNT"): GcpServiceAccountKey,
    ("AWS", "IAM_ROLE"): AwsIamRole,
    ("AWS", "ACCESS_KEY"): AwsAccessKey,
    ("AZURE", "FEDERATED_CREDENTIAL"): AzureFederatedCredential,
    ("AZURE", "SAS_TOKEN"): AzureSasToken,
    ("AZURE", "CLIENT_SECRET"): AzureClientSecret,
    ("OPENAI", "API_KEY"): OpenAiApiKey,
    ("ANTHROPIC", "API_KEY"): AnthropicApiKey,
    ("OPENAI", "ADMIN_KEY"): OpenAiAdminKey,
    ("ANTHROPIC", "ADMIN_KEY"): AnthropicAdminKey,
}


def _metadata(value: dict[str, str | int | float | bool | None]) -> dict[str, Any]:
    if len(value) > _MAX_METADATA_KEYS:
        raise ValueError(f"at most {_MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if not _METADATA_KEY_RE.match(key):
            raise ValueError("keys must match ^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise ValueError(f"key '{key}' names a secret; secrets belong in credentials")
        if isinstance(item, str):
            if len(item) > _MAX_METADATA_VALUE:
                raise ValueError(f"value of '{key}' is longer than {_MAX_METADATA_VALUE}")
            if redact(item) != item:
                raise ValueError(f"value of '{key}' looks like a secret; use credentials")
    return dict(value)


Metadata = Annotated[dict[str, str | int | float | bool | None], AfterValidator(_metadata)]


class CreateCredentialRequest(_Strict):
    """POST /credentials. `credentials` is the secret object; see docs/decisions.md."""

    provider: Provider
    credential_type: str = Field(min_length=1, max_length=40)
    credential_name: str = Field(pattern=r"^[\w][\w .,:()@/+-]{0,99}$")
    credentials: dict[str, Any] | None = None
    metadata: Metadata = Field(default_factory=dict)


class RotateCredentialRequest(_Strict):
    """POST /credentials/<id>/rotate: only the new secret; provider and type stay."""

    credentials: dict[str, Any] | None = None


@dataclass(frozen=True)
class ValidatedSecret:
    """A secret that passed its format checks; `payload` is None for secretless types."""

    provider: str
    credential_type: str
    payload: dict[str, Any] | None

    def to_bytes(self) -> bytes:
        """Canonical JSON: the same secret always encrypts from the same bytes."""
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":")).encode()

    @property
    def fingerprint(self) -> str | None:
        # A 48-bit hash prefix identifies a key to its owner, never recovers it.
        if self.payload is None:
            return None
        digest = hashlib.sha256(self.to_bytes()).hexdigest()
        return f"sha256:{digest[:_FINGERPRINT_HEX]}"

    def __repr__(self) -> str:  # never let a secret reach a log through repr()
        return f"ValidatedSecret({self.provider}, {self.credential_type}, <redacted>)"


def _field_errors(exc: ValidationError, prefix: str) -> ApiError:
    # Locations and messages only: pydantic's `input` would echo the secret.
    fields = [
        {"field": ".".join([prefix, *(str(p) for p in err["loc"])]), "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    first = fields[0]
    return unprocessable(
        "validation_failed",
        f"{first['field']}: {first['message']}",
        field=first["field"],
        fields=fields,
    )


def check_credential_type(provider: str, credential_type: str) -> None:
    allowed = CREDENTIAL_TYPES[provider]
    if credential_type not in allowed:
        raise unprocessable(
            "validation_failed",
            f"credential_type: for provider {provider} must be one of {', '.join(allowed)}",
            field="credential_type",
        )


def validate_secret(provider: str, credential_type: str, credentials: Any) -> ValidatedSecret:
    """The secret checked against its provider's format; a 422 naming the bad field otherwise."""
    check_credential_type(provider, credential_type)
    if credential_type in SECRETLESS_TYPES:
        if credentials:
            raise unprocessable(
                "validation_failed",
                f"credentials: {credential_type} carries no secret; omit credentials",
                field="credentials",
            )
        return ValidatedSecret(provider, credential_type, None)
    if not isinstance(credentials, dict):
        raise unprocessable(
            "validation_failed",
            f"credentials: an object is required for {provider} {credential_type}",
            field="credentials",
        )
    model = SECRET_MODELS[(provider, credential_type)]
    try:
        parsed = model.model_validate(credentials)
    except ValidationError as exc:
        raise _field_errors(exc, "credentials") from None
    return ValidatedSecret(provider, credential_type, parsed.model_dump(exclude_none=True))


def check_tenant_binding(tenant_id: str, secret: ValidatedSecret) -> None:
    """An IAM role's external id must be this tenant's: the platform presents no other."""
    if (secret.provider, secret.credential_type) != ("AWS", "IAM_ROLE"):
        return
    from shared.sources.identity import external_id_for

    if secret.payload is None or secret.payload.get("external_id") != external_id_for(tenant_id):
        raise unprocessable(
            "validation_failed",
            "credentials.external_id: is not this tenant's external id "
            "(GET /credentials/platform-identity shows it; put it in the role's trust policy)",
            field="credentials.external_id",
        )


# ----------------------------------------------------------------- validators


class CredentialValidator(Protocol):
    """Decides a validation_status for a format-valid secret, or refuses it with an ApiError."""

    def check(self, secret: ValidatedSecret) -> str: ...


class FormatValidator:
    """The default: format checks only, no network."""

    def check(self, secret: ValidatedSecret) -> str:
        if secret.credential_type == "ADMIN_KEY":
            return check_admin_key(secret)
        return "NOT_APPLICABLE" if secret.payload is None else "FORMAT_VALID"


# A probe asks the provider whether the secret works: True yes, False rejected,
# None "no live check for this provider". Transport errors raise.
Probe = Callable[[ValidatedSecret], bool | None]


class LiveValidator:
    """Format checks, then one authenticated call to the provider (opt-in, see settings)."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def check(self, secret: ValidatedSecret) -> str:
        if secret.payload is None:
            return "NOT_APPLICABLE"
        if secret.credential_type == "ADMIN_KEY":
            return check_admin_key(secret)
        try:
            accepted = self.probe(secret)
        except ValueError:
            # The provider's library refused the secret itself: the tenant's to fix.
            raise unprocessable(
                "credentials_unusable",
                "credentials: the provider's client library could not use these credentials",
                field="credentials",
            ) from None
        except Exception:
            # The provider or the network failed, not the tenant: retryable.
            raise unavailable(
                "the provider could not be reached to validate the credential"
            ) from None
        if accepted is None:
            return "FORMAT_VALID"
        if not accepted:
            raise unprocessable(
                "credentials_rejected",
                "credentials: the provider rejected these credentials",
                field="credentials",
            )
        return "LIVE_VALID"


_HTTP_PROBES: dict[str, tuple[str, Callable[[str], dict[str, str]]]] = {
    "OPENAI": ("https://api.openai.com/v1/models", lambda key: {"Authorization": f"Bearer {key}"}),
    "ANTHROPIC": (
        "https://api.anthropic.com/v1/models",
        lambda key: {"x-api-key": key, "anthropic-version": "2023-06-01"},
    ),
}


def http_probe(secret: ValidatedSecret) -> bool | None:
    """Production probe: list models with the API key, or mint a token with the SA key."""
    import urllib.error
    import urllib.request

    if secret.payload is None:
        return None  # nothing to probe: a secretless credential
    if secret.provider == "GCP":
        from google.auth.exceptions import RefreshError
        from google.auth.transport.requests import Request
        from google.oauth2 import service_account

        creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            secret.payload, scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        try:
            creds.refresh(Request())  # type: ignore[no-untyped-call]
        except RefreshError:
            return False
        return True
    if secret.provider not in _HTTP_PROBES:
        return None  # AWS needs SigV4 signing: format checks only for now
    url, headers = _HTTP_PROBES[secret.provider]
    request = urllib.request.Request(url, headers=headers(secret.payload["api_key"]))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310  (fixed https URLs)
            return True
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return False
        raise


def validator_for(mode: str | None, live_enabled: bool) -> CredentialValidator:
    """`?validate=` of a request: absent or "format" (default) or "live" (if enabled)."""
    if mode in (None, "", "format"):
        return FormatValidator()
    if mode == "live":
        if not live_enabled:
            raise unprocessable(
                "live_validation_disabled",
                "validate: live validation is disabled on this deployment",
                field="validate",
            )
        return LiveValidator(http_probe)
    raise unprocessable(
        "validation_failed", "validate: must be 'format' or 'live'", field="validate"
    )


def check_admin_key(secret: ValidatedSecret) -> str:
    """GenAI admin keys are always checked live before they are stored: one cheap call.

    422 naming what is wrong (revoked or unknown, not an admin key); 503 if the
    provider can't be reached. The provider's base URL is a setting.
    """
    from shared.deps import deps
    from shared.sources.admin_api import AdminApiError, probe_admin_key

    settings = deps().settings
    base = (
        settings.openai_admin_api_base
        if secret.provider == "OPENAI"
        else settings.anthropic_admin_api_base
    )
    key = str((secret.payload or {}).get("admin_key", ""))
    try:
        probe_admin_key(secret.provider, key, base, settings.genai_api_timeout_seconds)
    except AdminApiError as exc:
        if exc.code == "credential_rejected":
            raise unprocessable(
                "credentials_rejected",
                f"credentials.admin_key: {secret.provider} rejected the key: revoked or unknown",
                field="credentials.admin_key",
            ) from None
        if exc.code == "credential_not_admin":
            raise unprocessable(
                "credentials_rejected",
                f"credentials.admin_key: {secret.provider} says this is not an admin key "
                "(it may not read the organization's costs)",
                field="credentials.admin_key",
            ) from None
        raise unavailable("the provider could not be reached to validate the admin key") from None
    return "LIVE_VALID"

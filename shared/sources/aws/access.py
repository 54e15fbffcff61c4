"""AWS access to a tenant's Data Export: an S3 client from its IAM role or access key; listing.

Readers call `aws_access(deps, tenant_id, credential_type, secret, settings)`
and then `.s3()` (a boto3 S3 client, built on first use) or
`.list_export(...)`. boto3 is imported only when a client is built.

An IAM_ROLE credential is assumed with STS AssumeRoleWithWebIdentity, the
web identity being a Google-signed ID token of the platform's runner identity
whose audience names the tenant (shared.sources.identity): see
https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html
The request is unsigned, as AWS documents it; the temporary credentials
refresh themselves before they expire, so a long read never stops halfway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.sources.export_access import ExportAccess
from shared.sources.identity import AccessProblem, audience_for

if TYPE_CHECKING:
    from shared.vault.provider_configs import AwsExportSettings

SESSION_SECONDS = 3600


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    last_modified: dt.datetime


def export_root(location: AwsExportSettings) -> str:
    """Every file of the export lies under this key prefix (`data/`, `metadata/` below it)."""
    return f"{location.prefix}/{location.export_name}/"


class AwsExportAccess(ExportAccess["AwsExportSettings"]):
    """A tenant's credential bound to its S3 export; the S3 client is built on first use."""

    @property
    def where(self) -> str:
        return self.location.bucket

    def _config(self) -> Any:
        from botocore.config import Config

        timeout = self.settings.cloud_access_timeout_seconds
        return Config(
            region_name=self.location.region,
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 3, "mode": "standard"},
            # moto serves buckets by path; AWS by virtual host.
            s3={"addressing_style": "path" if self.settings.aws_s3_endpoint_url else "auto"},
        )

    def _assume_role(self) -> dict[str, Any]:
        """Temporary credentials of the role, in botocore's refreshable-metadata shape."""
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        sts = boto3.client(
            "sts",
            region_name=self.location.region,
            endpoint_url=self.settings.aws_sts_endpoint_url,
            config=self._config().merge(Config(signature_version=UNSIGNED)),
        )
        try:
            token = self.id_tokens.id_token(audience_for(self.settings, self.tenant_id))
        except Exception:
            raise AccessProblem(
                "identity_unavailable",
                "the platform's Google identity token could not be obtained; retry later",
                "credential_id",
                retryable=True,
            ) from None
        answer = sts.assume_role_with_web_identity(
            RoleArn=self._secret["role_arn"],
            RoleSessionName=f"convergence-{self.tenant_id}"[:64],
            WebIdentityToken=token,
            DurationSeconds=SESSION_SECONDS,
        )
        credentials = answer["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    def _session(self) -> Any:
        import boto3
        import botocore.session
        from botocore.credentials import RefreshableCredentials

        if self.credential_type == "ACCESS_KEY":
            return boto3.session.Session(
                aws_access_key_id=self._secret["access_key_id"],
                aws_secret_access_key=self._secret["secret_access_key"],
                region_name=self.location.region,
            )
        if self.credential_type != "IAM_ROLE":
            raise AccessProblem(
                "unsupported_credential",
                f"an AWS {self.credential_type} credential cannot read exports",
                "credential_id",
            )
        credentials = RefreshableCredentials.create_from_metadata(
            metadata=_translated(self._assume_role),
            refresh_using=lambda: _translated(self._assume_role),
            method="assume-role-with-web-identity",
        )
        core = botocore.session.get_session()
        core._credentials = credentials
        return boto3.session.Session(botocore_session=core, region_name=self.location.region)

    def s3(self) -> Any:
        """A boto3 S3 client with this tenant's credential; AccessProblem if it can't be had."""
        with self._lock:
            if self._client is None:
                session = _translated(self._session)
                self._client = session.client(
                    "s3", endpoint_url=self.settings.aws_s3_endpoint_url, config=self._config()
                )
            return self._client

    def list_export(self, under: str = "", *, limit: int | None = None) -> Iterator[S3Object]:
        """Objects under `<prefix>/<export_name>/<under>`, in key order, page by page."""
        paginator = self.s3().get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.location.bucket,
            Prefix=export_root(self.location) + under,
            PaginationConfig={"MaxItems": limit} if limit else {},
        )
        for page in _translated_pages(pages):
            for item in page.get("Contents", []):
                yield S3Object(item["Key"], int(item["Size"]), item["LastModified"])

    def check(self) -> int:
        """Lists one key under the export: how many it saw (0 for an export not delivered yet)."""
        return len(list(self.list_export(limit=1)))


# The one way readers and the config check get at a tenant's S3 export.
aws_access = AwsExportAccess.of


def _translated_pages(pages: Any) -> Iterator[dict[str, Any]]:
    iterator = iter(pages)
    while True:
        try:
            page = _translated(lambda: next(iterator))
        except StopIteration:
            return
        yield page


def _translated(call: Any) -> Any:
    """Runs `call`, turning botocore's errors into AccessProblems that name the field at fault."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as exc:
        raise _problem(exc) from None
    except BotoCoreError as exc:
        # Endpoint unreachable, timeouts, connection resets: nothing the tenant can fix.
        raise AccessProblem(
            "provider_unreachable",
            f"AWS could not be reached ({type(exc).__name__}); retry later",
            "credential_id",
            retryable=True,
        ) from None


# S3 and STS error codes: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
# and https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html#API_AssumeRoleWithWebIdentity_Errors
_ROLE_DENIED = (
    "the role cannot be assumed: it does not exist, or its trust policy does not "
    "allow the platform's Google identity with this tenant's audience "
    "(GET /credentials/platform-identity)"
)
_PROBLEMS: dict[str, tuple[str, str, str]] = {
    # code -> (reason, field, detail)
    "NoSuchBucket": ("no_such_bucket", "aws.bucket", "no such bucket"),
    "AccessDenied": (
        "access_denied",
        "credential_id",
        "access denied listing the export: grant s3:ListBucket on the bucket for its "
        "prefix (and s3:GetObject under it)",
    ),
    "AllAccessDisabled": ("access_denied", "aws.bucket", "all access to this bucket is disabled"),
    "InvalidAccessKeyId": ("credentials_rejected", "credential_id", "AWS does not know this key"),
    "SignatureDoesNotMatch": (
        "credentials_rejected",
        "credential_id",
        "AWS rejected the secret access key",
    ),
    "PermanentRedirect": ("wrong_region", "aws.region", "the bucket is in another region"),
    "AuthorizationHeaderMalformed": (
        "wrong_region",
        "aws.region",
        "the bucket is in another region",
    ),
    "RegionDisabledException": (
        "wrong_region",
        "aws.region",
        "STS is not activated in this region of the customer's account",
    ),
}
# The platform's side: our token, AWS's outage, throttling. Retry.
_RETRYABLE = frozenset(
    {
        "InvalidIdentityToken",
        "IDPCommunicationError",
        "IDPRejectedClaim",
        "ExpiredTokenException",
        "ExpiredToken",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "RequestTimeout",
    }
)


def _problem(exc: Any) -> AccessProblem:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    operation = getattr(exc, "operation_name", "")
    if operation == "AssumeRoleWithWebIdentity" and code == "AccessDenied":
        return AccessProblem("role_not_assumable", _ROLE_DENIED, "credential_id")
    if code in _PROBLEMS:
        reason, field, detail = _PROBLEMS[code]
        return AccessProblem(reason, detail, field)
    if code in _RETRYABLE or status >= 500:
        return AccessProblem(
            "provider_unavailable",
            f"AWS answered {code or status}; retry later",
            "credential_id",
            retryable=True,
        )
    if status == 301:
        return AccessProblem("wrong_region", "the bucket is in another region", "aws.region")
    if status == 404:
        return AccessProblem("no_such_bucket", "no such bucket", "aws.bucket")
    # Codes are AWS's public vocabulary, never a secret.
    return AccessProblem(
        "access_refused", f"AWS refused the request ({code or status})", "credential_id"
    )

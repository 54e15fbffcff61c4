"""Azure access to a tenant's FocusCost export: a ContainerClient from its credential; listing.

Readers call `azure_access(deps, tenant_id, credential_type, secret, settings)`
and then `.container()` (an azure-storage-blob ContainerClient, built on
first use) or `.list_export(...)`. The Azure SDKs are imported only then.

FEDERATED_CREDENTIAL: Microsoft Entra workload identity federation. The
client assertion is a Google-signed ID token of the platform's runner
identity, audience `<CLOUD_TOKEN_AUDIENCE>/<external id>`, which the
customer's federated identity credential names (issuer
https://accounts.google.com, subject = the runner's unique id):
https://learn.microsoft.com/entra/workload-id/workload-identity-federation
CLIENT_SECRET and SAS_TOKEN are the fallbacks.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.sources.export_access import ExportAccess
from shared.sources.identity import AccessProblem, audience_for

if TYPE_CHECKING:
    from shared.vault.provider_configs import AzureExportSettings

STORAGE_SCOPE = "https://storage.azure.com/.default"
_AADSTS_RE = re.compile(r"AADSTS\d+")


@dataclass(frozen=True)
class BlobInfo:
    name: str
    size: int
    last_modified: dt.datetime | None


def export_root(location: AzureExportSettings) -> str:
    """Every run of the export lies under this blob prefix."""
    return f"{location.directory}/"


class AzureExportAccess(ExportAccess["AzureExportSettings"]):
    """A tenant's credential bound to its FocusCost export; the container client is built on
    first use."""

    @property
    def where(self) -> str:
        return self.account_url

    @property
    def account_url(self) -> str:
        return self.settings.azure_blob_endpoint.format(account=self.location.storage_account)

    def _transport(self) -> dict[str, Any]:
        timeout = self.settings.cloud_access_timeout_seconds
        options: dict[str, Any] = {
            "connection_timeout": timeout,
            "read_timeout": timeout,
            "retry_total": 2,
        }
        if self.settings.cloud_ca_bundle is not None:
            options["connection_verify"] = str(self.settings.cloud_ca_bundle)
        return options

    def _assertion(self) -> str:
        try:
            return self.id_tokens.id_token(audience_for(self.settings, self.tenant_id))
        except Exception:
            raise AccessProblem(
                "identity_unavailable",
                "the platform's Google identity token could not be obtained; retry later",
                "credential_id",
                retryable=True,
            ) from None

    def _credential(self) -> Any:
        """The SDK credential: a SAS string, or an Entra token credential."""
        if self.credential_type == "SAS_TOKEN":
            return self._secret["sas_token"]
        from azure.identity import ClientAssertionCredential, ClientSecretCredential

        common = {
            "authority": self.settings.azure_authority_host,
            # Instance discovery asks login.microsoftonline.com about the
            # authority: only meaningful for Microsoft's own hosts.
            "disable_instance_discovery": (
                self.settings.azure_authority_host != "https://login.microsoftonline.com"
            ),
            **self._transport(),
        }
        if self.credential_type == "CLIENT_SECRET":
            return ClientSecretCredential(
                self._secret["tenant_id"],
                self._secret["client_id"],
                self._secret["client_secret"],
                **common,
            )
        if self.credential_type == "FEDERATED_CREDENTIAL":
            return ClientAssertionCredential(
                self._secret["tenant_id"], self._secret["client_id"], self._assertion, **common
            )
        raise AccessProblem(
            "unsupported_credential",
            f"an Azure {self.credential_type} credential cannot read exports",
            "credential_id",
        )

    def container(self) -> Any:
        """An azure-storage-blob ContainerClient with this tenant's credential."""
        from azure.storage.blob import ContainerClient

        with self._lock:
            if self._client is None:
                credential = self._credential()
                if not isinstance(credential, str):
                    _translated(lambda: credential.get_token(STORAGE_SCOPE), identity=True)
                self._client = ContainerClient(
                    self.account_url,
                    self.location.container,
                    credential=credential,
                    **self._transport(),
                )
            return self._client

    def list_export(self, under: str = "", *, limit: int | None = None) -> Iterator[BlobInfo]:
        """Blobs under `<directory>/<under>`, in name order, page by page."""
        container = self.container()
        pages = container.list_blobs(
            name_starts_with=export_root(self.location) + under,
            results_per_page=min(limit, 5000) if limit else None,
        ).by_page()
        seen = 0
        while True:
            page = self._call(lambda: next(pages, None))
            if page is None:
                return
            for blob in self._call(lambda page=page: list(page)):
                yield BlobInfo(blob.name, int(blob.size or 0), blob.last_modified)
                seen += 1
                if limit and seen >= limit:
                    return

    def _call(self, call: Any) -> Any:
        try:
            return _translated(call)
        except AccessProblem as problem:
            # Azure answers a bad SAS with AuthenticationFailed or AuthorizationFailure
            # depending on what is wrong; either way it is the token.
            if self.credential_type == "SAS_TOKEN" and problem.reason in _SAS_FAULTS:
                raise AccessProblem(
                    "sas_rejected",
                    "Azure Storage refused the SAS token: its signature, expiry, resource "
                    "or permissions (read and list) do not allow listing this container",
                    "credential_id",
                ) from None
            raise

    def check(self) -> int:
        """Lists one blob under the directory: how many it saw (0 before the first run)."""
        return len(list(self.list_export(limit=1)))


# The one way readers and the config check get at a tenant's export container.
azure_access = AzureExportAccess.of


# Storage error codes: https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes
_PROBLEMS: dict[str, tuple[str, str, str]] = {
    "ContainerNotFound": ("no_such_container", "azure.container", "no such container"),
    "AuthenticationFailed": (
        "credentials_rejected",
        "credential_id",
        "Azure Storage rejected the credential: a SAS token that is invalid, expired or "
        "not signed for this storage account, or an Entra token it does not accept",
    ),
    "AuthorizationPermissionMismatch": (
        "access_denied",
        "credential_id",
        "access denied listing the export: grant Storage Blob Data Reader on the container "
        "(or a SAS with read and list)",
    ),
    "AuthorizationFailure": (
        "access_denied",
        "credential_id",
        "access denied listing the export (network rules or permissions)",
    ),
    "AuthorizationResourceTypeMismatch": (
        "access_denied",
        "credential_id",
        "the SAS token does not cover containers and blobs (srt/sr)",
    ),
    "AuthorizationServiceMismatch": (
        "access_denied",
        "credential_id",
        "the SAS token is not for the Blob service (ss)",
    ),
}
# Entra sign-in errors: https://learn.microsoft.com/entra/identity-platform/reference-error-codes
_ENTRA_PROBLEMS: dict[str, str] = {
    "AADSTS70021": "no federated identity credential of the app matches the platform's "
    "identity (issuer, subject and audience: GET /credentials/platform-identity)",
    "AADSTS700016": "no application with this client id in the directory",
    "AADSTS700213": "no federated identity credential of the app matches the platform's identity",
    "AADSTS7000215": "the client secret is invalid",
    "AADSTS7000222": "the client secret has expired",
    "AADSTS90002": "no such Entra tenant",
    "AADSTS900023": "the Entra tenant id is invalid",
}


def _translated(call: Any, *, identity: bool = False) -> Any:
    """Runs `call`, turning Azure SDK errors into AccessProblems that name the field at fault."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        return call()
    except ClientAuthenticationError as exc:
        if identity:
            raise _entra_problem(str(exc)) from None
        raise _storage_problem(exc) from None
    except HttpResponseError as exc:
        raise _storage_problem(exc) from None
    except ServiceRequestError as exc:
        if _unresolvable(exc):
            raise AccessProblem(
                "no_such_storage_account", "the storage account does not resolve", _ACCOUNT
            ) from None
        raise _unreachable() from None
    except ServiceResponseError:
        raise _unreachable() from None


_ACCOUNT = "azure.storage_account"
_SAS_FAULTS = frozenset({"access_denied", "credentials_rejected"})


def _unreachable() -> AccessProblem:
    return AccessProblem(
        "provider_unreachable",
        "Azure could not be reached; retry later",
        "credential_id",
        retryable=True,
    )


def _unresolvable(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Name or service not known" in str(exc) or "nodename nor servname" in str(exc)


def _entra_problem(message: str) -> AccessProblem:
    match = _AADSTS_RE.search(message)
    code = match.group(0) if match else None
    if code in _ENTRA_PROBLEMS:
        return AccessProblem(
            "identity_rejected", f"{code}: {_ENTRA_PROBLEMS[code]}", "credential_id"
        )
    if code is None:
        return _unreachable()
    # AADSTS codes are Microsoft's public vocabulary; the message around them is not shown.
    return AccessProblem(
        "identity_rejected", f"Entra refused the sign-in ({code})", "credential_id"
    )


def _storage_problem(exc: Any) -> AccessProblem:
    code = str(getattr(exc, "error_code", None) or "")
    status = int(getattr(exc, "status_code", None) or 0)
    if code in _PROBLEMS:
        reason, field, detail = _PROBLEMS[code]
        return AccessProblem(reason, detail, field)
    if status >= 500 or status in (408, 429):
        return AccessProblem(
            "provider_unavailable",
            f"Azure Storage answered {code or status}; retry later",
            "credential_id",
            retryable=True,
        )
    if code in ("ResourceNotFound", "AccountNotFound") or status == 404:
        return AccessProblem("no_such_storage_account", "no such storage account", _ACCOUNT)
    if status == 403:
        reason, field, detail = _PROBLEMS["AuthorizationFailure"]
        return AccessProblem(reason, detail, field)
    return AccessProblem(
        "access_refused", f"Azure Storage refused the request ({code or status})", "credential_id"
    )

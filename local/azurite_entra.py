"""A local Microsoft Entra token endpoint: the client-credentials flow, from Microsoft's contract.

Built from https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
(client secret, and a client assertion: `client_assertion_type` =
urn:ietf:params:oauth:client-assertion-type:jwt-bearer) and the federated
identity credential matching of
https://learn.microsoft.com/entra/workload-id/workload-identity-federation
(the assertion's issuer, subject and audience must equal one credential's).
Errors carry the AADSTS codes Entra sends for the same faults.

Apps live in `entra-apps.json`, read on every request:
  {"<tenant id>": {"<client id>": {"client_secret": "...",
                                  "federated": [{"issuer", "subject", "audiences"}]}}}
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
STORAGE_AUDIENCE = "https://storage.azure.com"


def register_app(
    apps_file: Path,
    tenant_id: str,
    client_id: str,
    *,
    client_secret: str | None = None,
    federated: list[dict[str, Any]] | None = None,
) -> None:
    """Adds (or replaces) an app registration: what a customer does in the Entra portal."""
    apps: dict[str, Any] = json.loads(apps_file.read_text()) if apps_file.exists() else {}
    entry: dict[str, Any] = {"federated": federated or []}
    if client_secret is not None:
        entry["client_secret"] = client_secret
    apps.setdefault(tenant_id, {})[client_id] = entry
    tmp = apps_file.with_suffix(f".{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(apps))
    tmp.replace(apps_file)


class EntraStandIn:
    """Serves /{tenant}/v2.0/.well-known/openid-configuration and /{tenant}/oauth2/v2.0/token."""

    def __init__(self, port: int, apps_file: Path, google_certs: Path, cert: Path, key: Path):
        self.port = port
        self.apps_file = apps_file
        self.google_certs = google_certs
        self.cert = cert
        self.key = key
        self._server: Any = None
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._signing_pem = signing.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        import ssl

        from werkzeug.serving import make_server

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        self._server = make_server("127.0.0.1", self.port, self, threaded=True, ssl_context=context)
        threading.Thread(target=self._server.serve_forever, name="entra", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # ------------------------------------------------------------------ WSGI

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        from werkzeug.wrappers import Request

        request = Request(environ)
        parts = [p for p in request.path.split("/") if p]
        status, body = 404, {"error": "not_found"}
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            status, body = 200, self._openid_configuration(parts[0])
        elif parts[:1] == ["common"] and parts[1:3] == ["discovery", "instance"]:
            status, body = 200, {"tenant_discovery_endpoint": "", "metadata": []}
        elif len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            status, body = self._token(parts[0], dict(request.form))
        payload = json.dumps(body).encode()
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [payload]

    def _openid_configuration(self, tenant: str) -> dict[str, Any]:
        return {
            "issuer": f"https://login.microsoftonline.com/{tenant}/v2.0",
            "token_endpoint": f"{self.url}/{tenant}/oauth2/v2.0/token",
            "authorization_endpoint": f"{self.url}/{tenant}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{self.url}/{tenant}/oauth2/v2.0/devicecode",
            "tenant_region_scope": "WW",
        }

    @staticmethod
    def _fault(status: int, error: str, code: str, text: str) -> tuple[int, dict[str, Any]]:
        return status, {
            "error": error,
            "error_description": f"{code}: {text}",
            "error_codes": [int(code[6:])],
            "correlation_id": str(uuid.uuid4()),
        }

    def _token(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        apps: dict[str, Any] = (
            json.loads(self.apps_file.read_text()) if self.apps_file.exists() else {}
        )
        if form.get("grant_type") != "client_credentials":
            return self._fault(400, "unsupported_grant_type", "AADSTS70003", "grant type")
        if tenant not in apps:
            return self._fault(
                400, "invalid_request", "AADSTS90002", f"Tenant '{tenant}' not found."
            )
        client_id = form.get("client_id", "")
        app = apps[tenant].get(client_id)
        if app is None:
            return self._fault(
                400,
                "unauthorized_client",
                "AADSTS700016",
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if "client_secret" in form:
            if form["client_secret"] != app.get("client_secret"):
                return self._fault(
                    401, "invalid_client", "AADSTS7000215", "Invalid client secret provided."
                )
        elif form.get("client_assertion_type") == ASSERTION_TYPE:
            if not self._assertion_matches(form.get("client_assertion", ""), app):
                return self._fault(
                    400,
                    "invalid_client",
                    "AADSTS70021",
                    "No matching federated identity record found for presented assertion.",
                )
        else:
            return self._fault(
                401, "invalid_client", "AADSTS7000218", "client_assertion or client_secret needed."
            )
        return 200, self._access_token(tenant, client_id)

    def _assertion_matches(self, assertion: str, app: dict[str, Any]) -> bool:
        from google.auth import jwt

        certs = json.loads(self.google_certs.read_text())
        try:
            claims = jwt.decode(assertion, certs=certs, verify=True)  # type: ignore[no-untyped-call]
        except Exception:
            return False
        return any(
            claims.get("iss") == fic["issuer"]
            and claims.get("sub") == fic["subject"]
            and claims.get("aud") in fic["audiences"]
            for fic in app.get("federated", [])
        )

    def _access_token(self, tenant: str, client_id: str) -> dict[str, Any]:
        from google.auth import crypt, jwt

        now = int(time.time())
        claims = {
            "aud": STORAGE_AUDIENCE,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "appid": client_id,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id)),
            "tid": tenant,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id)),
        }
        signer = crypt.RSASigner.from_string(self._signing_pem, key_id="local-entra")
        token: bytes = jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
        return {
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": token.decode(),
        }

"""moto in server mode (S3, STS, IAM) for the local stack and tests, with AWS's web-identity checks.

moto alone is lenient where it matters here: its AssumeRoleWithWebIdentity
accepts any token for any role, even one that does not exist, and without
IAM auth it lets every caller read every bucket. So this server

- runs moto with IAM authentication on (INITIAL_NO_AUTH_ACTION_COUNT): S3
  calls need a known key or assumed-role session, and moto evaluates the
  caller's identity policies (actions and resources; not conditions such as
  `s3:prefix`, nor bucket policies);
- answers AssumeRoleWithWebIdentity itself, as AWS documents it
  (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html):
  an unsigned form POST; the token must be signed by a key in the local
  Google certificates, issued by accounts.google.com and unexpired
  (else 400 InvalidIdentityToken); the role must exist and its trust policy
  must allow `sts:AssumeRoleWithWebIdentity` for the Federated principal
  accounts.google.com under its StringEquals/StringLike conditions on
  `accounts.google.com:aud` (the token's azp, else aud), `:oaud` (aud) and
  `:sub` (else 403 AccessDenied, the same answer for both, as AWS gives);
  then moto issues the session credentials;
- bootstraps an admin IAM user whose keys it writes to `moto-admin.json`, for
  the tests and the demo to create buckets, roles and files.

    python -m local.moto_server --port P --data-dir DIR --google-certs certs.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import io
import json
import os
import sys
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from local.child_server import ChildServer

ACCOUNT_ID = "123456789012"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
READY_PATH = "/_local/ready"
# The admin user's three bootstrap calls are the only unauthenticated ones.
BOOTSTRAP_CALLS = 3
Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def _error(code: str, message: str, status: str) -> tuple[str, bytes]:
    kind = "Sender" if status.startswith("4") else "Receiver"
    body = (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return status, body.encode()


def _values(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _claim_values(claims: dict[str, Any]) -> dict[str, str]:
    # AWS maps accounts.google.com:aud to azp when the token has one, and :oaud to aud:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#condition-keys-wif
    return {
        "accounts.google.com:aud": str(claims.get("azp") or claims.get("aud")),
        "accounts.google.com:oaud": str(claims.get("aud")),
        "accounts.google.com:sub": str(claims.get("sub")),
    }


def _conditions_hold(conditions: dict[str, Any], claims: dict[str, Any]) -> bool:
    actual = _claim_values(claims)
    for operator, tests in conditions.items():
        if operator not in ("StringEquals", "StringLike"):
            return False  # fail closed on what this stand-in does not evaluate
        for key, expected in tests.items():
            value = actual.get(key)
            if value is None:
                return False
            patterns = _values(expected)
            if operator == "StringEquals" and value not in patterns:
                return False
            if operator == "StringLike" and not any(
                fnmatch.fnmatchcase(value, p) for p in patterns
            ):
                return False
    return True


def _statement_matches(statement: dict[str, Any], claims: dict[str, Any]) -> bool:
    actions = _values(statement.get("Action"))
    if not any(fnmatch.fnmatchcase("sts:AssumeRoleWithWebIdentity", a) for a in actions):
        return False
    principal = statement.get("Principal") or {}
    federated = _values(principal.get("Federated")) if isinstance(principal, dict) else []
    if "accounts.google.com" not in federated:
        return False
    return _conditions_hold(statement.get("Condition") or {}, claims)


def trust_allows(policy: dict[str, Any], claims: dict[str, Any]) -> bool:
    """IAM's rule: some Allow statement matches and no Deny statement does."""
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    matching = [s for s in statements if _statement_matches(s, claims)]
    if any(s.get("Effect") == "Deny" for s in matching):
        return False
    return any(s.get("Effect") == "Allow" for s in matching)


class WebIdentitySts:
    """WSGI middleware: AssumeRoleWithWebIdentity answered here, everything else by moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]], certs: dict[str, str]) -> None:
        self.app = app
        self.certs = certs
        self.ready = threading.Event()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == READY_PATH:
            status = "200 OK" if self.ready.is_set() else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain")])
            return [b"ready" if self.ready.is_set() else b"starting"]
        params = self._form(environ)
        if params.get("Action") == "AssumeRoleWithWebIdentity":
            status, body = self._assume(params)
            start_response(status, [("Content-Type", "text/xml")])
            return [body]
        return self.app(environ, start_response)

    @staticmethod
    def _form(environ: Environ) -> dict[str, str]:
        """The query or form parameters; the body is put back for moto to read."""
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
        content_type = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") != "POST" or "x-www-form-urlencoded" not in content_type:
            return query
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return {**query, **dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))}

    def _claims(self, token: str) -> dict[str, Any] | None:
        from google.auth import jwt

        try:
            claims = dict(jwt.decode(token, certs=self.certs, verify=True))  # type: ignore[no-untyped-call]
        except Exception:
            return None
        return claims if claims.get("iss") in GOOGLE_ISSUERS else None

    def _assume(self, params: dict[str, str]) -> tuple[str, bytes]:
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        for name in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
            if not params.get(name):
                return _error("MissingParameter", f"{name} is required", "400 Bad Request")
        duration = int(params.get("DurationSeconds") or 3600)
        if not 900 <= duration <= 43200:
            return _error("ValidationError", "DurationSeconds out of range", "400 Bad Request")
        claims = self._claims(params["WebIdentityToken"])
        if claims is None:
            return _error(
                "InvalidIdentityToken", "Couldn't verify the web identity token", "400 Bad Request"
            )
        role_arn = params["RoleArn"]
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        denied = _error(
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            "403 Forbidden",
        )
        try:
            role = iam_backends[account]["aws"].get_role_by_arn(role_arn)
        except Exception:
            return denied
        policy = role.assume_role_policy_document
        if not trust_allows(json.loads(policy) if isinstance(policy, str) else policy, claims):
            return denied
        session = sts_backends[account]["aws"].assume_role_with_web_identity(
            region_name="us-east-1",
            role_session_name=params["RoleSessionName"],
            role_arn=role_arn,
            policy=params.get("Policy"),
            duration=duration,
            external_id=None,
        )
        expiration = session.expiration.replace(tzinfo=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = (
            f'<AssumeRoleWithWebIdentityResponse xmlns="{NAMESPACE}">'
            "<AssumeRoleWithWebIdentityResult>"
            f"<SubjectFromWebIdentityToken>{escape(str(claims.get('sub')))}"
            "</SubjectFromWebIdentityToken>"
            f"<Audience>{escape(str(claims.get('azp') or claims.get('aud')))}</Audience>"
            f"<AssumedRoleUser><Arn>{escape(session.arn)}</Arn>"
            f"<AssumedRoleId>{escape(session.user_id)}</AssumedRoleId></AssumedRoleUser>"
            f"<Credentials><AccessKeyId>{session.access_key_id}</AccessKeyId>"
            f"<SecretAccessKey>{session.secret_access_key}</SecretAccessKey>"
            f"<SessionToken>{session.session_token}</SessionToken>"
            f"<Expiration>{expiration}</Expiration></Credentials>"
            "<Provider>accounts.google.com</Provider>"
            "</AssumeRoleWithWebIdentityResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</AssumeRoleWithWebIdentityResponse>"
        )
        return "200 OK", body.encode()


def _bootstrap_admin(url: str, data_dir: Path) -> None:
    """The three unauthenticated calls: an admin user with a key, written for tests and the demo."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",  # noqa: S106 - moto before auth is on
    )
    iam.create_user(UserName="convergence-local-admin")
    iam.put_user_policy(
        UserName="convergence-local-admin",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="convergence-local-admin")["AccessKey"]
    path = data_dir / "moto-admin.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
        )
    )
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--google-certs", type=Path, required=True)
    args = parser.parse_args(argv)
    # Read by moto's settings at import: auth on after the bootstrap calls.
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(BOOTSTRAP_CALLS)
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    args.data_dir.mkdir(parents=True, exist_ok=True)
    certs = json.loads(args.google_certs.read_text())
    app = WebIdentitySts(DomainDispatcherApplication(create_backend_app), certs)
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _bootstrap_admin(f"http://127.0.0.1:{args.port}", args.data_dir)
    app.ready.set()
    stop = threading.Event()
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0


class MotoServer(ChildServer):
    """The launcher: `start()` returns once the admin key is written and the server answers."""

    name = "moto"

    def __init__(self, data_dir: Path, port: int, google_certs: Path) -> None:
        super().__init__(port, data_dir / "moto.log")
        self.data_dir = data_dir
        self.google_certs = google_certs

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "local.moto_server",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--google-certs",
            str(self.google_certs),
        ]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}{READY_PATH}", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def admin_keys(self) -> dict[str, str]:
        """The bootstrap admin's key (moto-admin.json): for setting up buckets, roles, files."""
        keys: dict[str, str] = json.loads((self.data_dir / "moto-admin.json").read_text())
        return keys

    def admin_client(self, service: str) -> Any:
        import boto3

        keys = self.admin_keys()
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=keys["access_key_id"],
            aws_secret_access_key=keys["secret_access_key"],
        )


if __name__ == "__main__":
    sys.exit(main())

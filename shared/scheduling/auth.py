"""Who may tick the trigger: an operator's admin key, or Cloud Scheduler's OIDC token."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping

from shared.http import ApiRequest, require_admin
from shared.platform.errors import unauthorized

log = logging.getLogger(__name__)

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
# Google rotates its signing keys over days and publishes a new key well before
# using it; an hour-old copy is current, and a token naming a key we have not
# seen refreshes the copy, at most once per REFRESH_INTERVAL_SECONDS.
CERTS_TTL_SECONDS = 3600.0
REFRESH_INTERVAL_SECONDS = 60.0
CLOCK_SKEW_SECONDS = 30
MAX_TOKEN_BYTES = 8 * 1024

Fetch = Callable[[str], Mapping[str, str]]


def fetch_certs(url: str) -> Mapping[str, str]:
    """{key id: PEM certificate} from Google's (or a stand-in's) certificate endpoint."""
    from google.auth.transport import requests as google_requests

    response = google_requests.Request()(url=url, method="GET", timeout=10)
    if response.status != 200:
        raise OSError(f"certificate endpoint answered {response.status}")
    certs = json.loads(response.data)
    if not isinstance(certs, dict) or not all(isinstance(v, str) for v in certs.values()):
        raise OSError("certificate endpoint answered something other than {kid: PEM}")
    return certs


class GoogleCerts:
    """Google's token-signing certificates, fetched once and kept for the process.

    Fetching them per request would let any caller make the trigger call out,
    and fail along with Google's endpoint. A fetch that fails keeps the copy
    we have; a token whose key is in no copy is refused (401), never a 5xx.
    """

    def __init__(
        self,
        url: str,
        fetch: Fetch = fetch_certs,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._clock = clock
        self._certs: Mapping[str, str] = {}
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._lock = threading.Lock()

    def for_key(self, key_id: str) -> Mapping[str, str] | None:
        """The certificates, if one of them is `key_id`'s (refreshing when due)."""
        with self._lock:
            now = self._clock()
            due = now - self._fetched_at >= CERTS_TTL_SECONDS or key_id not in self._certs
            if due and now - self._attempted_at >= REFRESH_INTERVAL_SECONDS:
                self._attempted_at = now
                try:
                    self._certs = dict(self._fetch(self.url))
                    self._fetched_at = now
                except (OSError, ValueError) as exc:
                    log.warning(
                        "Google's signing certificates could not be fetched",
                        extra={"error_type": type(exc).__name__},
                    )
            return self._certs if key_id in self._certs else None


def verified_claims(
    token: str, *, audience: str, certs: GoogleCerts, clock_skew: int = CLOCK_SKEW_SECONDS
) -> Mapping[str, object] | None:
    """The token's claims if Google signed it for `audience` and it is current; else None.

    The header is read first, without trusting it, so a token that is not a
    signed JWT at all is refused before any certificate is looked up.
    """
    from google.auth import exceptions as auth_errors
    from google.auth import jwt

    if len(token) > MAX_TOKEN_BYTES:
        return None
    try:
        header = jwt.decode_header(token)  # type: ignore[no-untyped-call]
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            return None
        key_id = header.get("kid")
        if not isinstance(key_id, str):
            return None
        known = certs.for_key(key_id)
        if known is None:
            return None
        claims = jwt.decode(  # type: ignore[no-untyped-call]
            token, certs=known, audience=audience, clock_skew_in_seconds=clock_skew
        )
    except (ValueError, TypeError, KeyError, auth_errors.GoogleAuthError):
        return None
    if not isinstance(claims, Mapping) or claims.get("iss") not in GOOGLE_ISSUERS:
        return None
    return claims


def require_scheduler(request: ApiRequest) -> None:
    """X-Admin-Key (locally and for operators), or, where SCHEDULER_SA and TRIGGER_AUDIENCE are
    set, a Google-signed OIDC token of that service account for that audience.

    In production IAM already lets only the scheduler's service account invoke
    the function; checking the token here too keeps a misconfigured invoker
    binding from opening the trigger to every authenticated caller.
    """
    if request.header("X-Admin-Key") is not None:
        require_admin(request)
        return
    settings = request.deps.settings
    bearer = request.header("Authorization") or ""
    if not bearer.startswith("Bearer ") or not (
        settings.scheduler_sa and settings.trigger_audience
    ):
        raise unauthorized("missing or invalid X-Admin-Key or scheduler token")
    claims = verified_claims(
        bearer.removeprefix("Bearer ").strip(),
        audience=settings.trigger_audience,
        certs=request.deps.google_certs,
    )
    if (
        claims is None
        or claims.get("email") != settings.scheduler_sa
        or claims.get("email_verified") is not True
    ):
        log.warning("trigger refused an OIDC token")
        raise unauthorized("the scheduler token is not valid for this trigger")

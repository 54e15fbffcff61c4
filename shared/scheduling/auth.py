"""Who may tick the trigger: an operator's admin key, or Cloud Scheduler's OIDC token."""

from __future__ import annotations

import logging

from shared.http import ApiRequest, require_admin
from shared.platform.errors import unauthorized

log = logging.getLogger(__name__)


def _verify_oidc(token: str, audience: str) -> dict[str, object] | None:
    """The token's claims if Google signed it for `audience`; None otherwise."""
    from google.auth.transport import requests as google_requests
    from google.oauth2 import id_token

    try:
        claims: dict[str, object] = id_token.verify_oauth2_token(  # type: ignore[no-untyped-call]
            token, google_requests.Request(), audience=audience
        )
    except ValueError:
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
    assert settings.trigger_audience is not None
    claims = _verify_oidc(bearer.removeprefix("Bearer ").strip(), settings.trigger_audience)
    if (
        claims is None
        or claims.get("email") != settings.scheduler_sa
        or claims.get("email_verified") is not True
    ):
        log.warning("trigger refused an OIDC token")
        raise unauthorized("the scheduler token is not valid for this trigger")

"""The welcome message on onboarding: how the admin gets to the key, never the key itself."""

from __future__ import annotations

import json
import logging

from google.api_core import exceptions as api_errors

from shared.deps import Deps
from shared.notify import outbox

log = logging.getLogger(__name__)

WELCOME_TEXT = (
    "Your Convergence tenant is ready. Your API key is shown once and is never sent by email: "
    "it was in the onboarding response, or, if you signed up through checkout, reveal it once "
    "from the page your checkout returned to. If it is lost, an admin rotates it "
    "(a new key is shown once). Next: store your cloud credentials, add a provider config "
    "with notification_emails, and schedule a pipeline."
)


def record_welcome(deps: Deps, tenant_id: str, company_name: str) -> None:
    """One MERGE keyed `welcome:<tenant>`: a replayed onboarding welcomes once.

    Best effort: onboarding has already succeeded and issued the key, so a
    warehouse error here is logged, not turned into a failed onboarding.
    """
    facts = json.dumps({"text": WELCOME_TEXT, "company_name": company_name}, sort_keys=True)
    try:
        outbox.record(
            deps.warehouse,
            "SELECT @t AS tenant_id, CONCAT('welcome:', @t) AS dedupe_key, 'welcome' AS kind, "
            "CONCAT('Welcome to Convergence, ', @company) AS subject, @facts AS facts_json, "
            "CAST(NULL AS STRING) AS recipients_json",
            {"t": tenant_id, "company": company_name, "facts": facts},
            deps.clock(),
            component="notify_welcome",
            tenant_id=tenant_id,
        )
    except api_errors.GoogleAPIError:
        log.exception("welcome message not recorded", extra={"tenant_id": tenant_id})

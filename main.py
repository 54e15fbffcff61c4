"""Every function entry point: gen2 deploys one source zip, each with its own --entry-point.

Entry points resolve lazily (PEP 562 module `__getattr__`): functions-framework
loads this file and then does `getattr(module, target)`, so a deployed function
imports only `functions.<target>` and what that module needs, never the other
functions' code (the Stripe SDK, Tink, ...). `import main` itself imports nothing.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from functions.admin import admin
    from functions.audit import audit
    from functions.costs import costs
    from functions.credentials import credentials
    from functions.members import members
    from functions.notifications import notifications
    from functions.onboard import onboard
    from functions.pipelines import pipelines
    from functions.quota import quota
    from functions.stripe_webhook import stripe_webhook
    from functions.trigger import trigger

FUNCTION_NAMES = (
    "onboard",
    "stripe_webhook",
    "credentials",
    "pipelines",
    "trigger",
    "quota",
    "admin",
    "members",
    "audit",
    "notifications",
    "costs",
)

__all__ = [
    "FUNCTION_NAMES",
    "admin",
    "audit",
    "costs",
    "credentials",
    "members",
    "notifications",
    "onboard",
    "pipelines",
    "quota",
    "stripe_webhook",
    "trigger",
]


def __getattr__(name: str) -> Any:
    """`main.<function>`: imports `functions.<function>` on first access only."""
    if name not in FUNCTION_NAMES:
        raise AttributeError(f"module 'main' has no attribute {name!r}")
    entry_point = getattr(importlib.import_module(f"functions.{name}"), name)
    globals()[name] = entry_point  # later lookups skip this hook
    return entry_point


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(FUNCTION_NAMES))


# functions-framework executes this module inside each new app's context: make
# that app answer its own errors (404/405 outside our routes) as JSON too.
# Flask is already loaded there; elsewhere (`import main`) there is no app.
_flask = sys.modules.get("flask")
if _flask is not None and _flask.has_app_context():
    from shared.http import install_json_errors

    install_json_errors(_flask.current_app)

"""Every function entry point: gen2 deploys one source zip, each with its own --entry-point."""

import flask as _flask

from functions.admin import admin
from functions.credentials import credentials
from functions.onboard import onboard
from functions.pipelines import pipelines
from functions.quota import quota
from functions.stripe_webhook import stripe_webhook
from functions.trigger import trigger
from shared.http import install_json_errors as _install_json_errors

FUNCTION_NAMES = (
    "onboard",
    "stripe_webhook",
    "credentials",
    "pipelines",
    "trigger",
    "quota",
    "admin",
)

__all__ = [
    "FUNCTION_NAMES",
    "admin",
    "credentials",
    "onboard",
    "pipelines",
    "quota",
    "stripe_webhook",
    "trigger",
]

# functions-framework executes this module inside each new app's context: make
# that app answer its own errors (404/405 outside our routes) as JSON too.
if _flask.has_app_context():
    _install_json_errors(_flask.current_app)

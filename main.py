"""Every function entry point: gen2 deploys one source zip, each with its own --entry-point."""

from functions.admin import admin
from functions.credentials import credentials
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

"""Email through the SMTP relay (STARTTLS; host and credentials from the platform secrets)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from shared.platform.secrets import SMTP_HOST, SMTP_PASSWORD, SMTP_USERNAME, Secrets

SMTP_TIMEOUT_SECONDS = 10.0


class EmailError(Exception):
    """A message the relay did not take; the text is safe to store (no credential)."""


@dataclass(frozen=True)
class Relay:
    host: str
    port: int
    username: str | None
    password: str | None
    require_tls: bool


def _configured(secrets: Secrets, name: str) -> str | None:
    # Secret Manager refuses an empty payload, and Cloud Run refuses to start a
    # revision whose mounted secret has no version: an operator without a relay
    # stores a blank (" "), which means "not configured".
    value = secrets.get(name)
    return value if value and value.strip() else None


def relay_from(secrets: Secrets, *, require_tls: bool) -> Relay | None:
    """The configured relay, or None when email is not set up (SMTP_HOST unset or blank)."""
    address = _configured(secrets, SMTP_HOST)
    if address is None:
        return None
    address = address.strip()
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        host, port = address, "587"
    return Relay(
        host,
        int(port),
        _configured(secrets, SMTP_USERNAME),
        _configured(secrets, SMTP_PASSWORD),
        require_tls,
    )


def send(relay: Relay, mail: EmailMessage, recipients: list[str]) -> None:
    """Sends one message; STARTTLS when offered, and required before any password is sent."""
    try:
        with smtplib.SMTP(relay.host, relay.port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            elif relay.require_tls or relay.password:
                raise EmailError("the SMTP relay does not offer STARTTLS")
            if relay.username and relay.password:
                smtp.login(relay.username, relay.password)
            # Recipients the relay refuses while it takes others are dropped, not
            # retried: a bad address would otherwise resend to every good one.
            smtp.send_message(mail, to_addrs=recipients)
    except smtplib.SMTPException as exc:
        raise EmailError(f"SMTP: {exc.__class__.__name__}") from None
    except OSError as exc:
        raise EmailError(f"SMTP connection: {exc.__class__.__name__}") from None

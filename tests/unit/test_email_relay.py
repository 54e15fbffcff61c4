"""The SMTP relay setting: host:port parsing, and a blank secret meaning "no email"."""

from __future__ import annotations

import pytest

from shared.notify.email import Relay, relay_from
from shared.platform.secrets import SMTP_HOST, SMTP_PASSWORD, SMTP_USERNAME, StaticSecrets


def test_host_port_user_and_password_come_from_the_secrets() -> None:
    secrets = StaticSecrets(
        {SMTP_HOST: "smtp.example.com:2525", SMTP_USERNAME: "alerts", SMTP_PASSWORD: "pw"}
    )
    assert relay_from(secrets, require_tls=True) == Relay(
        "smtp.example.com", 2525, "alerts", "pw", True
    )


def test_a_host_without_a_port_uses_the_submission_port() -> None:
    relay = relay_from(StaticSecrets({SMTP_HOST: "smtp.example.com"}), require_tls=False)
    assert relay == Relay("smtp.example.com", 587, None, None, False)


@pytest.mark.parametrize("blank", ["", " ", "\n", " \t "])
def test_a_blank_host_means_email_is_not_configured(blank: str) -> None:
    # Secret Manager refuses an empty payload, so "no relay" is stored as a blank.
    assert relay_from(StaticSecrets({SMTP_HOST: blank}), require_tls=True) is None


def test_blank_credentials_mean_no_login() -> None:
    secrets = StaticSecrets({SMTP_HOST: "relay:25", SMTP_USERNAME: " ", SMTP_PASSWORD: " "})
    assert relay_from(secrets, require_tls=True) == Relay("relay", 25, None, None, True)

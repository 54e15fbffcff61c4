"""Webhook URL safety (SSRF) and Stripe-style signatures, without any network."""

from __future__ import annotations

import pytest

from shared.notify import signing
from shared.notify.webhook_urls import UnsafeUrl, check_url


def resolver(mapping: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return lambda host, port: mapping.get(host, [])


PUBLIC = resolver({"hooks.example.com": ["93.184.216.34"], "localhost": ["127.0.0.1"]})


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/computeMetadata/v1/",
        "https://[::1]/hook",
        "https://[::ffff:10.1.2.3]/hook",
        "https://192.168.1.1/",
        "https://172.16.0.1/",
        "https://100.64.0.1/",
        "https://0.0.0.0/",
    ],
)
def test_literal_private_loopback_and_link_local_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="private, loopback or link-local"):
        check_url(url, localhost_allowed=False, resolve=lambda h, p: [h])


def test_a_dns_name_resolving_to_a_private_address_is_refused() -> None:
    sneaky = resolver({"internal.attacker.example": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(UnsafeUrl, match="private"):
        check_url("https://internal.attacker.example/x", localhost_allowed=False, resolve=sneaky)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/x", "must use https"),
        ("ftp://hooks.example.com/x", "https:// URL"),
        ("https://user:pw@hooks.example.com/x", "user or password"),
        ("https://nowhere.invalid/x", "does not resolve"),
        ("https://hooks.example.com:99999/x", "malformed"),
        ("http://localhost:8080/x", "must use https"),
    ],
)
def test_other_unsafe_urls_are_refused_naming_why(url: str, problem: str) -> None:
    with pytest.raises(UnsafeUrl, match=problem):
        check_url(url, localhost_allowed=False, resolve=PUBLIC)


def test_a_public_https_url_is_accepted_and_pinned_to_the_checked_address() -> None:
    target = check_url("https://hooks.example.com/a?b=1", localhost_allowed=False, resolve=PUBLIC)
    assert (target.scheme, target.host, target.port, target.path, target.address) == (
        "https",
        "hooks.example.com",
        443,
        "/a?b=1",
        "93.184.216.34",
    )


def test_http_to_localhost_only_when_the_local_stack_allows_it() -> None:
    target = check_url("http://localhost:8080/x", localhost_allowed=True, resolve=PUBLIC)
    assert target.address == "127.0.0.1"
    with pytest.raises(UnsafeUrl):
        check_url("http://hooks.example.com/x", localhost_allowed=True, resolve=PUBLIC)
    with pytest.raises(UnsafeUrl, match="private"):
        check_url("https://10.0.0.1/x", localhost_allowed=True, resolve=lambda h, p: [h])


def test_a_receiver_verifies_the_signature_with_the_shown_secret() -> None:
    secret = signing.new_secret()
    body = b'{"text":"Budget at 80%","message_id":"msg_1"}'
    header = signing.signature_header(secret, 1_800_000_000, body)
    assert header.startswith("t=1800000000,v1=")
    assert signing.verify(secret, header, body, now=1_800_000_010)


def test_a_tampered_body_a_wrong_secret_or_a_stale_timestamp_fail_verification() -> None:
    secret = signing.new_secret()
    body = b'{"amount":"80.00"}'
    header = signing.signature_header(secret, 1_800_000_000, body)
    assert not signing.verify(secret, header, b'{"amount":"8000.00"}', now=1_800_000_000)
    assert not signing.verify(signing.new_secret(), header, body, now=1_800_000_000)
    assert not signing.verify(secret, header, body, now=1_800_000_000 + 301)
    assert not signing.verify(secret, "v1=" + header.split("v1=")[1], body, now=1_800_000_000)

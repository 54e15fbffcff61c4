"""Cloud Scheduler's OIDC token: what the trigger accepts and refuses, and Google's keys."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.scheduling.auth import (
    CERTS_TTL_SECONDS,
    REFRESH_INTERVAL_SECONDS,
    GoogleCerts,
    verified_claims,
)
from tests.fakes.google_certs import SigningKey, scheduler_claims

SCHEDULER = "scheduler@project.iam.gserviceaccount.com"
AUDIENCE = "https://trigger-abc-uc.a.run.app"

GOOGLE = SigningKey.generate("google-key-1")
IMPOSTOR = SigningKey.generate("google-key-1")  # same kid, different key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Published:
    """Google's certificate endpoint as a function: what it serves, how often it was asked."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.failing = False

    def __call__(self, url: str) -> Mapping[str, str]:
        self.fetches += 1
        if self.failing:
            raise OSError("certificate endpoint answered 500")
        return {k.kid: k.cert_pem for k in self.keys}


def certs_for(published: Published, clock: Clock | None = None) -> GoogleCerts:
    return GoogleCerts("https://certs.example/oauth2/v1/certs", published, clock or Clock())


def verify(token: str, certs: GoogleCerts) -> Mapping[str, object] | None:
    return verified_claims(token, audience=AUDIENCE, certs=certs)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    segments = [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode())]
    return ".".join([*segments, b64(signature)])


def test_a_token_google_signed_for_the_scheduler_and_this_audience_is_accepted() -> None:
    claims = verify(
        GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE)), certs_for(Published(GOOGLE))
    )

    assert claims is not None
    assert (claims["email"], claims["aud"], claims["email_verified"]) == (SCHEDULER, AUDIENCE, True)


def _hs256_with_the_public_certificate() -> str:
    # The classic confusion: HMAC "signed" with the public key as the secret.
    header = {"alg": "HS256", "kid": GOOGLE.kid, "typ": "JWT"}
    claims = scheduler_claims(SCHEDULER, AUDIENCE)
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(GOOGLE.cert_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


REFUSED = {
    "another audience": lambda: GOOGLE.sign(scheduler_claims(SCHEDULER, "https://other.run.app")),
    "expired": lambda: GOOGLE.sign(
        scheduler_claims(
            SCHEDULER,
            AUDIENCE,
            iat=int(dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()),
            exp=int(dt.datetime(2020, 1, 1, 1, tzinfo=dt.UTC).timestamp()),
        )
    ),
    "issued in the future": lambda: GOOGLE.sign(
        scheduler_claims(SCHEDULER, AUDIENCE, iat=int(dt.datetime.now(dt.UTC).timestamp()) + 3600)
    ),
    "not issued by Google": lambda: GOOGLE.sign(
        scheduler_claims(SCHEDULER, AUDIENCE, iss="https://evil.example")
    ),
    "signed by another key under Google's key id": lambda: IMPOSTOR.sign(
        scheduler_claims(SCHEDULER, AUDIENCE)
    ),
    "signed by a key Google never published": lambda: SigningKey.generate().sign(
        scheduler_claims(SCHEDULER, AUDIENCE)
    ),
    "alg none": lambda: unsigned(
        {"alg": "none", "kid": GOOGLE.kid}, scheduler_claims(SCHEDULER, AUDIENCE)
    ),
    "HS256 keyed with the public certificate": _hs256_with_the_public_certificate,
    "no key id": lambda: unsigned({"alg": "RS256"}, scheduler_claims(SCHEDULER, AUDIENCE), b"x"),
    "a tampered payload": lambda: ".".join(
        [
            GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE)).split(".")[0],
            b64(
                json.dumps(
                    scheduler_claims("intruder@x.iam.gserviceaccount.com", AUDIENCE)
                ).encode()
            ),
            GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE)).split(".")[2],
        ]
    ),
    "not a JWT": lambda: "not-a-token",
    "empty": lambda: "",
    "a header that is a list": lambda: f"{b64(b'[1]')}.{b64(b'{}')}.{b64(b'x')}",
    "oversized": lambda: GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE, pad="x" * 10_000)),
}


@pytest.mark.parametrize("make_token", REFUSED.values(), ids=REFUSED.keys())
def test_a_token_that_is_not_googles_for_this_audience_now_is_refused(make_token: Any) -> None:
    assert verify(make_token(), certs_for(Published(GOOGLE))) is None


def test_claims_the_trigger_checks_itself_are_passed_through() -> None:
    # The function compares email and email_verified with its settings.
    token = GOOGLE.sign(scheduler_claims("other@p.iam.gserviceaccount.com", AUDIENCE))
    unverified = GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE, email_verified=False))

    certs = certs_for(Published(GOOGLE))

    assert verify(token, certs)["email"] == "other@p.iam.gserviceaccount.com"  # type: ignore[index]
    assert verify(unverified, certs)["email_verified"] is False  # type: ignore[index]


def test_garbage_is_refused_without_asking_google() -> None:
    published = Published(GOOGLE)
    certs = certs_for(published)

    for token in ("abc", "a.b.c", "", "Bearer", unsigned({"alg": "none"}, {})):
        assert verify(token, certs) is None

    assert published.fetches == 0


def test_the_certificates_are_fetched_once_and_kept_for_their_ttl() -> None:
    published, clock = Published(GOOGLE), Clock()
    certs = certs_for(published, clock)
    token = GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE))

    accepted = [verify(token, certs) is not None for _ in range(5)]
    clock.now += CERTS_TTL_SECONDS
    after_ttl = verify(token, certs)

    assert accepted == [True] * 5
    assert after_ttl is not None
    assert published.fetches == 2


def test_unknown_key_ids_refresh_at_most_once_per_interval_and_pick_up_a_rotation() -> None:
    published, clock = Published(GOOGLE), Clock()
    certs = certs_for(published, clock)
    assert verify(GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE)), certs) is not None
    rotated = SigningKey.generate("google-key-2")

    def rotated_token() -> Mapping[str, object] | None:
        return verify(rotated.sign(scheduler_claims(SCHEDULER, AUDIENCE)), certs)

    clock.now += REFRESH_INTERVAL_SECONDS
    flood = [rotated_token() for _ in range(5)]
    flood += [verify(SigningKey.generate().sign(scheduler_claims(SCHEDULER, AUDIENCE)), certs)]
    fetches_after_flood = published.fetches
    published.keys.append(rotated)
    too_soon = rotated_token()
    clock.now += REFRESH_INTERVAL_SECONDS
    after_rotation = rotated_token()

    assert flood == [None] * 6
    assert fetches_after_flood == 2  # the first fetch, then one refresh for the whole flood
    assert too_soon is None
    assert after_rotation is not None
    assert published.fetches == 3


def test_an_unreachable_endpoint_refuses_new_keys_but_keeps_the_known_ones() -> None:
    published, clock = Published(GOOGLE), Clock()
    certs = certs_for(published, clock)
    token = GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE))
    assert verify(token, certs) is not None

    published.failing = True
    clock.now += CERTS_TTL_SECONDS
    still_known = verify(token, certs)
    never_fetched = certs_for(published, clock)

    assert still_known is not None
    assert verify(token, never_fetched) is None


@settings(max_examples=300, deadline=None)
@given(
    token=st.one_of(
        st.text(max_size=300),
        st.lists(st.text(max_size=60), min_size=1, max_size=5).map(".".join),
        st.tuples(
            st.dictionaries(st.sampled_from(["alg", "kid", "typ"]), st.text(max_size=10)),
            st.dictionaries(
                st.sampled_from(["iss", "aud", "exp", "iat", "email"]),
                st.one_of(st.integers(), st.text(max_size=20), st.none(), st.lists(st.none())),
            ),
            st.binary(max_size=40),
        ).map(lambda parts: unsigned(*parts)),
    )
)
def test_no_token_makes_the_verifier_raise(token: str) -> None:
    assert verify(token, certs_for(Published(GOOGLE))) is None

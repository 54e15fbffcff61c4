"""The trigger as Cloud Scheduler calls it in production: a Google-signed OIDC token, no admin key.

Google's certificate endpoint is a local HTTP stand-in; everything else (the
function, google-auth's verification, its HTTP transport) is the real thing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from shared.deps import use_deps
from tests.fakes.google_certs import CertsEndpoint, SigningKey, scheduler_claims, serving
from tests.integration.conftest import Platform

SCHEDULER = "scheduler@convergence-dev.iam.gserviceaccount.com"
AUDIENCE = "https://trigger-abc-uc.a.run.app"
GOOGLE = SigningKey.generate()


@pytest.fixture
def google() -> Iterator[CertsEndpoint]:
    with serving(CertsEndpoint(keys=[GOOGLE])) as endpoint:
        yield endpoint


@pytest.fixture
def scheduled(platform: Platform, google: CertsEndpoint) -> Platform:
    """The platform configured as Terraform deploys the trigger."""
    settings = platform.deps.settings.model_copy(
        update={
            "scheduler_sa": SCHEDULER,
            "trigger_audience": AUDIENCE,
            "google_certs_url": google.url,
        }
    )
    deployed = dataclasses.replace(platform.deps, settings=settings)
    use_deps(deployed)
    return Platform(deployed)


def tick(platform: Platform, token: str) -> Any:
    return platform.client("trigger").post("/", headers={"Authorization": f"Bearer {token}"})


def test_the_schedulers_token_ticks_the_trigger_and_googles_keys_are_fetched_once(
    scheduled: Platform, google: CertsEndpoint
) -> None:
    token = GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE))

    answers = [tick(scheduled, token) for _ in range(3)]

    assert [a.status_code for a in answers] == [200] * 3, answers[0].get_json()
    # Nothing is due on a fresh platform: the tick ran and found nothing to do.
    assert answers[0].get_json() == {
        "due": 0,
        "admitted": 0,
        "skipped": 0,
        "enqueued": 0,
        "reaped": 0,
    }
    assert google.fetches == 1


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(
            scheduler_claims("intruder@other.iam.gserviceaccount.com", AUDIENCE), id="other-sa"
        ),
        pytest.param(scheduler_claims(SCHEDULER, "https://elsewhere.run.app"), id="other-audience"),
        pytest.param(scheduler_claims(SCHEDULER, AUDIENCE, email_verified=False), id="unverified"),
    ],
)
def test_a_google_signed_token_for_someone_else_is_401(
    scheduled: Platform, claims: dict[str, Any]
) -> None:
    response = tick(scheduled, GOOGLE.sign(claims))

    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_when_google_cannot_be_reached_a_token_is_401_not_a_5xx(
    scheduled: Platform, google: CertsEndpoint
) -> None:
    google.failing = True

    response = tick(scheduled, GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE)))

    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert google.fetches == 1


def test_without_scheduler_settings_a_bearer_token_is_401(
    platform: Platform, google: CertsEndpoint
) -> None:
    response = tick(platform, GOOGLE.sign(scheduler_claims(SCHEDULER, AUDIENCE)))

    assert response.status_code == 401
    assert google.fetches == 0

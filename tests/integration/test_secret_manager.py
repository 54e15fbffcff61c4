"""SecretManagerSecrets through the real Secret Manager client, against a fake server over gRPC."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.platform.errors import ApiError
from shared.platform.secrets import ADMIN_API_KEY, API_KEY_PEPPER, SecretManagerSecrets, require
from tests.fakes.secret_manager import FakeSecretManager

PROJECT = "convergence-prod"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def secret_manager() -> Iterator[FakeSecretManager]:
    fake = FakeSecretManager()
    yield fake
    fake.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def secrets(secret_manager: FakeSecretManager, clock: FakeClock) -> SecretManagerSecrets:
    return SecretManagerSecrets(secret_manager.client(), PROJECT, ttl_seconds=300, clock=clock)


def test_a_secret_is_read_from_the_latest_version(
    secret_manager: FakeSecretManager, secrets: SecretManagerSecrets
) -> None:
    secret_manager.set(PROJECT, ADMIN_API_KEY, "adm_live_1")

    assert secrets.get(ADMIN_API_KEY) == "adm_live_1"


def test_a_secret_of_another_project_is_not_read(
    secret_manager: FakeSecretManager, secrets: SecretManagerSecrets
) -> None:
    secret_manager.set("someone-else", ADMIN_API_KEY, "adm_other")

    assert secrets.get(ADMIN_API_KEY) is None


def test_an_unknown_secret_is_none_so_require_answers_503(secrets: SecretManagerSecrets) -> None:
    assert secrets.get(API_KEY_PEPPER) is None
    with pytest.raises(ApiError, match="api_key_pepper missing") as raised:
        require(secrets, API_KEY_PEPPER)

    assert raised.value.status == 503


def test_a_warm_read_within_the_ttl_makes_no_call(
    secret_manager: FakeSecretManager, secrets: SecretManagerSecrets, clock: FakeClock
) -> None:
    secret_manager.set(PROJECT, ADMIN_API_KEY, "adm_live_1")
    secrets.get(ADMIN_API_KEY)
    clock.now += 299

    value = secrets.get(ADMIN_API_KEY)

    assert value == "adm_live_1"
    assert secret_manager.access_calls == 1


def test_a_rotated_secret_is_picked_up_once_the_ttl_has_passed(
    secret_manager: FakeSecretManager, secrets: SecretManagerSecrets, clock: FakeClock
) -> None:
    secret_manager.set(PROJECT, ADMIN_API_KEY, "adm_live_1")
    secrets.get(ADMIN_API_KEY)
    secret_manager.set(PROJECT, ADMIN_API_KEY, "adm_live_2")
    clock.now += 301

    value = secrets.get(ADMIN_API_KEY)

    assert value == "adm_live_2"
    assert secret_manager.access_calls == 2


def test_a_missing_secret_is_cached_too_and_appears_after_the_ttl(
    secret_manager: FakeSecretManager, secrets: SecretManagerSecrets, clock: FakeClock
) -> None:
    secrets.get(ADMIN_API_KEY)
    secret_manager.set(PROJECT, ADMIN_API_KEY, "adm_live_1")

    within_ttl = secrets.get(ADMIN_API_KEY)
    clock.now += 301
    after_ttl = secrets.get(ADMIN_API_KEY)

    assert (within_ttl, after_ttl) == (None, "adm_live_1")
    assert secret_manager.access_calls == 2


def test_a_zero_ttl_reads_every_time(secret_manager: FakeSecretManager) -> None:
    secret_manager.set(PROJECT, ADMIN_API_KEY, "adm_live_1")
    secrets = SecretManagerSecrets(secret_manager.client(), PROJECT, ttl_seconds=0)

    secrets.get(ADMIN_API_KEY)
    secrets.get(ADMIN_API_KEY)

    assert secret_manager.access_calls == 2


def test_a_malformed_secret_name_is_refused_without_a_call(
    secret_manager: FakeSecretManager, secrets: SecretManagerSecrets
) -> None:
    with pytest.raises(ValueError, match="secret names"):
        secrets.get("ADMIN_API_KEY/versions/1")

    assert secret_manager.access_calls == 0

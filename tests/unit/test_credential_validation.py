"""Credential format checks: every bad secret is a 422 naming its field and never echoing it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.http import parse_model
from shared.platform.errors import ApiError
from shared.vault.credential_validation import (
    CreateCredentialRequest,
    FormatValidator,
    LiveValidator,
    ValidatedSecret,
    validate_secret,
    validator_for,
)
from shared.vault.provider_configs import CreateProviderConfigRequest
from tests.credential_samples import (
    anthropic_key,
    aws_key,
    ec_pem,
    openai_key,
    rsa_pem,
    service_account,
)


def refusal(provider: str, credential_type: str, credentials: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        validate_secret(provider, credential_type, credentials)
    return caught.value


def assert_not_echoed(error: ApiError, *secrets: str) -> None:
    text = json.dumps(error.body()) + error.detail + str(error)
    for secret in secrets:
        assert secret not in text


def test_a_real_service_account_key_file_passes_and_keeps_its_fields() -> None:
    info = service_account()

    secret = validate_secret("GCP", "SERVICE_ACCOUNT", info)

    assert secret.payload == info
    assert secret.fingerprint is not None
    assert secret.fingerprint.startswith("sha256:")
    assert len(secret.fingerprint) == len("sha256:") + 12


def test_the_fingerprint_identifies_the_secret_without_containing_it() -> None:
    key = openai_key()

    first = validate_secret("OPENAI", "API_KEY", {"api_key": key})
    again = validate_secret("OPENAI", "API_KEY", {"api_key": key})
    other = validate_secret("OPENAI", "API_KEY", {"api_key": openai_key()})

    assert first.fingerprint == again.fingerprint != other.fingerprint
    assert first.fingerprint is not None
    assert key[-4:] not in first.fingerprint.removeprefix("sha256:")


def test_a_validated_secret_never_shows_its_payload_in_repr() -> None:
    info = service_account()

    secret = validate_secret("GCP", "SERVICE_ACCOUNT", info)

    assert info["private_key"][40:80] not in repr(secret)
    assert "redacted" in repr(secret)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "authorized_user"}, "credentials.type"),
        ({"project_id": "Acme-Prod"}, "credentials.project_id"),
        ({"project_id": "abc"}, "credentials.project_id"),
        ({"project_id": "1acme-prod"}, "credentials.project_id"),
        ({"project_id": "acme-prod-"}, "credentials.project_id"),
        ({"project_id": "a" * 31}, "credentials.project_id"),
        ({"private_key": "not a key"}, "credentials.private_key"),
        ({"private_key": ec_pem()}, "credentials.private_key"),
        ({"client_email": "not-an-email"}, "credentials.client_email"),
        ({"token_uri": "https://attacker.example/token"}, "credentials.token_uri"),
        # Without token_uri google-auth can't mint a token (a ValueError, once a 503);
        # another universe_domain makes it sign its own JWT and never ask Google,
        # so a random RSA key passed live validation.
        ({"token_uri": None}, "credentials.token_uri"),
        ({"universe_domain": "attacker.example"}, "credentials.universe_domain"),
        ({"client_id": "abc"}, "credentials.client_id"),
        ({"unexpected": "x"}, "credentials.unexpected"),
    ],
)
def test_an_invalid_service_account_field_is_named(changes: dict[str, Any], field: str) -> None:
    info = service_account(**changes)

    error = refusal("GCP", "SERVICE_ACCOUNT", info)

    assert (error.status, error.extra["field"]) == (422, field)
    assert_not_echoed(
        error, rsa_pem()[40:120], *[str(v) for v in changes.values() if len(str(v)) > 8]
    )


def test_a_missing_private_key_is_named() -> None:
    info = service_account()
    del info["private_key"]

    error = refusal("GCP", "SERVICE_ACCOUNT", info)

    assert error.extra["field"] == "credentials.private_key"


def test_a_damaged_private_key_is_refused_without_quoting_it() -> None:
    pem = rsa_pem()
    damaged = pem.replace(pem[100:110], "AAAAAAAAAA")

    error = refusal("GCP", "SERVICE_ACCOUNT", service_account(private_key=damaged))

    assert error.extra["field"] == "credentials.private_key"
    assert_not_echoed(error, damaged[60:100], damaged[200:240])


@pytest.mark.parametrize(
    ("provider", "credential_type"),
    [("GCP", "API_KEY"), ("OPENAI", "SERVICE_ACCOUNT"), ("AWS", "API_KEY"), ("ANTHROPIC", "x")],
)
def test_a_credential_type_the_provider_does_not_take_is_named(
    provider: str, credential_type: str
) -> None:
    error = refusal(provider, credential_type, {"api_key": openai_key()})

    assert (error.status, error.extra["field"]) == (422, "credential_type")


@pytest.mark.parametrize("credentials", [None, "sk-abc", ["a"], 42])
def test_a_secret_that_is_not_an_object_is_named_credentials(credentials: Any) -> None:
    error = refusal("OPENAI", "API_KEY", credentials)

    assert error.extra["field"] == "credentials"


def test_workload_identity_carries_no_secret() -> None:
    secret = validate_secret("GCP", "WORKLOAD_IDENTITY", None)
    error = refusal("GCP", "WORKLOAD_IDENTITY", {"private_key": rsa_pem()})

    assert (secret.payload, secret.fingerprint) == (None, None)
    assert error.extra["field"] == "credentials"
    assert_not_echoed(error, rsa_pem()[40:120])


@pytest.mark.parametrize(
    ("provider", "value"),
    [
        ("OPENAI", "pk-" + "a" * 40),
        ("OPENAI", "sk-short"),
        ("OPENAI", "sk-" + "a" * 30 + "!"),
        ("OPENAI", anthropic_key()),
        ("ANTHROPIC", openai_key()),
        ("ANTHROPIC", "sk-ant-" + "a" * 10),
    ],
)
def test_a_malformed_api_key_is_named_and_not_echoed(provider: str, value: str) -> None:
    error = refusal(provider, "API_KEY", {"api_key": value})

    assert (error.status, error.extra["field"]) == (422, "credentials.api_key")
    assert_not_echoed(error, value)


def test_well_formed_api_keys_pass() -> None:
    assert validate_secret("OPENAI", "API_KEY", {"api_key": openai_key()}).payload
    assert validate_secret("ANTHROPIC", "API_KEY", {"api_key": anthropic_key()}).payload


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"access_key_id": "AKIA123"}, "credentials.access_key_id"),
        ({"access_key_id": "ASIA" + "A" * 16}, "credentials.access_key_id"),
        ({"secret_access_key": "x" * 39}, "credentials.secret_access_key"),
    ],
)
def test_a_malformed_aws_access_key_is_named(changes: dict[str, str], field: str) -> None:
    error = refusal("AWS", "ACCESS_KEY", {**aws_key(), **changes})

    assert error.extra["field"] == field
    assert_not_echoed(error, *changes.values())


def test_a_well_formed_aws_access_key_passes() -> None:
    keys = aws_key()

    assert validate_secret("AWS", "ACCESS_KEY", keys).payload == keys


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"provider": "ORACLE"}, "provider"),
        ({"credential_name": ""}, "credential_name"),
        ({"credential_name": "<script>"}, "credential_name"),
        ({"credentials": "sk-" + "a" * 30}, "credentials"),
        ({"metadata": {"api_key": "x"}}, "metadata"),
        ({"metadata": {"note": "sk-" + "a" * 30}}, "metadata"),
        ({"metadata": "team"}, "metadata"),
        ({"secret": "x"}, "secret"),
    ],
)
def test_the_create_body_names_its_bad_field(changes: dict[str, Any], field: str) -> None:
    body = {
        "provider": "OPENAI",
        "credential_type": "API_KEY",
        "credential_name": "prod key",
        "credentials": {"api_key": openai_key()},
        "metadata": {},
        **changes,
    }

    with pytest.raises(ApiError) as caught:
        parse_model(CreateCredentialRequest, body)

    assert (caught.value.status, caught.value.extra["field"]) == (422, field)
    assert_not_echoed(caught.value, "sk-" + "a" * 30)


def test_format_validation_is_the_default_and_needs_no_network() -> None:
    secret = validate_secret("OPENAI", "API_KEY", {"api_key": openai_key()})
    secretless = validate_secret("GCP", "WORKLOAD_IDENTITY", None)

    validator = validator_for(None, live_enabled=True)

    assert isinstance(validator, FormatValidator)
    assert validator.check(secret) == "FORMAT_VALID"
    assert validator.check(secretless) == "NOT_APPLICABLE"


def test_live_validation_is_refused_unless_the_deployment_enables_it() -> None:
    with pytest.raises(ApiError) as disabled:
        validator_for("live", live_enabled=False)
    with pytest.raises(ApiError) as unknown:
        validator_for("maybe", live_enabled=True)

    assert disabled.value.extra["field"] == "validate"
    assert unknown.value.extra["field"] == "validate"
    assert isinstance(validator_for("live", live_enabled=True), LiveValidator)


def test_a_key_the_provider_library_cannot_use_is_422_not_503() -> None:
    secret = validate_secret("OPENAI", "API_KEY", {"api_key": openai_key()})

    def unusable(_: ValidatedSecret) -> bool:
        raise ValueError("Service account info was not in the expected format")

    with pytest.raises(ApiError) as refused:
        LiveValidator(unusable).check(secret)

    assert (refused.value.status, refused.value.extra["field"]) == (422, "credentials")
    assert "expected format" not in refused.value.detail


def test_the_live_validator_reports_what_the_provider_said() -> None:
    secret = validate_secret("OPENAI", "API_KEY", {"api_key": openai_key()})

    def broken(_: ValidatedSecret) -> bool:
        raise OSError("network down")

    assert LiveValidator(lambda _: True).check(secret) == "LIVE_VALID"
    assert LiveValidator(lambda _: None).check(secret) == "FORMAT_VALID"
    with pytest.raises(ApiError) as rejected:
        LiveValidator(lambda _: False).check(secret)
    with pytest.raises(ApiError) as unreachable:
        LiveValidator(broken).check(secret)
    assert (rejected.value.status, rejected.value.extra["field"]) == (422, "credentials")
    assert unreachable.value.status == 503


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source_project_id": "Bad_Project"}, "source_project_id"),
        ({"source_project_id": "proj-"}, "source_project_id"),
        ({"billing_export_dataset": "bad-dataset"}, "billing_export_dataset"),
        ({"billing_export_dataset": "a" * 1025}, "billing_export_dataset"),
        ({"billing_export_table": "bad.table"}, "billing_export_table"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"notification_emails": ["not-an-email"]}, "notification_emails.0"),
        ({"provider": "ORACLE"}, "provider"),
    ],
)
def test_a_provider_config_names_its_bad_field(changes: dict[str, Any], field: str) -> None:
    body = {
        "provider": "GCP",
        "source_project_id": "acme-billing-prod",
        "billing_export_dataset": "billing_export",
        "billing_export_table": "gcp_billing_export_v1_0123AB_4567CD_89EF01",
        "currency": "USD",
        "notification_emails": ["finops@acme.example"],
        **changes,
    }

    with pytest.raises(ApiError) as caught:
        parse_model(CreateProviderConfigRequest, body)

    assert caught.value.extra["field"] == field

"""AWS and Azure settings and credentials: each bad value is a 422 naming its field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from local.moto_server import trust_allows
from shared.http import parse_model
from shared.platform.errors import ApiError
from shared.platform.settings import Settings
from shared.sources.identity import audience_for, external_id_for, platform_identity
from shared.vault.credential_validation import check_tenant_binding, validate_secret
from shared.vault.provider_configs import CreateProviderConfigRequest

AWS = {
    "bucket": "acme-cur",
    "prefix": "exports/cur",
    "export_name": "focus12",
    "export_type": "FOCUS_1_2_AWS",
    "region": "eu-central-1",
}
AZURE = {
    "storage_account": "acmebilling",
    "container": "cost-exports",
    "directory": "focus/prod",
    "export_name": "acme-focus",
    "dataset_version": "1.0r2",
}


def field_of(body: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as caught:
        parse_model(CreateProviderConfigRequest, body)
    assert caught.value.status == 422
    return str(caught.value.extra["field"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bucket": "Acme-Cur"}, "aws.bucket"),
        ({"bucket": "ab"}, "aws.bucket"),
        ({"bucket": "acme..cur"}, "aws.bucket"),
        ({"bucket": "192.168.1.10"}, "aws.bucket"),
        ({"bucket": "xn--acme"}, "aws.bucket"),
        ({"bucket": "acme-s3alias"}, "aws.bucket"),
        ({"prefix": "/exports"}, "aws.prefix"),
        ({"prefix": "exports/"}, "aws.prefix"),
        ({"prefix": "exports//cur"}, "aws.prefix"),
        ({"prefix": "exports/../other"}, "aws.prefix"),
        ({"export_name": "bad name"}, "aws.export_name"),
        ({"export_type": "CUR"}, "aws.export_type"),
        ({"region": "Europe"}, "aws.region"),
        ({"extra": 1}, "aws.extra"),
    ],
)
def test_a_bad_aws_setting_is_named(changes: dict[str, Any], field: str) -> None:
    body = {"provider": "AWS", "currency": "USD", "aws": {**AWS, **changes}}
    assert field_of(body) == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"storage_account": "Acme_Billing"}, "azure.storage_account"),
        ({"storage_account": "ab"}, "azure.storage_account"),
        ({"container": "cost--exports"}, "azure.container"),
        ({"container": "-cost"}, "azure.container"),
        ({"container": "co"}, "azure.container"),
        ({"directory": "../up"}, "azure.directory"),
        ({"export_name": "a/b"}, "azure.export_name"),
        ({"dataset_version": "ActualCost"}, "azure.dataset_version"),
        ({"dataset_version": "1.1"}, "azure.dataset_version"),
    ],
)
def test_a_bad_azure_setting_is_named(changes: dict[str, Any], field: str) -> None:
    body = {"provider": "AZURE", "currency": "EUR", "azure": {**AZURE, **changes}}
    assert field_of(body) == field


def test_good_settings_parse_for_both_clouds() -> None:
    aws = parse_model(
        CreateProviderConfigRequest, {"provider": "AWS", "currency": "USD", "aws": AWS}
    )
    azure = parse_model(
        CreateProviderConfigRequest, {"provider": "AZURE", "currency": "EUR", "azure": AZURE}
    )
    assert aws.aws is not None and aws.aws.model_dump() == AWS
    assert azure.azure is not None and azure.azure.model_dump() == AZURE


def sas(**fields: str) -> str:
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    values = {"sv": "2025-01-05", "sr": "c", "sp": "rl", "se": expiry, "sig": "a" * 43 + "%3D"}
    values.update(fields)
    return "&".join(f"{k}={v}" for k, v in values.items() if v)


@pytest.mark.parametrize(
    "token",
    [sas(sp="racwdl"), sas(sp="r"), sas(sig=""), sas(se="2020-01-01T00:00:00Z"), "not a sas"],
)
def test_a_sas_that_writes_lacks_list_is_unsigned_or_expired_is_refused(token: str) -> None:
    with pytest.raises(ApiError) as caught:
        validate_secret("AZURE", "SAS_TOKEN", {"sas_token": token})
    assert caught.value.extra["field"] == "credentials.sas_token"
    assert token not in caught.value.detail


def test_a_read_and_list_sas_passes() -> None:
    secret = validate_secret("AZURE", "SAS_TOKEN", {"sas_token": "?" + sas()})
    assert secret.payload == {"sas_token": sas()}


def test_an_iam_role_must_carry_the_tenants_own_external_id() -> None:
    role = "arn:aws:iam::123456789012:role/convergence-billing-reader"
    own = validate_secret(
        "AWS", "IAM_ROLE", {"role_arn": role, "external_id": external_id_for("acme")}
    )
    other = validate_secret(
        "AWS", "IAM_ROLE", {"role_arn": role, "external_id": external_id_for("globex")}
    )

    check_tenant_binding("acme", own)
    with pytest.raises(ApiError) as caught:
        check_tenant_binding("acme", other)
    assert caught.value.extra["field"] == "credentials.external_id"


def test_audiences_differ_per_tenant_and_end_in_the_external_id() -> None:
    settings = Settings(environment="test", cloud_token_audience="https://cvg.example/access/")

    acme, globex = audience_for(settings, "acme"), audience_for(settings, "globex")

    assert acme != globex
    assert acme == f"https://cvg.example/access/{external_id_for('acme')}"
    shown = platform_identity(settings, "acme")
    assert shown["aws"]["conditions"]["accounts.google.com:oaud"] == acme
    assert shown["azure"]["audience"] == acme


def trust(**conditions: str) -> dict[str, Any]:
    return {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "accounts.google.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": conditions},
            }
        ]
    }


CLAIMS = {"iss": "https://accounts.google.com", "aud": "https://a/cvg-1", "azp": "42", "sub": "42"}


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        (
            trust(
                **{"accounts.google.com:aud": "42", "accounts.google.com:oaud": "https://a/cvg-1"}
            ),
            True,
        ),
        (trust(**{"accounts.google.com:oaud": "https://a/cvg-2"}), False),
        (trust(**{"accounts.google.com:aud": "https://a/cvg-1"}), False),  # aud is azp here
        (trust(**{"accounts.google.com:sub": "43"}), False),
        ({"Statement": [{**trust()["Statement"][0], "Principal": {"AWS": "*"}}]}, False),
        ({"Statement": [{**trust()["Statement"][0], "Condition": {"Bool": {"x": "y"}}}]}, False),
    ],
)
def test_the_local_sts_evaluates_trust_the_way_iam_documents_it(
    policy: dict[str, Any], allowed: bool
) -> None:
    assert trust_allows(policy, CLAIMS) is allowed

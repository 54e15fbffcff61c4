"""AWS and Azure access over the credentials API: moto (S3 + STS) and Azurite (+ Entra), real SDKs.

A provider config that names a credential is created only if that credential
lists the export's prefix or directory; every failure is a 422 naming what is
wrong (or a 503 when the provider can't be reached), and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from local.aws_export import bucket_read_policy, reader_user_keys
from local.aws_export import trusting_role as local_trusting_role
from local.azurite_entra import register_app
from local.cloud_access import CloudStandIns
from local.emulator import free_port
from local.moto_server import ACCOUNT_ID
from shared.sources.aws.access import aws_access
from shared.sources.azure.access import azure_access
from shared.vault.credentials import decrypt_credential
from shared.vault.provider_configs import AwsExportSettings, AzureExportSettings
from tests.integration.conftest import Platform

ACCOUNT = "cvgexports"


@pytest.fixture
def settings_overrides(clouds: CloudStandIns) -> dict[str, object]:
    return dict(clouds.environment())


def call(platform: Platform, method: str, path: str, key: str, **kwargs: Any) -> Any:
    return platform.tenant_call("credentials", method, path, key, **kwargs)


def config_rows(platform: Platform, tenant_id: str) -> list[dict[str, Any]]:
    wh = platform.deps.warehouse
    return wh.query(
        f"SELECT * FROM {wh.central('tenant_provider_configs')} WHERE tenant_id = @t",
        {"t": tenant_id},
    )


def identity(platform: Platform, key: str) -> dict[str, Any]:
    response = call(platform, "GET", "/platform-identity", key)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


# ----------------------------------------------------------------- AWS


def aws_export(clouds: CloudStandIns, files: int = 3) -> dict[str, Any]:
    """A bucket holding a few files of a FOCUS 1.2 export, as Data Exports lays them out."""
    bucket = f"acme-cur-{uuid.uuid4().hex[:12]}"
    s3 = clouds.moto.admin_client("s3")
    s3.create_bucket(Bucket=bucket)
    root = "exports/focus12"
    for i in range(files):
        s3.put_object(
            Bucket=bucket,
            Key=f"{root}/data/BILLING_PERIOD=2026-0{i + 1}/focus12-0000{i}.snappy.parquet",
            Body=b"PAR1",
        )
    s3.put_object(
        Bucket=bucket,
        Key=f"{root}/metadata/BILLING_PERIOD=2026-01/focus12-Manifest.json",
        Body=b"{}",
    )
    s3.put_object(Bucket=bucket, Key="elsewhere/secret.csv", Body=b"x")
    return {
        "bucket": bucket,
        "prefix": "exports",
        "export_name": "focus12",
        "export_type": "FOCUS_1_2_AWS",
        "region": "us-east-1",
    }


def reader_policy(bucket: str) -> str:
    """May list `bucket` and read the exports in it, the least an export reader needs."""
    return bucket_read_policy(bucket, "exports/*")


def trusting_role(clouds: CloudStandIns, trust: dict[str, Any], bucket: str) -> str:
    """The customer's role: trusts accounts.google.com per `trust`, reads `bucket`."""
    return local_trusting_role(clouds.moto.admin_client("iam"), trust, bucket)


def role_credential(platform: Platform, key: str, role_arn: str, external_id: str) -> Any:
    return call(
        platform,
        "POST",
        "/",
        key,
        json={
            "provider": "AWS",
            "credential_type": "IAM_ROLE",
            "credential_name": "cur reader",
            "credentials": {"role_arn": role_arn, "external_id": external_id},
        },
    )


def aws_config(platform: Platform, key: str, export: dict[str, Any], credential_id: str) -> Any:
    body = {"provider": "AWS", "currency": "USD", "credential_id": credential_id, "aws": export}
    return call(platform, "POST", "/provider-configs", key, json=body)


def test_an_iam_role_trusting_the_platform_identity_lists_the_export(
    platform: Platform, clouds: CloudStandIns
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    trust = identity(platform, key)
    export = aws_export(clouds)
    role_arn = trusting_role(clouds, trust, export["bucket"])
    credential = role_credential(platform, key, role_arn, trust["external_id"])
    assert credential.status_code == 201, credential.get_json()
    credential_id = credential.get_json()["credential_id"]

    created = aws_config(platform, key, export, credential_id)

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["aws"] == export
    assert created.get_json()["azure"] is None
    [row] = config_rows(platform, tenant["tenant_id"])
    assert json.loads(row["settings_json"]) == export
    # What a reader does next: the same factory, the stored credential, the listing.
    access = aws_access(
        platform.deps,
        tenant["tenant_id"],
        "IAM_ROLE",
        decrypt_credential(platform.deps, tenant["tenant_id"], credential_id),
        AwsExportSettings(**export),
    )
    keys = [o.key for o in access.list_export()]
    assert keys == sorted(keys)
    assert len(keys) == 4
    assert all(k.startswith("exports/focus12/") for k in keys)
    assert [o.key for o in access.list_export("data/BILLING_PERIOD=2026-02/")] == [
        "exports/focus12/data/BILLING_PERIOD=2026-02/focus12-00001.snappy.parquet"
    ]


def test_a_role_trusting_another_tenants_audience_cannot_be_assumed(
    platform: Platform, clouds: CloudStandIns
) -> None:
    victim = platform.onboarded()
    attacker = platform.onboarded()
    export = aws_export(clouds)
    # The victim's role: the attacker names it, with its own external id.
    role_arn = trusting_role(clouds, identity(platform, victim["api_key"]), export["bucket"])
    attacker_trust = identity(platform, attacker["api_key"])
    credential = role_credential(
        platform, attacker["api_key"], role_arn, attacker_trust["external_id"]
    )
    assert credential.status_code == 201

    refused = aws_config(
        platform, attacker["api_key"], export, credential.get_json()["credential_id"]
    )

    assert refused.status_code == 422
    body = refused.get_json()
    assert (body["field"], body["reason"]) == ("credential_id", "role_not_assumable")
    assert config_rows(platform, attacker["tenant_id"]) == []


def test_the_external_id_must_be_the_tenants_own(platform: Platform, clouds: CloudStandIns) -> None:
    tenant = platform.onboarded()
    other = platform.onboarded()
    other_id = identity(platform, other["api_key"])["external_id"]

    refused = role_credential(
        platform, tenant["api_key"], f"arn:aws:iam::{ACCOUNT_ID}:role/any", other_id
    )

    assert refused.status_code == 422
    assert refused.get_json()["field"] == "credentials.external_id"


@pytest.mark.parametrize(
    ("problem", "field", "reason"),
    [
        ("missing_role", "credential_id", "role_not_assumable"),
        ("wrong_subject", "credential_id", "role_not_assumable"),
        ("no_bucket_permission", "credential_id", "access_denied"),
    ],
)
def test_a_role_that_does_not_grant_access_is_422_saying_why(
    platform: Platform, clouds: CloudStandIns, problem: str, field: str, reason: str
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    trust = identity(platform, key)
    export = aws_export(clouds)
    if problem == "missing_role":
        role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/nobody-made-this"
    elif problem == "wrong_subject":
        wrong = json.loads(json.dumps(trust))
        wrong["aws"]["conditions"]["accounts.google.com:sub"] = "999999999999999999999"
        role_arn = trusting_role(clouds, wrong, export["bucket"])
    else:
        role_arn = trusting_role(clouds, trust, "some-other-bucket")
    credential_id = role_credential(platform, key, role_arn, trust["external_id"]).get_json()[
        "credential_id"
    ]

    refused = aws_config(platform, key, export, credential_id)

    assert refused.status_code == 422, refused.get_json()
    assert (refused.get_json()["field"], refused.get_json()["reason"]) == (field, reason)
    assert config_rows(platform, tenant["tenant_id"]) == []


def access_key_credential(platform: Platform, key: str, keys: dict[str, str]) -> str:
    response = call(
        platform,
        "POST",
        "/",
        key,
        json={
            "provider": "AWS",
            "credential_type": "ACCESS_KEY",
            "credential_name": "legacy key",
            "credentials": keys,
        },
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["credential_id"])


def iam_user_keys(clouds: CloudStandIns, policy: str | None) -> dict[str, str]:
    return reader_user_keys(clouds.moto.admin_client("iam"), policy)


def test_access_keys_are_the_fallback_and_are_checked_the_same_way(
    platform: Platform, clouds: CloudStandIns
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    export = aws_export(clouds)
    broad = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
    )
    good = access_key_credential(
        platform, key, iam_user_keys(clouds, reader_policy(export["bucket"]))
    )
    powerless = access_key_credential(platform, key, iam_user_keys(clouds, None))
    unknown = access_key_credential(
        platform,
        key,
        {"access_key_id": "AKIA" + "Z" * 16, "secret_access_key": "s" * 40},
    )
    lister = access_key_credential(platform, key, iam_user_keys(clouds, broad))

    answers = {
        "powerless": aws_config(platform, key, export, powerless),
        "unknown": aws_config(platform, key, export, unknown),
        "no bucket": aws_config(
            platform, key, {**export, "bucket": f"gone-{uuid.uuid4().hex[:10]}"}, lister
        ),
    }
    created = aws_config(platform, key, export, good)

    assert {name: a.get_json()["reason"] for name, a in answers.items()} == {
        "powerless": "access_denied",
        "unknown": "credentials_rejected",
        "no bucket": "no_such_bucket",
    }
    assert answers["no bucket"].get_json()["field"] == "aws.bucket"
    assert all(a.status_code == 422 for a in answers.values())
    assert created.status_code == 201, created.get_json()


def test_an_unreachable_aws_is_503_and_writes_nothing(
    platform: Platform, clouds: CloudStandIns
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    export = aws_export(clouds)
    good = access_key_credential(
        platform, key, iam_user_keys(clouds, reader_policy(export["bucket"]))
    )
    closed = f"http://127.0.0.1:{free_port()}"
    platform.deps.settings = platform.deps.settings.model_copy(
        update={"aws_s3_endpoint_url": closed, "cloud_access_timeout_seconds": 2.0}
    )

    answer = aws_config(platform, key, export, good)

    assert answer.status_code == 503
    assert "Retry-After" in answer.headers
    assert config_rows(platform, tenant["tenant_id"]) == []


def test_a_put_that_names_a_credential_is_checked_again(
    platform: Platform, clouds: CloudStandIns
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    export = aws_export(clouds)
    config = call(
        platform,
        "POST",
        "/provider-configs",
        key,
        json={"provider": "AWS", "currency": "USD", "aws": export},
    )
    assert config.status_code == 201, config.get_json()
    powerless = access_key_credential(platform, key, iam_user_keys(clouds, None))

    refused = call(
        platform,
        "PUT",
        f"/provider-configs/{config.get_json()['config_id']}",
        key,
        json={"currency": "USD", "aws": export, "credential_id": powerless},
    )

    assert refused.status_code == 422
    [row] = config_rows(platform, tenant["tenant_id"])
    assert row["credential_id"] is None


# ----------------------------------------------------------------- Azure


def azure_export(clouds: CloudStandIns) -> dict[str, Any]:
    container = f"exports-{uuid.uuid4().hex[:10]}"
    client: Any = clouds.azurite.admin_container(ACCOUNT, container)
    client.create_container()
    for day in ("20260101-20260131", "20260201-20260228"):
        client.upload_blob(f"focus/acme-focus/{day}/run-1/part_0_0001.csv.gz", b"x")
    client.upload_blob("elsewhere/other.csv", b"x")
    return {
        "storage_account": ACCOUNT,
        "container": container,
        "directory": "focus",
        "export_name": "acme-focus",
        "dataset_version": "1.0r2",
    }


def sas_for(clouds: CloudStandIns, container: str, **permissions: bool) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return str(
        generate_container_sas(
            ACCOUNT,
            container,
            account_key=clouds.azurite.accounts[ACCOUNT],
            permission=ContainerSasPermissions(**permissions),
            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2),
        )
    )


def azure_credential(platform: Platform, key: str, kind: str, secret: dict[str, str]) -> str:
    response = call(
        platform,
        "POST",
        "/",
        key,
        json={
            "provider": "AZURE",
            "credential_type": kind,
            "credential_name": f"azure {kind.lower()}",
            "credentials": secret,
        },
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["credential_id"])


def azure_config(platform: Platform, key: str, export: dict[str, Any], credential_id: str) -> Any:
    body = {"provider": "AZURE", "currency": "EUR", "credential_id": credential_id, "azure": export}
    return call(platform, "POST", "/provider-configs", key, json=body)


def entra_app(
    clouds: CloudStandIns, trust: dict[str, Any], secret: str | None = None
) -> dict[str, str]:
    """The customer's Entra app with a federated credential trusting `trust` (and a secret)."""
    ids = {"tenant_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4())}
    register_app(
        clouds.azurite.data_dir / "entra-apps.json",
        ids["tenant_id"],
        ids["client_id"],
        client_secret=secret,
        federated=[
            {
                "issuer": trust["azure"]["issuer"],
                "subject": trust["azure"]["subject"],
                "audiences": [trust["azure"]["audience"]],
            }
        ],
    )
    return ids


def test_a_federated_credential_trusting_the_platform_identity_lists_the_export(
    platform: Platform, clouds: CloudStandIns
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    export = azure_export(clouds)
    credential_id = azure_credential(
        platform, key, "FEDERATED_CREDENTIAL", entra_app(clouds, identity(platform, key))
    )

    created = azure_config(platform, key, export, credential_id)

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["azure"] == export
    access = azure_access(
        platform.deps,
        tenant["tenant_id"],
        "FEDERATED_CREDENTIAL",
        decrypt_credential(platform.deps, tenant["tenant_id"], credential_id),
        AzureExportSettings(**export),
    )
    names = [b.name for b in access.list_export()]
    assert names == [
        "focus/acme-focus/20260101-20260131/run-1/part_0_0001.csv.gz",
        "focus/acme-focus/20260201-20260228/run-1/part_0_0001.csv.gz",
    ]


def test_an_entra_app_trusting_another_tenants_audience_refuses_the_platform(
    platform: Platform, clouds: CloudStandIns
) -> None:
    victim = platform.onboarded()
    attacker = platform.onboarded()
    export = azure_export(clouds)
    victims_app = entra_app(clouds, identity(platform, victim["api_key"]))
    credential_id = azure_credential(
        platform, attacker["api_key"], "FEDERATED_CREDENTIAL", victims_app
    )

    refused = azure_config(platform, attacker["api_key"], export, credential_id)

    assert refused.status_code == 422
    body = refused.get_json()
    assert (body["field"], body["reason"]) == ("credential_id", "identity_rejected")
    assert "AADSTS70021" in body["detail"]
    assert config_rows(platform, attacker["tenant_id"]) == []


def test_sas_tokens_and_client_secrets_are_the_fallbacks(
    platform: Platform, clouds: CloudStandIns
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    export = azure_export(clouds)
    good_sas = sas_for(clouds, export["container"], read=True, list=True)
    forged_sas = good_sas.replace("sig=", "sig=AAAA")
    secret = "s3cret-" + uuid.uuid4().hex
    app = entra_app(clouds, identity(platform, key), secret=secret)

    answers = {
        "sas": azure_config(
            platform,
            key,
            export,
            azure_credential(platform, key, "SAS_TOKEN", {"sas_token": good_sas}),
        ),
    }
    call(platform, "DELETE", f"/provider-configs/{answers['sas'].get_json()['config_id']}", key)
    answers["forged sas"] = azure_config(
        platform,
        key,
        export,
        azure_credential(platform, key, "SAS_TOKEN", {"sas_token": forged_sas}),
    )
    answers["wrong secret"] = azure_config(
        platform,
        key,
        export,
        azure_credential(platform, key, "CLIENT_SECRET", {**app, "client_secret": "x" + secret}),
    )
    answers["secret"] = azure_config(
        platform,
        key,
        export,
        azure_credential(platform, key, "CLIENT_SECRET", {**app, "client_secret": secret}),
    )

    assert {k: a.status_code for k, a in answers.items()} == {
        "sas": 201,
        "forged sas": 422,
        "wrong secret": 422,
        "secret": 201,
    }
    assert answers["forged sas"].get_json()["reason"] == "sas_rejected"
    assert "AADSTS7000215" in answers["wrong secret"].get_json()["detail"]
    for answer in answers.values():
        assert secret not in json.dumps(answer.get_json())
        assert good_sas not in json.dumps(answer.get_json())


def test_a_missing_container_or_storage_account_is_named(
    platform: Platform, clouds: CloudStandIns
) -> None:
    tenant = platform.onboarded()
    key = tenant["api_key"]
    export = azure_export(clouds)
    credential_id = azure_credential(
        platform, key, "FEDERATED_CREDENTIAL", entra_app(clouds, identity(platform, key))
    )

    no_container = azure_config(platform, key, {**export, "container": "never-made"}, credential_id)
    no_account = azure_config(
        platform, key, {**export, "storage_account": "cvgnosuchaccount"}, credential_id
    )

    assert (no_container.status_code, no_container.get_json()["field"]) == (422, "azure.container")
    assert (no_account.status_code, no_account.get_json()["field"]) == (
        422,
        "azure.storage_account",
    )
    assert config_rows(platform, tenant["tenant_id"]) == []

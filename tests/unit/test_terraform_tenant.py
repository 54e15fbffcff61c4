"""The customer-side Terraform (terraform/tenant/aws, azure), read with python-hcl2, offline.

The property that matters: the role or federated credential trusts the
platform's Google runner identity for the tenant's own audience, and nothing
else, and it can only read the export.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

TENANT_DIR = Path(__file__).resolve().parents[2] / "terraform" / "tenant"
_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)


@functools.cache
def tenant_tf(cloud: str) -> dict[str, Any]:
    """resource/data blocks by type and name, variables and outputs of terraform/tenant/<cloud>."""
    merged: dict[str, Any] = {
        "resource": {},
        "data": {},
        "variable": {},
        "output": {},
        "terraform": [],
    }
    for path in sorted((TENANT_DIR / cloud).glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            parsed = dict(hcl2.load(handle, serialization_options=_OPTIONS))
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, by_name in block.items():
                    merged[kind].setdefault(rtype, {}).update(by_name)
        for kind in ("variable", "output"):
            for block in parsed.get(kind, []):
                merged[kind].update(block)
        merged["terraform"].extend(parsed.get("terraform", []))
    return merged


def blocks(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = body.get(name, [])
    return list(value) if isinstance(value, list) else [value]


def test_the_aws_role_trusts_only_the_platform_runner_for_this_tenants_audience() -> None:
    trust = tenant_tf("aws")["data"]["aws_iam_policy_document"]["trust"]
    role = tenant_tf("aws")["resource"]["aws_iam_role"]["reader"]

    [statement] = blocks(trust, "statement")
    assert statement.get("effect", "Allow") == "Allow"
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    [principal] = blocks(statement, "principals")
    assert principal == {"type": "Federated", "identifiers": ["accounts.google.com"]}
    conditions = {c["variable"]: (c["test"], c["values"]) for c in blocks(statement, "condition")}
    assert conditions == {
        "accounts.google.com:aud": ("StringEquals", ["${var.platform_subject}"]),
        "accounts.google.com:sub": ("StringEquals", ["${var.platform_subject}"]),
        "accounts.google.com:oaud": ("StringEquals", ["${var.platform_audience}"]),
    }
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.trust.json}"


def test_the_aws_role_can_only_list_and_read_the_exports_prefix() -> None:
    tf = tenant_tf("aws")
    policy = tf["data"]["aws_iam_policy_document"]["read_export"]
    attached = tf["resource"]["aws_iam_role_policy"]

    statements = blocks(policy, "statement")
    assert all(s.get("effect", "Allow") == "Allow" for s in statements)
    actions = sorted(a for s in statements for a in s["actions"])
    assert actions == ["s3:GetObject", "s3:ListBucket"]
    listing = next(s for s in statements if s["actions"] == ["s3:ListBucket"])
    [prefix] = blocks(listing, "condition")
    assert prefix["variable"] == "s3:prefix"
    assert all(v.startswith("${var.prefix}/${var.export_name}/") for v in prefix["values"])
    reading = next(s for s in statements if s["actions"] == ["s3:GetObject"])
    assert reading["resources"] == [
        "${aws_s3_bucket.exports.arn}/${var.prefix}/${var.export_name}/*"
    ]
    assert list(attached) == ["read_export"]
    assert "aws_iam_role_policy_attachment" not in tf["resource"]


def test_only_the_export_services_may_write_the_bucket_and_it_is_private() -> None:
    tf = tenant_tf("aws")
    bucket_policy = tf["data"]["aws_iam_policy_document"]["bucket"]
    access_block = tf["resource"]["aws_s3_bucket_public_access_block"]["exports"]

    writers = [s for s in blocks(bucket_policy, "statement") if s.get("effect", "Allow") == "Allow"]
    [writer] = writers
    [principal] = blocks(writer, "principals")
    assert principal["type"] == "Service"
    assert set(principal["identifiers"]) == {
        "billingreports.amazonaws.com",
        "bcm-data-exports.amazonaws.com",
    }
    assert {c["variable"] for c in blocks(writer, "condition")} == {
        "aws:SourceAccount",
        "aws:SourceArn",
    }
    assert all(access_block[k] is True for k in access_block if k != "bucket")


def test_the_aws_export_is_a_focus_or_cur2_data_export_in_the_bucket() -> None:
    tf = tenant_tf("aws")
    export = tf["resource"]["aws_bcmdataexports_export"]["this"]["export"]
    export = export[0] if isinstance(export, list) else export

    destination = blocks(blocks(export, "destination_configurations")[0], "s3_destination")[0]
    assert destination["s3_bucket"] == "${aws_s3_bucket.exports.bucket}"
    assert destination["s3_prefix"] == "${var.prefix}"
    assert "FOCUS_1_2_AWS" in tf["variable"]["export_type"]["default"]


def test_the_entra_app_trusts_only_the_platform_runner_for_this_tenants_audience() -> None:
    tf = tenant_tf("azure")
    credentials = tf["resource"]["azuread_application_federated_identity_credential"]

    [credential] = credentials.values()
    assert credential["issuer"] == "https://accounts.google.com"
    assert credential["subject"] == "${var.platform_subject}"
    assert credential["audiences"] == ["${var.platform_audience}"]
    assert "azuread_application_password" not in tf["resource"]
    assert "azuread_service_principal_password" not in tf["resource"]


def test_the_entra_app_may_only_read_the_export_container() -> None:
    assignments = tenant_tf("azure")["resource"]["azurerm_role_assignment"]

    readers = {
        name: a
        for name, a in assignments.items()
        if a["principal_id"] == "${azuread_service_principal.reader.object_id}"
    }
    assert list(readers) == ["platform_reads"]
    assert readers["platform_reads"]["role_definition_name"] == "Storage Blob Data Reader"
    assert readers["platform_reads"]["scope"] == "${local.container_scope}"


def test_the_azure_export_is_focus_cost_into_the_container() -> None:
    export = tenant_tf("azure")["resource"]["azapi_resource"]["focus_export"]
    properties = export["body"]["properties"]

    assert export["type"].startswith("Microsoft.CostManagement/exports@")
    assert properties["definition"]["type"] == "FocusCost"
    assert properties["definition"]["dataSet"]["configuration"]["dataVersion"] == (
        "${var.dataset_version}"
    )
    destination = properties["deliveryInfo"]["destination"]
    assert destination["container"] == "${azurerm_storage_container.exports.name}"


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_providers_are_pinned_and_every_variable_is_described_and_typed(cloud: str) -> None:
    tf = tenant_tf(cloud)

    [settings] = tf["terraform"]
    providers = settings["required_providers"]
    providers = providers[0] if isinstance(providers, list) else providers
    assert providers
    for spec in providers.values():
        assert spec["version"].startswith("~>")
    for name, variable in tf["variable"].items():
        assert variable.get("description"), name
        assert variable.get("type"), name
    assert (TENANT_DIR / cloud / "README.md").exists()

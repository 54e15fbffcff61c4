"""Module boundaries that keep cold starts short: each function loads only the SDKs it uses.

Each check imports in a fresh interpreter (a subprocess), so modules loaded by
other tests in this process can't hide or fake an import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared.platform.settings import REPO_ROOT

STRIPE = "stripe"
TINK = "tink"
KMS = "google.cloud.kms_v1"
SECRET_MANAGER = "google.cloud.secretmanager"
BIGQUERY = "google.cloud.bigquery"
SQLGLOT = "sqlglot"


def loaded_after(statement: str, watched: list[str]) -> list[str]:
    """Which of `watched` (modules or packages) are in sys.modules after `statement`."""
    script = (
        "import json, sys\n"
        f"{statement}\n"
        f"watched = {watched!r}\n"
        "print(json.dumps([w for w in watched if w in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


ALL_HEAVY = [STRIPE, TINK, KMS, SECRET_MANAGER, BIGQUERY, SQLGLOT]


def test_importing_main_imports_no_function_code_and_no_sdk() -> None:
    assert loaded_after("import main", [*ALL_HEAVY, "functions.quota", "flask"]) == []


def test_resolving_one_entry_point_imports_only_that_function() -> None:
    others = [f"functions.{name}" for name in ("admin", "onboard", "credentials", "stripe_webhook")]

    loaded = loaded_after("import main; main.quota", [*others, "functions.quota"])

    assert loaded == ["functions.quota"]


@pytest.mark.parametrize("function", ["quota", "admin", "onboard", "pipelines", "trigger"])
def test_functions_without_secrets_to_seal_load_no_stripe_tink_or_kms(function: str) -> None:
    assert loaded_after(f"import functions.{function}", [STRIPE, TINK, KMS, SECRET_MANAGER]) == []


def test_credentials_loads_tink_but_not_stripe_or_the_kms_client() -> None:
    # Tink seals credentials; the KMS client is built only with KMS_KEY_RING set.
    loaded = loaded_after("import functions.credentials", [STRIPE, TINK, KMS, SECRET_MANAGER])

    assert loaded == [TINK]


def test_stripe_webhook_loads_stripe_and_tink_but_not_the_kms_client() -> None:
    # Stripe verifies signatures; Tink seals the key reveal of a checkout.
    loaded = loaded_after("import functions.stripe_webhook", [STRIPE, TINK, KMS, SECRET_MANAGER])

    assert loaded == [STRIPE, TINK]


@pytest.mark.parametrize("module", ["shared.http", "shared.deps"])
def test_http_plumbing_loads_no_warehouse_and_no_sdk(module: str) -> None:
    # A preflight, a 404 or a 401 must not pay for the BigQuery client.
    assert loaded_after(f"import {module}", ALL_HEAVY) == []


FUNCTIONS = ["quota", "admin", "onboard", "credentials", "pipelines", "trigger", "stripe_webhook"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_function_loads_the_bigquery_client_until_its_first_query(function: str) -> None:
    # shared.platform.warehouse imports the client library on first use, so a
    # preflight or a refused key never pays for it.
    assert loaded_after(f"import functions.{function}", [BIGQUERY]) == []


@pytest.mark.parametrize(
    "module",
    [
        "shared.platform.warehouse",
        "shared.platform.schemas",
        "shared.platform.bootstrap",
        "shared.tenancy.tenant_dataset",
        "shared.tenancy.api_keys",
        "shared.tenancy.profiles",
        "shared.tenancy.quota",
        "shared.scheduling.trigger",
        "shared.vault.credentials",
    ],
)
def test_domain_modules_and_the_adapter_module_import_no_bigquery(module: str) -> None:
    assert loaded_after(f"import {module}", [BIGQUERY]) == []


def test_the_first_query_loads_the_bigquery_client() -> None:
    # The other side of the laziness: building a job's configuration does load it.
    statement = (
        "from shared.platform.warehouse import query_config\n"
        "query_config({'t': 'x'}, component='boundary')"
    )

    assert loaded_after(statement, [BIGQUERY]) == [BIGQUERY]

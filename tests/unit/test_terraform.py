"""The Terraform configuration, read with python-hcl2: the properties issue 12 asks for, offline."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from shared.platform.secrets import MAIL_SECRETS, PLATFORM_SECRETS
from shared.platform.settings import Settings
from shared.vault import crypto as crypto_adapter

REPO_ROOT = Path(__file__).resolve().parents[2]
TF_DIR = REPO_ROOT / "terraform"
ENVIRONMENTS = ("dev", "prod")

# Settings the local stack and tests use; production must never set them
# (and every LOCAL_* setting, see _is_local_only).
LOCAL_ONLY_SETTINGS = {
    "BIGQUERY_EMULATOR_HOST",
    "SCHEMAS_DIR",
    "SCHEDULER_TICK_SECONDS",
    "PORT",
    # moto, Azurite and their TLS certificate: production talks to AWS's and Azure's hosts.
    "AWS_S3_ENDPOINT_URL",
    "AWS_STS_ENDPOINT_URL",
    "CLOUD_CA_BUNDLE",
    # No GoogleSQL analyzer is deployed: the function keeps the sqlglot checks
    # (docs/decisions.md, "SQL analysis").
    "SQL_ANALYZER_ADDRESS",
    # Webhooks to localhost and a local receiver's CA: the local stack and tests only.
    "WEBHOOK_CA_BUNDLE",
    "WEBHOOK_LOCALHOST_ALLOWED",
}
# Values Terraform only knows at apply (resource attributes): stand-ins of the right shape.
APPLY_TIME_STAND_INS = {
    "KMS_KEY_RING": "projects/convergence-prod/locations/us/keyRings/conv-prod-tenant-keys",
    "SCHEDULER_SA": "conv-prod-scheduler@convergence-prod.iam.gserviceaccount.com",
    "TASKS_INVOKER_SA": "conv-prod-tasks@convergence-prod.iam.gserviceaccount.com",
    "TRIGGER_AUDIENCE": "https://us-central1-convergence-prod.cloudfunctions.net/conv-prod-trigger",
    "RUNNER_JOB": "conv-prod-pipeline-runner",
    "TASKS_QUEUE": "conv-prod-pipeline-runs",
    "CLOUD_TOKEN_AUDIENCE": "https://us-central1-convergence-prod.cloudfunctions.net/conv-prod-credentials",
    "RUNNER_SERVICE_ACCOUNT": "conv-prod-runner@convergence-prod.iam.gserviceaccount.com",
    "RUNNER_IDENTITY_SUBJECT": "112233445566778899001",
}
# Platform secrets each process reads, from the code paths (docs/decisions.md, Terraform):
# X-Admin-Key checks read ADMIN_API_KEY; API-key checks and issuing read API_KEY_PEPPER;
# Stripe signature checks read STRIPE_WEBHOOK_SECRET.
SECRETS_READ_BY = {
    "admin": {"ADMIN_API_KEY", "API_KEY_PEPPER"},
    "costs": {"API_KEY_PEPPER"},
    "credentials": {"API_KEY_PEPPER"},
    "onboard": {"ADMIN_API_KEY", "API_KEY_PEPPER"},
    "pipelines": {"API_KEY_PEPPER"},
    "quota": {"API_KEY_PEPPER"},
    "stripe_webhook": {"API_KEY_PEPPER", "STRIPE_WEBHOOK_SECRET"},
    # The trigger's POST /notifications is the only sender of email.
    "trigger": {"ADMIN_API_KEY", "SMTP_HOST", "SMTP_USERNAME", "SMTP_PASSWORD"},
    "notifications": {"API_KEY_PEPPER"},
    "runner": set(),
    "members": {"API_KEY_PEPPER"},
    "audit": {"API_KEY_PEPPER"},
}
# Tables whose loss loses money or keys.
MONEY_OR_KEY_TABLES = {
    "tenant_api_keys",
    "tenant_cloud_credentials",
    "tenant_key_reveals",
    "tenant_subscriptions",
    "tenant_usage_quotas",
    "tenant_webhook_events",
    "tenant_profiles",
    "tenant_audit_log",
}
# The Cloud KMS permission each KMS client call of the crypto adapter needs.
KMS_PERMISSION_OF_CALL = {
    "create_crypto_key": "cloudkms.cryptoKeys.create",
    "get_crypto_key": "cloudkms.cryptoKeys.get",
    "update_crypto_key": "cloudkms.cryptoKeys.update",
    "update_crypto_key_primary_version": "cloudkms.cryptoKeys.update",
    "create_crypto_key_version": "cloudkms.cryptoKeyVersions.create",
    "list_crypto_key_versions": "cloudkms.cryptoKeyVersions.list",
    "destroy_crypto_key_version": "cloudkms.cryptoKeyVersions.destroy",
    # Granted by the predefined encrypter and decrypter roles, checked separately.
    "encrypt": "cloudkms.cryptoKeyVersions.useToEncrypt",
    "decrypt": "cloudkms.cryptoKeyVersions.useToDecrypt",
}
PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
# Broad admin roles no runtime service account needs either.
ADMIN_ROLES = {
    "roles/bigquery.admin",
    "roles/cloudkms.admin",
    "roles/cloudtasks.admin",
    "roles/iam.serviceAccountAdmin",
    "roles/resourcemanager.projectIamAdmin",
    "roles/run.admin",
    "roles/secretmanager.admin",
}
PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}
_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)


def _parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return dict(hcl2.load(handle, serialization_options=_OPTIONS))


@functools.cache
def tf() -> dict[str, Any]:
    """Every top-level block of terraform/*.tf, merged: locals, resources by type and name, ..."""
    merged: dict[str, Any] = {
        "locals": {},
        "resource": {},
        "data": {},
        "variable": {},
        "output": {},
        "terraform": [],
        "variable_order": [],
        "output_order": [],
    }
    for path in sorted(TF_DIR.glob("*.tf")):
        parsed = _parse(path)
        for block in parsed.get("locals", []):
            for name, value in block.items():
                assert name not in merged["locals"], f"local.{name} is defined twice"
                merged["locals"][name] = value
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, by_name in block.items():
                    merged[kind].setdefault(rtype, {}).update(by_name)
        for kind in ("variable", "output"):
            for block in parsed.get(kind, []):
                for name, body in block.items():
                    merged[kind][name] = body
                    merged[f"{kind}_order"].append((path.name, name))
        merged["terraform"].extend(parsed.get("terraform", []))
    return merged


def local(name: str) -> Any:
    return tf()["locals"][name]


def resource(rtype: str, name: str) -> dict[str, Any]:
    return dict(tf()["resource"][rtype][name])


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested block that appears once (hcl2 gives blocks as lists)."""
    value = body[name]
    if isinstance(value, list):
        assert len(value) == 1, f"{name} appears {len(value)} times"
        value = value[0]
    return dict(value)


def dynamic(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Every `dynamic "<name>"` block of a body."""
    return [d[name] for d in body.get("dynamic", []) if name in d]


def bindings(scope: str | None = None) -> list[dict[str, str]]:
    rows = [dict(b) for b in local("iam_bindings")]
    return [b for b in rows if scope is None or b["scope"] == scope]


def custom_role_ref(name: str) -> str:
    return f"${{local.custom_role_ids.{name}}}"


def sa_email(name: str) -> str:
    return f'${{google_service_account.sa["{name}"].email}}'


def tfvars(env: str) -> dict[str, Any]:
    return _parse(TF_DIR / "environments" / f"{env}.tfvars")


# ---------------------------------------------------------------- BigQuery


def test_every_central_schema_file_becomes_a_table_with_its_partitioning_and_clustering() -> None:
    assert local("central_schema_dir") == "${path.module}/../schemas/central"
    assert (TF_DIR / ".." / "schemas" / "central").resolve() == REPO_ROOT / "schemas" / "central"
    # The table list is the directory listing, so a new schema file is a new table.
    docs = local("central_schema_docs").replace(" ", "")
    assert 'fileset(local.central_schema_dir,"*.json")' in docs
    assert "jsondecode(file(" in docs
    assert local("central_tables").replace(" ", "") == (
        "${{fordocinlocal.central_schema_docs:doc.table=>doc}}"
    )
    tables = tf()["resource"]["google_bigquery_table"]
    assert list(tables) == ["central"], "central tables come from the schema files only"
    table = resource("google_bigquery_table", "central")
    assert table["for_each"] == "${local.central_tables}"
    assert table["table_id"] == "${each.key}"
    assert "each.value.schema" in table["schema"]
    [partitioning] = dynamic(table, "time_partitioning")
    assert partitioning["for_each"].replace(" ", "") == (
        "${can(each.value.timePartitioning)?[each.value.timePartitioning]:[]}"
    )
    content = block(partitioning, "content")
    assert content["type"] == "${time_partitioning.value.type}"
    assert content["field"] == "${try(time_partitioning.value.field, null)}"
    assert table["clustering"] == "${try(each.value.clustering.fields, null)}"
    # And every schema file carries what those expressions read.
    for path in sorted((REPO_ROOT / "schemas" / "central").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["table"] == path.stem, path.name
        assert doc["timePartitioning"]["type"] in ("DAY", "HOUR", "MONTH", "YEAR"), path.name
        assert doc["timePartitioning"]["field"] in {f["name"] for f in doc["schema"]}, path.name
        assert set(doc["clustering"]["fields"]) <= {f["name"] for f in doc["schema"]}, path.name


def test_tables_that_hold_money_or_keys_are_protected_from_deletion() -> None:
    protected = set(local("protected_tables"))
    assert protected >= MONEY_OR_KEY_TABLES
    schema_tables = {p.stem for p in (REPO_ROOT / "schemas" / "central").glob("*.json")}
    assert protected <= schema_tables, "a protected table without a schema file"
    table = resource("google_bigquery_table", "central")
    assert table["deletion_protection"] == "${contains(local.protected_tables, each.key)}"


def test_central_dataset_access_is_granted_entry_by_entry_so_authorized_views_survive() -> None:
    dataset = resource("google_bigquery_dataset", "central")
    assert "access" not in dataset
    assert dataset["dataset_id"] == "${var.central_dataset}"
    assert resource("google_bigquery_dataset_access", "central")["user_by_email"] == (
        "${google_service_account.sa[each.value.sa].email}"
    )
    assert "google_bigquery_dataset_iam_member" not in tf()["resource"]
    assert "google_bigquery_dataset_iam_binding" not in tf()["resource"]
    assert "google_bigquery_dataset_iam_policy" not in tf()["resource"]


# ---------------------------------------------------------------- KMS


def test_the_tenant_key_ring_is_what_the_code_uses_and_platform_keys_rotate() -> None:
    assert "tenant_keys" in tf()["resource"]["google_kms_key_ring"]
    assert local("runtime_env")["KMS_KEY_RING"] == "${google_kms_key_ring.tenant_keys.id}"
    keys = tf()["resource"]["google_kms_crypto_key"]
    assert keys, "no KMS key with a rotation period"
    for name, key in keys.items():
        # Tenant keys are created and shredded by the code, never by Terraform.
        assert "tenant_keys" not in key["key_ring"], name
        seconds = int(re.fullmatch(r"(\d+)s", key["rotation_period"]).group(1))  # type: ignore[union-attr]
        assert 0 < seconds <= 90 * 86400, name
        assert block(key, "lifecycle")["prevent_destroy"] is True, name


def _kms_calls() -> set[str]:
    source = Path(str(crypto_adapter.__file__)).read_text(encoding="utf-8")
    return set(re.findall(r"self\.client\.(\w+)\(", source))


def test_kms_custom_roles_hold_exactly_the_permissions_of_the_calls_the_code_makes() -> None:
    calls = _kms_calls()
    unknown = calls - set(KMS_PERMISSION_OF_CALL)
    assert not unknown, f"map these KMS calls to their permission: {unknown}"
    needed = {KMS_PERMISSION_OF_CALL[c] for c in calls} - {
        "cloudkms.cryptoKeyVersions.useToEncrypt",
        "cloudkms.cryptoKeyVersions.useToDecrypt",
    }
    kms_roles = {
        name: set(role["permissions"])
        for name, role in local("custom_roles").items()
        if any(p.startswith("cloudkms.") for p in role["permissions"])
    }
    granted = set().union(*kms_roles.values())
    assert granted == needed
    # Granted on the tenant key ring only, never on the project.
    refs = {custom_role_ref(name) for name in kms_roles}
    for b in bindings():
        if b["role"] in refs:
            assert b["scope"] == "tenant_key_ring", b


def test_only_the_code_that_encrypts_or_decrypts_may_do_so() -> None:
    ring = bindings("tenant_key_ring")
    encrypters = {b["sa"] for b in ring if b["role"] == "roles/cloudkms.cryptoKeyEncrypter"}
    decrypters = {b["sa"] for b in ring if b["role"] == "roles/cloudkms.cryptoKeyDecrypter"}
    # credentials store ciphertexts; the webhook keeps a key for its one reveal.
    assert encrypters == {"credentials", "stripe_webhook"}
    # the runner opens credentials; admin opens the key reveal.
    assert decrypters == {"runner", "admin"}
    roles = {b["role"] for b in bindings()}
    assert "roles/cloudkms.cryptoKeyEncrypterDecrypter" not in roles
    assert "encrypt" in _kms_calls()
    assert "decrypt" in _kms_calls()


# ---------------------------------------------------------------- invokers


def test_no_public_invoker_on_trigger_admin_pipelines_or_credentials() -> None:
    functions = local("functions")
    for name in ("trigger", "admin", "pipelines", "credentials", "onboard", "quota"):
        assert not PUBLIC_MEMBERS & set(functions[name]["invokers"]), name
        assert name not in local("public_functions"), name
    assert local("public_functions") == ["stripe_webhook"]
    public = resource("google_cloud_run_service_iam_member", "public")
    assert public["for_each"] == "${toset(local.public_functions)}"
    assert public["member"] == "allUsers"
    # No other binding anywhere names a public principal.
    text = json.dumps({k: v for k, v in tf()["resource"].items()})
    assert text.count("allUsers") == 1
    assert "allAuthenticatedUsers" not in text


def test_frontend_invokers_refuse_public_principals() -> None:
    [validation] = tf()["variable"]["frontend_invokers"]["validation"]
    pattern = re.search(r'regex\("(.+?)", m\)', validation["condition"])
    assert pattern is not None
    regex = pattern.group(1).replace("\\\\", "\\")
    assert re.search(regex, "serviceAccount:gw@p.iam.gserviceaccount.com")
    for member in PUBLIC_MEMBERS:
        assert not re.search(regex, member), member
    for env in ENVIRONMENTS:
        assert not PUBLIC_MEMBERS & set(tfvars(env).get("frontend_invokers", [])), env


def test_the_trigger_answers_only_the_scheduler_and_admin_only_operators() -> None:
    functions = local("functions")
    assert functions["trigger"]["invokers"] == [
        'serviceAccount:${local.service_account_emails["scheduler"]}'
    ]
    assert functions["admin"]["invokers"] == ["${var.operator_group}"]
    assert functions["onboard"]["invokers"] == ["${var.operator_group}"]
    for name in ("credentials", "pipelines", "quota"):
        assert functions[name]["invokers"] == "${var.frontend_invokers}", name
    invoker = resource("google_cloud_run_service_iam_member", "invoker")
    assert invoker["for_each"] == "${local.function_invokers}"
    assert invoker["role"] == "roles/run.invoker"


# ---------------------------------------------------------------- scheduler and queue


def test_the_scheduler_calls_the_trigger_with_an_oidc_token_for_the_trigger_audience() -> None:
    job = resource("google_cloud_scheduler_job", "trigger")
    trigger_url = '${google_cloudfunctions2_function.function["trigger"].url}'
    target = block(job, "http_target")
    assert target["uri"] == trigger_url
    assert "oauth_token" not in target
    oidc = block(target, "oidc_token")
    assert oidc["audience"] == trigger_url
    assert oidc["service_account_email"] == sa_email("scheduler")
    assert job["schedule"] == "${var.trigger_cron}"
    assert block(job, "retry_config")
    # The trigger checks the same audience and caller, and the URL it computes is the real one.
    env = local("runtime_env")
    assert env["TRIGGER_AUDIENCE"] == '${local.function_urls["trigger"]}'
    assert env["SCHEDULER_SA"] == sa_email("scheduler")
    function = resource("google_cloudfunctions2_function", "function")
    postcondition = block(block(function, "lifecycle"), "postcondition")
    assert postcondition["condition"] == "${self.url == local.function_urls[each.key]}"


def test_a_scheduler_job_calls_the_outbox_sender_so_alerts_are_delivered() -> None:
    # Without it, alerts are recorded in production and never sent.
    job = resource("google_cloud_scheduler_job", "notifications")
    trigger_url = '${google_cloudfunctions2_function.function["trigger"].url}'
    target = block(job, "http_target")
    assert target["uri"] == trigger_url + "/notifications"
    assert target["http_method"] == "POST"
    oidc = block(target, "oidc_token")
    # The trigger checks one audience (TRIGGER_AUDIENCE, its URL) on every route.
    assert oidc["audience"] == trigger_url
    assert oidc["service_account_email"] == sa_email("scheduler")
    assert job["schedule"] == "${var.notify_cron}"
    assert block(job, "retry_config")
    from functions.trigger import routes

    adapter = routes.map.bind("trigger.local")
    assert routes.handlers[adapter.match("/notifications", method="POST")[0]].__name__ == (
        "send_notifications"
    )


@pytest.mark.parametrize("cron", ["* * * * *", "*/5 * * * *", "0,30 1-5 * * 1"])
def test_the_trigger_cron_validation_accepts_five_field_crons(cron: str) -> None:
    assert _cron_is_valid(cron)


@pytest.mark.parametrize("cron", ["* * * *", "* * * * * *", "every minute", "* * * * MON"])
def test_the_trigger_cron_validation_refuses_other_strings(cron: str) -> None:
    assert not _cron_is_valid(cron)


def _cron_is_valid(cron: str) -> bool:
    """The variable's condition, evaluated as Terraform would for these two clauses."""
    [validation] = tf()["variable"]["trigger_cron"]["validation"]
    condition = validation["condition"]
    assert 'length(split(" ", var.trigger_cron)) == 5' in condition
    field_regex = re.search(r'regex\("(.+?)", field\)', condition)
    assert field_regex is not None
    fields = cron.split(" ")
    return len(fields) == 5 and all(re.search(field_regex.group(1), f) for f in fields)


def test_the_queue_retries_and_dispatches_under_the_cloud_run_job_run_quota() -> None:
    queue = resource("google_cloud_tasks_queue", "runs")
    retry = block(queue, "retry_config")
    assert retry["max_attempts"] > 0
    assert {"min_backoff", "max_backoff", "max_doublings"} <= set(retry)
    rate = block(queue, "rate_limits")
    assert rate["max_dispatches_per_second"] == "${var.queue_max_dispatches_per_second}"
    variable = tf()["variable"]["queue_max_dispatches_per_second"]
    [validation] = variable["validation"]
    assert "var.queue_max_dispatches_per_second <= 3" in validation["condition"]
    assert 0 < variable["default"] <= 3
    for env in ENVIRONMENTS:
        assert 0 < tfvars(env).get("queue_max_dispatches_per_second", 1) <= 3, env
    assert local("runtime_env")["TASKS_QUEUE"] == "${local.queue_name}"
    assert queue["name"] == "${local.queue_name}"


def test_the_queue_in_terraform_matches_the_local_queue_the_code_runs() -> None:
    from shared.scheduling import dispatch

    queue = resource("google_cloud_tasks_queue", "runs")
    retry = block(queue, "retry_config")
    assert retry["max_attempts"] == dispatch.QUEUE_MAX_ATTEMPTS
    assert retry["min_backoff"] == f"{dispatch.QUEUE_MIN_BACKOFF_SECONDS}s"
    assert retry["max_backoff"] == f"{dispatch.QUEUE_MAX_BACKOFF_SECONDS}s"
    rate = block(queue, "rate_limits")
    assert rate["max_concurrent_dispatches"] == dispatch.QUEUE_MAX_CONCURRENT_DISPATCHES


# ---------------------------------------------------------------- functions, job, environment


def test_every_deployed_function_is_an_entry_point_of_main_and_every_one_is_deployed() -> None:
    import main

    deployed = set(local("functions"))
    assert deployed == set(main.FUNCTION_NAMES)
    for name in deployed:
        assert callable(getattr(main, name)), name
    function = resource("google_cloudfunctions2_function", "function")
    assert function["for_each"] == "${local.functions}"
    build = block(function, "build_config")
    assert build["entry_point"] == "${each.key}"
    assert build["runtime"] == "python312"
    source = block(block(build, "source"), "storage_source")
    assert source["object"] == "${google_storage_bucket_object.source.name}"


def test_the_source_archive_leaves_out_tests_terraform_and_local_state() -> None:
    archive = tf()["data"]["archive_file"]["source"]
    assert archive["source_dir"] == "${path.module}/.."
    assert archive["excludes"] == "${local.source_excludes}"
    excluded = set(local("source_excludes"))
    for pattern in ("tests/**", ".venv/**", ".local/**", "terraform/**", ".git/**"):
        assert pattern in excluded, pattern
    assert not {"main.py", "requirements.txt", "functions/**", "shared/**"} & excluded


def _setting_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if alias is None:
            continue
        # AliasChoices: the first choice is the canonical env name.
        names.add(alias if isinstance(alias, str) else str(alias.choices[0]))
    return names


def _is_local_only(name: str) -> bool:
    return name in LOCAL_ONLY_SETTINGS or name.startswith("LOCAL_")


def test_every_setting_the_code_reads_in_production_is_set_for_every_function_and_the_job() -> None:
    names = _setting_names()
    env = local("runtime_env")
    production = {name for name in names if not _is_local_only(name)}
    missing = sorted(production - set(env))
    assert not missing, f"settings the deployed code reads but Terraform does not set: {missing}"
    assert not [name for name in env if _is_local_only(name)]
    assert env["CONVERGENCE_ENV"] == "production"
    assert env["SECRETS_BACKEND"] == "env"
    function = resource("google_cloudfunctions2_function", "function")
    assert block(function, "service_config")["environment_variables"] == "${local.runtime_env}"
    container = block(
        block(block(resource("google_cloud_run_v2_job", "runner"), "template"), "template"),
        "containers",
    )
    assert {e["for_each"] for e in dynamic(container, "env")} >= {"${local.runtime_env}"}


def _deployed_env(env: str) -> dict[str, str]:
    """runtime_env as Terraform would render it for an environment (stand-ins at apply time)."""
    values = tfvars(env)
    declared = tf()["variable"]

    def var(name: str) -> Any:
        return values[name] if name in values else declared[name]["default"]

    rendered = {}
    for key, expr in local("runtime_env").items():
        plain = re.fullmatch(r"\$\{(?:tostring\()?var\.(\w+)\)?\}", str(expr))
        if key in APPLY_TIME_STAND_INS:
            rendered[key] = APPLY_TIME_STAND_INS[key]
        elif plain:
            value = var(plain.group(1))
            rendered[key] = str(value).lower() if isinstance(value, bool) else str(value)
        elif expr == '${join(",", var.frontend_origins)}':
            rendered[key] = ",".join(var("frontend_origins"))
        else:
            assert "${" not in str(expr), f"{key} = {expr}: teach _deployed_env to render it"
            rendered[key] = str(expr)
    return rendered


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_settings_each_environment_deploys_pass_the_codes_own_validation(env: str) -> None:
    class DeployedOnly(Settings):
        """The same validation, fed only what Terraform sets (not this process's env)."""

        @classmethod
        def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, **_: Any) -> Any:
            return (init_settings,)

    settings = DeployedOnly(**_deployed_env(env))
    assert settings.is_production
    assert settings.kms_key_ring == APPLY_TIME_STAND_INS["KMS_KEY_RING"]
    assert settings.secrets_backend == "env"


def test_every_platform_secret_is_mounted_exactly_where_the_code_reads_it() -> None:
    assert set(local("platform_secrets")) == set(PLATFORM_SECRETS) | set(MAIL_SECRETS)
    assert set().union(*SECRETS_READ_BY.values()) <= set(PLATFORM_SECRETS) | set(MAIL_SECRETS)
    functions = local("functions")
    for name, function in functions.items():
        assert set(function["secrets"]) == SECRETS_READ_BY[name], name
    assert set(local("job_secrets")) == SECRETS_READ_BY["runner"]
    service = block(resource("google_cloudfunctions2_function", "function"), "service_config")
    [mount] = dynamic(service, "secret_environment_variables")
    assert mount["for_each"] == "${toset(each.value.secrets)}"
    assert block(mount, "content")["key"] == "${secret_environment_variables.value}"
    container = block(
        block(block(resource("google_cloud_run_v2_job", "runner"), "template"), "template"),
        "containers",
    )
    assert "${toset(local.job_secrets)}" in {e["for_each"] for e in dynamic(container, "env")}
    # Each mounted secret is readable by that process's service account, and by no other.
    accessors = local("secret_accessors").replace(" ", "")
    assert "forname,finlocal.functions" in accessors and "forsinf.secrets" in accessors
    assert "forsinlocal.job_secrets" in accessors
    assert resource("google_secret_manager_secret_iam_member", "accessor")["for_each"] == (
        "${local.secret_accessors}"
    )


def test_no_secret_value_passes_through_terraform() -> None:
    assert "google_secret_manager_secret_version" not in tf()["resource"]
    assert "google_secret_manager_secret_version" not in tf()["data"]
    for env in ENVIRONMENTS:
        text = (TF_DIR / "environments" / f"{env}.tfvars").read_text(encoding="utf-8")
        for name in ("ADMIN_API_KEY", "API_KEY_PEPPER", "STRIPE_WEBHOOK_SECRET", "whsec_"):
            assert name not in text, (env, name)


def test_the_runner_job_runs_the_pipeline_runner_module_as_its_own_service_account() -> None:
    job = resource("google_cloud_run_v2_job", "runner")
    assert job["name"] == "${local.runner_job_name}"
    assert local("runtime_env")["RUNNER_JOB"] == "${local.runner_job_name}"
    task = block(block(job, "template"), "template")
    assert task["service_account"] == sa_email("runner")
    assert task["timeout"] == "${var.runner_task_timeout_seconds}s"
    assert task["max_retries"] == "${var.runner_max_retries}"
    container = block(task, "containers")
    assert container["image"] == "${var.runner_image}"
    # The task's container override sets args (--run-id ID), so the module is the command.
    assert container["command"] == ["python", "-m", "jobs.pipeline_runner"]
    assert container["args"] == []
    [executor] = bindings("runner_job")
    assert executor == {
        "sa": "tasks",
        "scope": "runner_job",
        "role": "roles/run.jobsExecutorWithOverrides",
        "why": executor["why"],
    }
    assert local("runtime_env")["TASKS_INVOKER_SA"] == sa_email("tasks")


def test_only_the_trigger_and_manual_runs_may_enqueue_and_act_as_the_task_invoker() -> None:
    assert {b["sa"] for b in bindings("queue")} == {"trigger", "pipelines"}
    assert {b["role"] for b in bindings("queue")} == {"roles/cloudtasks.enqueuer"}
    assert {b["sa"] for b in bindings("tasks_sa")} == {"trigger", "pipelines"}
    assert {b["role"] for b in bindings("tasks_sa")} == {"roles/iam.serviceAccountUser"}


# ---------------------------------------------------------------- IAM


def _every_role() -> list[str]:
    roles = [b["role"] for b in bindings()]
    for rtype, by_name in tf()["resource"].items():
        if rtype.endswith(("_iam_member", "_iam_binding")) or rtype.endswith("dataset_access"):
            roles.extend(str(body.get("role", "")) for body in by_name.values())
    return roles


def test_no_service_account_has_a_primitive_or_admin_role() -> None:
    roles = _every_role()
    assert roles
    assert not PRIMITIVE_ROLES & set(roles)
    assert not ADMIN_ROLES & set(roles)
    assert "google_project_iam_binding" not in tf()["resource"]
    assert "google_project_iam_policy" not in tf()["resource"]


def test_every_binding_names_the_code_path_that_needs_it() -> None:
    accounts = set(local("service_accounts"))
    scopes = {
        "project",
        "central_dataset",
        "tenant_key_ring",
        "queue",
        "tasks_sa",
        "runner_job",
        "runner_sa",
    }
    for b in bindings():
        assert b["sa"] in accounts, b
        assert b["scope"] in scopes, b
        assert len(b["why"]) > 10, b
    custom = {custom_role_ref(name) for name in local("custom_roles")}
    for b in bindings():
        if b["role"].startswith("${"):
            assert b["role"] in custom, b


def test_each_function_and_the_job_runs_as_its_own_service_account() -> None:
    service = block(resource("google_cloudfunctions2_function", "function"), "service_config")
    assert service["service_account_email"] == "${google_service_account.sa[each.key].email}"
    accounts = set(local("service_accounts"))
    assert set(local("functions")) <= accounts
    assert {"runner", "tasks", "scheduler"} <= accounts
    ids = local("service_account_ids")
    assert "${var.prefix}" in ids
    account = resource("google_service_account", "sa")
    assert account["account_id"] == "${local.service_account_ids[each.key]}"
    # Emails computed at plan time (for_each keys) follow the same ids.
    assert local("service_account_emails").replace(" ", "") == (
        "${{forname,idinlocal.service_account_ids:name=>"
        '"${id}@${var.project_id}.iam.gserviceaccount.com"}}'
    )


# ---------------------------------------------------------------- style and environments


def test_variables_have_a_description_and_a_type_and_constrained_ones_a_validation() -> None:
    for name, variable in tf()["variable"].items():
        assert variable.get("description"), name
        assert variable.get("type"), name
    for name in ("project_id", "region", "tenant_dataset_suffix", "trigger_cron", "prefix"):
        assert tf()["variable"][name].get("validation"), name


def test_variables_and_outputs_are_in_alphabetical_order() -> None:
    for kind in ("variable_order", "output_order"):
        names = [name for _, name in tf()[kind]]
        assert names == sorted(names), kind
        assert len({path for path, _ in tf()[kind]}) == 1, f"{kind} spread over files"
    for name, output in tf()["output"].items():
        assert output.get("description"), name


def test_the_state_backend_is_gcs_and_configured_at_init_not_in_code() -> None:
    [settings] = tf()["terraform"]
    [backend] = settings["backend"]
    assert backend == {"gcs": {}}
    providers = settings["required_providers"]
    google = providers["google"] if isinstance(providers, dict) else providers[0]["google"]
    assert google["version"].startswith("~>")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_sets_only_declared_variables_and_every_required_one(env: str) -> None:
    values = tfvars(env)
    declared = tf()["variable"]
    assert set(values) <= set(declared)
    required = {name for name, v in declared.items() if "default" not in v}
    assert required <= set(values)


def test_the_runner_image_is_slim_pinned_unprivileged_and_runtime_only() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    instructions = [
        line.strip()
        for line in dockerfile.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    [base] = [line for line in instructions if line.startswith("FROM ")]
    assert re.fullmatch(r"FROM python:3\.12\.\d+-slim-\w+(@sha256:[a-f0-9]{64})?", base)
    users = [line for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("USER root", "USER 0")
    # The functions' pins plus the runner's readers (pyarrow), never the local tools.
    assert "RUN pip install --no-cache-dir -r requirements-runner.txt" in instructions
    assert "requirements-local.txt" not in dockerfile
    runner_pins = (REPO_ROOT / "requirements-runner.txt").read_text(encoding="utf-8")
    assert "-r requirements.txt" in runner_pins.splitlines()
    copied = {
        name for line in instructions if line.startswith("COPY ") for name in line.split()[1:-1]
    }
    assert copied == {"requirements.txt", "requirements-runner.txt", "shared/", "jobs/", "schemas/"}
    entrypoint = next(line for line in instructions if line.startswith("ENTRYPOINT"))
    command = block(
        block(block(resource("google_cloud_run_v2_job", "runner"), "template"), "template"),
        "containers",
    )["command"]
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == command

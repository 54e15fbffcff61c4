# Service accounts (one per role), custom roles and every IAM binding, each with the code path that needs it.

locals {
  service_accounts = {
    admin          = "Runs the admin function."
    build          = "Builds the gen2 functions (Cloud Build)."
    costs          = "Runs the costs function."
    credentials    = "Runs the credentials function."
    notifications  = "Runs the notifications function."
    onboard        = "Runs the onboard function."
    pipelines      = "Runs the pipelines function."
    quota          = "Runs the quota function."
    audit          = "Runs the audit function."
    members        = "Runs the members function."
    runner         = "Runs the pipeline runner Cloud Run job; tenants grant it read on their billing exports."
    scheduler      = "Cloud Scheduler's identity: signs the OIDC token of the trigger tick."
    stripe_webhook = "Runs the stripe_webhook function."
    tasks          = "Cloud Tasks' identity: its OAuth token runs the runner job through the Cloud Run Admin API."
    trigger        = "Runs the trigger function."
  }
  # Service account ids are at most 30 characters: "stripe_webhook" is the one long name.
  service_account_ids = { for name, _ in local.service_accounts : name => "${var.prefix}-${replace(name == "stripe_webhook" ? "stripe" : name, "_", "-")}" }
  # Known at plan time, so bindings that name a service account can be for_each keys.
  service_account_emails = { for name, id in local.service_account_ids : name => "${id}@${var.project_id}.iam.gserviceaccount.com" }

  # Custom roles hold exactly the permissions the code's calls need (see docs/decisions.md).
  custom_roles = {
    # onboard, stripe_webhook (checkout): shared/tenant_dataset.py claim_dataset,
    # provision (tables and views), write_check (create, insert, select, drop a scratch table).
    tenant_dataset_provisioner = {
      title = "Convergence tenant dataset provisioner"
      permissions = [
        "bigquery.datasets.create",   # claim_dataset: create_dataset
        "bigquery.datasets.get",      # claim_dataset on Conflict: get_dataset
        "bigquery.tables.create",     # provision: tenant tables and log views; write_check
        "bigquery.tables.delete",     # write_check: delete_table of the scratch table
        "bigquery.tables.get",        # provision: existing tables
        "bigquery.tables.getData",    # write_check: SELECT the probe row back
        "bigquery.tables.list",       # Warehouse.existing_tables: list_tables
        "bigquery.tables.updateData", # write_check: INSERT the probe row
      ]
    }
    # admin (offboard, purge): shared/tenant_dataset.py delete_dataset(delete_contents=True).
    tenant_dataset_remover = {
      title = "Convergence tenant dataset remover"
      permissions = [
        "bigquery.datasets.delete", # delete_dataset
        "bigquery.datasets.get",    # delete_dataset: get_dataset first
        "bigquery.tables.delete",   # delete_contents=True deletes every table
      ]
    }
    # runner job: writes tenant data tables in tenant datasets, created at run time.
    tenant_data_writer = {
      title = "Convergence tenant data writer"
      permissions = [
        "bigquery.datasets.get",
        "bigquery.tables.create",
        "bigquery.tables.get",
        "bigquery.tables.getData",
        "bigquery.tables.list",
        "bigquery.tables.update",
        "bigquery.tables.updateData",
      ]
    }
    # Cloud KMS calls of shared/crypto.py GcpKmsCrypto, granted on the tenant key ring only.
    # onboard (ensure_tenant_key), stripe_webhook (checkout -> onboard), credentials
    # (encrypt -> ensure_tenant_key when the key is missing; _is_shredded on FailedPrecondition).
    tenant_key_creator = {
      title = "Convergence tenant key creator"
      permissions = [
        "cloudkms.cryptoKeys.create", # _create_key: create_crypto_key
        "cloudkms.cryptoKeys.get",    # _is_shredded: get_crypto_key
      ]
    }
    # admin: offboarding shreds (shred_tenant, _mark_shredded); rotate_tenant_key.
    tenant_key_manager = {
      title = "Convergence tenant key manager"
      permissions = [
        "cloudkms.cryptoKeyVersions.create",  # rotate_tenant_key: create_crypto_key_version
        "cloudkms.cryptoKeyVersions.destroy", # shred_tenant: destroy_crypto_key_version
        "cloudkms.cryptoKeyVersions.list",    # shred_tenant: list_crypto_key_versions
        "cloudkms.cryptoKeys.create",         # _mark_shredded: tombstone key for a tenant without one
        "cloudkms.cryptoKeys.get",            # _mark_shredded, _is_shredded: get_crypto_key
        "cloudkms.cryptoKeys.update",         # _mark_shredded: update_crypto_key; rotate: update_crypto_key_primary_version
      ]
    }
    # runner job: decrypt tells a shredded key from a bad ciphertext (_is_shredded).
    tenant_key_reader = {
      title       = "Convergence tenant key reader"
      permissions = ["cloudkms.cryptoKeys.get"]
    }
  }
  # Known at plan time (from variables), so they can be for_each keys.
  custom_role_ids = { for name, _ in local.custom_roles : name => "projects/${var.project_id}/roles/${replace(var.prefix, "-", "_")}_${name}" }

  # Who needs what. scope: where the binding is made. why: the code path.
  # Secret accessors and function invokers are derived from local.functions.
  iam_bindings = [
    # BigQuery query jobs are created in the project by every process (Warehouse._run -> client.query).
    { sa = "admin", scope = "project", role = "roles/bigquery.jobUser", why = "Warehouse.query/execute" },
    { sa = "credentials", scope = "project", role = "roles/bigquery.jobUser", why = "Warehouse.query/execute" },
    { sa = "onboard", scope = "project", role = "roles/bigquery.jobUser", why = "Warehouse.query/execute" },
    { sa = "pipelines", scope = "project", role = "roles/bigquery.jobUser", why = "Warehouse.query/execute" },
    { sa = "quota", scope = "project", role = "roles/bigquery.jobUser", why = "Warehouse.query" },
    { sa = "audit", scope = "project", role = "roles/bigquery.jobUser", why = "Warehouse.query" },
    { sa = "members", scope = "project", role = "roles/bigquery.jobUser", why = "Warehouse.query/execute" },
    { sa = "notifications", scope = "project", role = "roles/bigquery.jobUser", why = "webhook registration DML, outbox reads" },
    { sa = "costs", scope = "project", role = "roles/bigquery.jobUser", why = "cost_query and budgets: Warehouse.query/execute" },
    { sa = "costs", scope = "project", role = "roles/bigquery.dataViewer", why = "cost_query reads {tenant}.focus_cost of tenant datasets created at run time" },
    { sa = "runner", scope = "project", role = "roles/bigquery.jobUser", why = "pipeline steps and run claims" },
    { sa = "stripe_webhook", scope = "project", role = "roles/bigquery.jobUser", why = "Warehouse.query/execute" },
    { sa = "trigger", scope = "project", role = "roles/bigquery.jobUser", why = "admission and reaping DML" },
    # Tenant datasets are created at run time, so these can only be granted on the project.
    { sa = "onboard", scope = "project", role = local.custom_role_ids.tenant_dataset_provisioner, why = "tenants.onboard -> tenant_dataset.claim_dataset/provision/write_check" },
    { sa = "stripe_webhook", scope = "project", role = local.custom_role_ids.tenant_dataset_provisioner, why = "checkout.session.completed -> tenants.onboard" },
    { sa = "admin", scope = "project", role = local.custom_role_ids.tenant_dataset_remover, why = "tenants.offboard/purge_expired_datasets -> tenant_dataset.delete_dataset" },
    { sa = "runner", scope = "project", role = local.custom_role_ids.tenant_data_writer, why = "jobs.pipeline_runner writes the tenant's data tables" },
    { sa = "build", scope = "project", role = "roles/cloudbuild.builds.builder", why = "gen2 function builds: read the source archive, push the image, write build logs" },
    # Central dataset (basic dataset roles: the API returns them in this form, so no perpetual diff).
    # OWNER is the dataset-level dataOwner: the narrowest role that edits the access list.
    { sa = "admin", scope = "central_dataset", role = "OWNER", why = "offboard -> tenant_dataset.deauthorize_views edits the access list; bootstrap creates missing tables" },
    { sa = "onboard", scope = "central_dataset", role = "OWNER", why = "onboard -> tenant_dataset.authorize_views edits the access list" },
    { sa = "stripe_webhook", scope = "central_dataset", role = "OWNER", why = "checkout -> onboard -> authorize_views; event dedupe rows" },
    { sa = "credentials", scope = "central_dataset", role = "WRITER", why = "tenant_cloud_credentials, tenant_provider_configs, usage counters" },
    { sa = "pipelines", scope = "central_dataset", role = "WRITER", why = "tenant_pipeline_configs, manual runs, admission" },
    { sa = "quota", scope = "central_dataset", role = "READER", why = "quota_report reads subscriptions and usage; auth reads api keys" },
    { sa = "audit", scope = "central_dataset", role = "READER", why = "audit_trail.list_entries reads tenant_audit_log; auth reads api keys and members" },
    { sa = "members", scope = "central_dataset", role = "WRITER", why = "tenant_members, tenant_invitations, seat reservations, member keys, audit rows" },
    { sa = "costs", scope = "central_dataset", role = "WRITER", why = "budgets CRUD on tenant_budgets; plan cap reads subscriptions; auth reads api keys" },
    { sa = "runner", scope = "central_dataset", role = "WRITER", why = "run claim, heartbeat, step logs, DQ results" },
    { sa = "trigger", scope = "central_dataset", role = "WRITER", why = "admission, run rows, next_run_time, reaping" },
    { sa = "notifications", scope = "central_dataset", role = "WRITER", why = "tenant_webhooks rows; auth reads api keys; outbox reads" },
    # Tenant key ring: key lifecycle by custom role; encrypt or decrypt only where the code does.
    { sa = "onboard", scope = "tenant_key_ring", role = local.custom_role_ids.tenant_key_creator, why = "tenants.onboard -> crypto.ensure_tenant_key" },
    { sa = "stripe_webhook", scope = "tenant_key_ring", role = local.custom_role_ids.tenant_key_creator, why = "checkout -> tenants.onboard -> crypto.ensure_tenant_key" },
    { sa = "credentials", scope = "tenant_key_ring", role = local.custom_role_ids.tenant_key_creator, why = "GcpKmsCrypto.encrypt -> ensure_tenant_key on NotFound" },
    { sa = "admin", scope = "tenant_key_ring", role = local.custom_role_ids.tenant_key_manager, why = "tenants.offboard -> crypto.shred_tenant" },
    { sa = "runner", scope = "tenant_key_ring", role = local.custom_role_ids.tenant_key_reader, why = "GcpKmsCrypto.decrypt -> _is_shredded" },
    { sa = "credentials", scope = "tenant_key_ring", role = "roles/cloudkms.cryptoKeyEncrypter", why = "credentials.create/rotate -> crypto.encrypt" },
    { sa = "stripe_webhook", scope = "tenant_key_ring", role = "roles/cloudkms.cryptoKeyEncrypter", why = "stripe_events._keep_for_reveal -> crypto.encrypt" },
    { sa = "admin", scope = "tenant_key_ring", role = "roles/cloudkms.cryptoKeyDecrypter", why = "stripe_events.reveal_key -> crypto.decrypt" },
    { sa = "runner", scope = "tenant_key_ring", role = "roles/cloudkms.cryptoKeyDecrypter", why = "credentials.decrypt_credential -> crypto.decrypt" },
    # Dispatch: trigger ticks and manual runs enqueue HTTP tasks that carry the tasks SA's OAuth token.
    { sa = "trigger", scope = "queue", role = "roles/cloudtasks.enqueuer", why = "trigger tick enqueues one task per admitted run" },
    { sa = "pipelines", scope = "queue", role = "roles/cloudtasks.enqueuer", why = "POST /pipelines/runs enqueues manual runs" },
    { sa = "trigger", scope = "tasks_sa", role = "roles/iam.serviceAccountUser", why = "a task with an OAuth token of the tasks SA needs actAs on it" },
    { sa = "pipelines", scope = "tasks_sa", role = "roles/iam.serviceAccountUser", why = "a task with an OAuth token of the tasks SA needs actAs on it" },
    # Customers' AWS roles and Entra apps trust the runner's Google identity only:
    # whoever checks or reads their exports mints the runner's ID token (shared.sources.identity).
    { sa = "credentials", scope = "runner_sa", role = "roles/iam.serviceAccountOpenIdTokenCreator", why = "provider config access check -> GoogleIdTokens (impersonated runner ID token)" },
    { sa = "runner", scope = "runner_sa", role = "roles/iam.serviceAccountOpenIdTokenCreator", why = "AWS/Azure readers -> GoogleIdTokens (its own ID token via IAM Credentials)" },
    # run.jobs.run + run.jobs.runWithOverrides (the task passes --run-id as container args), on this job only.
    { sa = "tasks", scope = "runner_job", role = "roles/run.jobsExecutorWithOverrides", why = "Cloud Tasks calls jobs/<job>:run with container overrides" },
  ]
}

resource "google_service_account" "sa" {
  for_each     = local.service_accounts
  project      = var.project_id
  account_id   = local.service_account_ids[each.key]
  display_name = "Convergence ${each.key}"
  description  = each.value
  depends_on   = [google_project_service.apis]
}

resource "google_project_iam_custom_role" "custom" {
  for_each    = local.custom_roles
  project     = var.project_id
  role_id     = "${replace(var.prefix, "-", "_")}_${each.key}"
  title       = each.value.title
  permissions = each.value.permissions
}

resource "google_project_iam_member" "sa" {
  for_each   = { for b in local.iam_bindings : "${b.sa} ${b.role}" => b if b.scope == "project" }
  project    = var.project_id
  role       = each.value.role
  member     = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
  depends_on = [google_project_iam_custom_role.custom]
}

# Minting the runner's ID tokens (AWS AssumeRoleWithWebIdentity, Entra client assertions).
resource "google_service_account_iam_member" "runner_id_tokens" {
  for_each           = { for b in local.iam_bindings : "${b.sa} ${b.role}" => b if b.scope == "runner_sa" }
  service_account_id = google_service_account.sa["runner"].name
  role               = each.value.role
  member             = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
}

# The central dataset and every central table, read from ../schemas/central/*.json (the one source).

locals {
  central_schema_dir = "${path.module}/../schemas/central"
  # Every schema file becomes a table: a new file needs no edit here.
  central_schema_docs = [for f in fileset(local.central_schema_dir, "*.json") : jsondecode(file("${local.central_schema_dir}/${f}"))]
  central_tables      = { for doc in local.central_schema_docs : doc.table => doc }

  # Tables that hold money or keys: Terraform refuses to delete them (docs/decisions.md).
  protected_tables = [
    "tenant_api_keys",          # API-key hashes
    "tenant_audit_log",         # who did what, kept for audits
    "tenant_cloud_credentials", # credential ciphertexts
    "tenant_key_reveals",       # encrypted API keys waiting for their one reveal
    "tenant_profiles",          # the tenant registry and its status
    "tenant_subscriptions",     # Stripe subscriptions and plans
    "tenant_usage_quotas",      # admission counters billed against plans
    "tenant_webhook_events",    # Stripe event dedupe: losing it replays payments
  ]
}

resource "google_bigquery_dataset" "central" {
  project     = var.project_id
  dataset_id  = var.central_dataset
  location    = var.bq_location
  description = "Convergence central dataset: tenants, keys, billing state and the run logs of every tenant."
  # No `access` blocks: the code adds authorized views to this dataset's access
  # list at run time; an authoritative list here would delete them on the next
  # apply. Service accounts are added entry by entry (google_bigquery_dataset_access).
  delete_contents_on_destroy = false
  default_encryption_configuration {
    kms_key_name = google_kms_crypto_key.central_data.id
  }
  labels     = { platform = "convergence" }
  depends_on = [google_project_service.apis, google_kms_crypto_key_iam_member.bq_central_data]
}

resource "google_bigquery_table" "central" {
  #checkov:skip=CKV_GCP_121:Protection is per table: on for every table that holds money or keys (local.protected_tables, asserted by tests/unit/test_terraform.py), off for run logs and configs.
  for_each    = local.central_tables
  project     = var.project_id
  dataset_id  = google_bigquery_dataset.central.dataset_id
  table_id    = each.key
  description = try(each.value.description, null)
  # The API drops empty descriptions; sending them would show a diff on every plan.
  schema = jsonencode([for field in each.value.schema : { for k, v in field : k => v if v != "" }])

  dynamic "time_partitioning" {
    for_each = can(each.value.timePartitioning) ? [each.value.timePartitioning] : []
    content {
      type          = time_partitioning.value.type
      field         = try(time_partitioning.value.field, null)
      expiration_ms = try(tonumber(time_partitioning.value.expirationMs), null)
    }
  }
  clustering = try(each.value.clustering.fields, null)

  encryption_configuration {
    kms_key_name = google_kms_crypto_key.central_data.id
  }
  deletion_protection = contains(local.protected_tables, each.key)
  labels              = { platform = "convergence" }
}

resource "google_bigquery_dataset_access" "central" {
  for_each      = { for b in local.iam_bindings : "${b.sa} ${b.role}" => b if b.scope == "central_dataset" }
  project       = var.project_id
  dataset_id    = google_bigquery_dataset.central.dataset_id
  role          = each.value.role
  user_by_email = google_service_account.sa[each.value.sa].email
}

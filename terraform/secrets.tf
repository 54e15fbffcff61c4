# Secret Manager: the platform secrets' containers and who may read them. Values never pass through Terraform.

locals {
  # The secrets port's names (shared secrets module, PLATFORM_SECRETS). Secret ids
  # equal the env var names, so SECRETS_BACKEND=secret_manager would find them too.
  # The SMTP relay (MAIL_SECRETS) too: a blank value (" ") means email is not set up.
  platform_secrets = [
    "ADMIN_API_KEY", "API_KEY_PEPPER", "STRIPE_WEBHOOK_SECRET",
    "SMTP_HOST", "SMTP_USERNAME", "SMTP_PASSWORD",
  ]

  secret_accessors = merge(
    { for pair in flatten([for name, f in local.functions : [for s in f.secrets : { sa = name, secret = s }]]) : "${pair.sa} ${pair.secret}" => pair },
    { for s in local.job_secrets : "runner ${s}" => { sa = "runner", secret = s } },
  )
}

# No google_secret_manager_secret_version here, on purpose: a version's payload
# would sit in state. Add values with `gcloud secrets versions add` (README.md).
resource "google_secret_manager_secret" "platform" {
  for_each  = toset(local.platform_secrets)
  project   = var.project_id
  secret_id = each.value
  replication {
    auto {}
  }
  labels     = { platform = "convergence" }
  depends_on = [google_project_service.apis]
}

# Each function reads only the secrets mounted into it (local.functions[*].secrets).
resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each  = local.secret_accessors
  project   = var.project_id
  secret_id = google_secret_manager_secret.platform[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
}

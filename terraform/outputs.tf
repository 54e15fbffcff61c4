# Outputs, in alphabetical order.

output "central_dataset" {
  description = "Dataset id of the central dataset."
  value       = google_bigquery_dataset.central.dataset_id
}

output "function_urls" {
  description = "URL of every function, by function name."
  value       = { for name, f in google_cloudfunctions2_function.function : name => f.url }
}

output "kms_key_ring" {
  description = "The tenant key ring (KMS_KEY_RING)."
  value       = google_kms_key_ring.tenant_keys.id
}

output "runner_identity" {
  description = "What customers' AWS roles and Entra apps trust (terraform/tenant): issuer, the runner's unique id (sub), and the audience prefix (+ \"/<tenant external id>\", GET /credentials/platform-identity)."
  value = {
    issuer          = "https://accounts.google.com"
    subject         = google_service_account.sa["runner"].unique_id
    audience_prefix = local.function_urls["credentials"]
  }
}

output "runner_job" {
  description = "Name of the Cloud Run job that runs pipelines."
  value       = google_cloud_run_v2_job.runner.name
}

output "runner_service_account" {
  description = "Service account of the runner job: tenants grant it read on their billing export."
  value       = google_service_account.sa["runner"].email
}

output "secret_ids" {
  description = "Secret Manager secrets to fill with `gcloud secrets versions add`."
  value       = sort([for s in google_secret_manager_secret.platform : s.secret_id])
}

output "service_accounts" {
  description = "Email of every service account, by role."
  value       = { for name, sa in google_service_account.sa : name => sa.email }
}

output "tasks_queue" {
  description = "Name of the Cloud Tasks queue of pipeline runs."
  value       = google_cloud_tasks_queue.runs.name
}

# Every HTTP function (gen2, python312) from one source archive of the repository, and who may invoke it.

locals {
  # Glob patterns (archive provider >= 2.3). The archive holds what main.py
  # imports and requirements.txt; never tests, the local stack, Terraform,
  # virtualenvs or local data.
  source_excludes = [
    ".git/**", ".venv/**", ".venv-infra/**", ".local/**", ".pytest_cache/**",
    ".mypy_cache/**", ".ruff_cache/**", "**/__pycache__/**",
    "tests/**", "local/**", "terraform/**", "docs/**",
    "Dockerfile", ".dockerignore", "Makefile", "requirements-local.txt", "requirements-infra.txt",
  ]

  function_invokers = { for pair in flatten([
    for name, f in local.functions : [for m in f.invokers : { function = name, member = m }]
  ]) : "${pair.function} ${pair.member}" => pair }
}

data "archive_file" "source" {
  type        = "zip"
  source_dir  = "${path.module}/.."
  excludes    = local.source_excludes
  output_path = "${path.module}/.build/source.zip"
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Access logs of a deploy-only bucket read by Cloud Build add nothing; Cloud Audit Logs cover it.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.prefix}-function-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  versioning {
    enabled = true
  }
  lifecycle_rule {
    condition {
      num_newer_versions = 5
    }
    action {
      type = "Delete"
    }
  }
  labels     = { platform = "convergence" }
  depends_on = [google_project_service.apis]
}

# Named by content, so a code change makes a new object and redeploys the functions.
resource "google_storage_bucket_object" "source" {
  name   = "source-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

resource "google_cloudfunctions2_function" "function" {
  for_each    = local.functions
  project     = var.project_id
  name        = local.function_ids[each.key]
  location    = var.region
  description = each.value.description

  build_config {
    runtime = "python312"
    # The Terraform key is the entry point's name in main.py.
    entry_point     = each.key
    service_account = google_service_account.sa["build"].id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  #checkov:skip=CKV_GCP_124:Callers are outside Google's network (Stripe, the frontend gateway, Cloud Scheduler); IAM invoker bindings below decide who gets in.
  service_config {
    min_instance_count             = 0
    max_instance_count             = var.function_max_instances
    available_memory               = "512Mi"
    timeout_seconds                = each.value.timeout_seconds
    service_account_email          = google_service_account.sa[each.key].email
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    environment_variables          = local.runtime_env

    dynamic "secret_environment_variables" {
      for_each = toset(each.value.secrets)
      content {
        key        = secret_environment_variables.value
        project_id = var.project_id
        secret     = google_secret_manager_secret.platform[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  lifecycle {
    postcondition {
      # TRIGGER_AUDIENCE and the scheduler's audience are computed from this format.
      condition     = self.url == local.function_urls[each.key]
      error_message = "The function URL differs from local.function_urls; fix the format in main.tf."
    }
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.sa,
    google_secret_manager_secret_iam_member.accessor,
  ]
}

# gen2 functions are Cloud Run services of the same name: invoking one needs run.invoker on it.
resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = local.function_invokers
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.value.function].name
  role     = "roles/run.invoker"
  member   = each.value.member
  # Members name service accounts by their computed email; make sure they exist.
  depends_on = [google_service_account.sa]
}

resource "google_cloud_run_service_iam_member" "public" {
  #checkov:skip=CKV_GCP_102:Public on purpose: Stripe cannot present a Google identity, so the webhook authenticates each request by its Stripe signature; tests/unit/test_terraform.py keeps every other function off this list.
  for_each = toset(local.public_functions)
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.value].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The Cloud Tasks queue that turns admitted runs into Cloud Run job executions.

resource "google_cloud_tasks_queue" "runs" {
  name     = local.queue_name
  location = var.region

  # Each dispatch is one Cloud Run Admin API jobs:run request, which has its own
  # per-region quota ("job run requests per minute"): the rate stays under it.
  # A dispatch is short (the API answers with an operation), so few run at once.
  rate_limits {
    max_dispatches_per_second = var.queue_max_dispatches_per_second
    max_concurrent_dispatches = 10
  }

  # A 429 (quota) or 5xx from the Admin API is retried with backoff. Retrying is
  # safe: the runner claims a run QUEUED -> RUNNING once and a duplicate exits 0.
  retry_config {
    max_attempts       = 10
    max_retry_duration = "3600s"
    min_backoff        = "10s"
    max_backoff        = "600s"
    max_doublings      = 5
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0 # every dispatch attempt is logged: runs are rare and worth tracing
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = { for b in local.iam_bindings : "${b.sa} ${b.role}" => b if b.scope == "queue" }
  project  = var.project_id
  location = google_cloud_tasks_queue.runs.location
  name     = google_cloud_tasks_queue.runs.name
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
}

# Whoever creates a task that carries the tasks SA's OAuth token must be able to act as it.
resource "google_service_account_iam_member" "tasks_act_as" {
  for_each           = { for b in local.iam_bindings : "${b.sa} ${b.role}" => b if b.scope == "tasks_sa" }
  service_account_id = google_service_account.sa["tasks"].name
  role               = each.value.role
  member             = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
}

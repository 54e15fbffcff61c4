# The Cloud Scheduler job that ticks the trigger with an OIDC token of its own service account.

resource "google_cloud_scheduler_job" "trigger" {
  name        = "${var.prefix}-trigger-tick"
  region      = var.region
  description = "Calls the trigger: admits due pipelines, enqueues runs, reaps stale runs."
  schedule    = var.trigger_cron
  time_zone   = "Etc/UTC" # pipelines carry their own zones; the tick only needs to be regular
  # The trigger's own timeout; a tick that is still running is not cut short.
  attempt_deadline = "300s"

  # A tick is idempotent (deterministic task names) and the next one comes soon,
  # so a failed tick is retried briefly rather than for long.
  retry_config {
    retry_count          = 2
    max_retry_duration   = "120s"
    min_backoff_duration = "10s"
    max_backoff_duration = "60s"
    max_doublings        = 2
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.function["trigger"].url
    body        = base64encode("{}")
    headers     = { "Content-Type" = "application/json" }
    oidc_token {
      service_account_email = google_service_account.sa["scheduler"].email
      # The trigger checks this audience (TRIGGER_AUDIENCE) besides Cloud Run's IAM check.
      audience = google_cloudfunctions2_function.function["trigger"].url
    }
  }

  depends_on = [google_project_service.apis, google_cloud_run_service_iam_member.invoker]
}

# The outbox sender: alerts and welcome messages recorded by runs, budgets and
# onboarding are delivered (email, webhooks) only when this calls it. Same
# caller and audience as the tick; a pass is idempotent (leased claims, each
# message marked once), so a retried or overlapping pass sends nothing twice.
resource "google_cloud_scheduler_job" "notifications" {
  name             = "${var.prefix}-notifications-tick"
  region           = var.region
  description      = "Calls the trigger's outbox sender: delivers due alert emails and webhooks."
  schedule         = var.notify_cron
  time_zone        = "Etc/UTC"
  attempt_deadline = "300s"

  retry_config {
    retry_count          = 2
    max_retry_duration   = "120s"
    min_backoff_duration = "10s"
    max_backoff_duration = "60s"
    max_doublings        = 2
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloudfunctions2_function.function["trigger"].url}/notifications"
    body        = base64encode("{}")
    headers     = { "Content-Type" = "application/json" }
    oidc_token {
      service_account_email = google_service_account.sa["scheduler"].email
      # TRIGGER_AUDIENCE is the function's URL, whichever route is called.
      audience = google_cloudfunctions2_function.function["trigger"].url
    }
  }

  depends_on = [google_project_service.apis, google_cloud_run_service_iam_member.invoker]
}

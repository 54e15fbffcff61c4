# The Cloud Run job that executes one pipeline run per execution (python -m jobs.pipeline_runner --run-id ID).

resource "google_cloud_run_v2_job" "runner" {
  name     = local.runner_job_name
  location = var.region
  # A stray destroy would drop the execution history and stop runs in flight.
  deletion_protection = true

  template {
    # One task per execution: an execution is one run; Cloud Tasks starts one per run.
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.sa["runner"].email
      timeout         = "${var.runner_task_timeout_seconds}s"
      max_retries     = var.runner_max_retries

      containers {
        image = var.runner_image
        # The module is the command; the task's container override supplies only
        # args (["--run-id", ID]), which replace the job's (empty) args.
        command = ["python", "-m", "jobs.pipeline_runner"]
        args    = []

        resources {
          limits = {
            cpu    = "1"
            memory = "2Gi"
          }
        }

        dynamic "env" {
          for_each = local.runtime_env
          content {
            name  = env.key
            value = env.value
          }
        }

        dynamic "env" {
          for_each = toset(local.job_secrets)
          content {
            name = env.value
            value_source {
              secret_key_ref {
                secret  = google_secret_manager_secret.platform[env.value].secret_id
                version = "latest"
              }
            }
          }
        }
      }
    }
  }

  lifecycle {
    precondition {
      # Settings refuses to start otherwise, in every function and the job.
      condition     = var.run_heartbeat_seconds * 3 <= var.run_stale_after_seconds
      error_message = "run_stale_after_seconds must allow at least three missed heartbeats (3 x run_heartbeat_seconds)."
    }
  }

  depends_on = [google_project_service.apis, google_secret_manager_secret_iam_member.accessor]
}

resource "google_cloud_run_v2_job_iam_member" "runner" {
  for_each = { for b in local.iam_bindings : "${b.sa} ${b.role}" => b if b.scope == "runner_job" }
  project  = var.project_id
  location = google_cloud_run_v2_job.runner.location
  name     = google_cloud_run_v2_job.runner.name
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
}

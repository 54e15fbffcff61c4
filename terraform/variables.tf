# Inputs, in alphabetical order. Values per environment live in environments/*.tfvars.
# No variable holds a secret: secret values are added to Secret Manager out of band.

variable "bq_location" {
  description = "BigQuery location of the central dataset and of tenant datasets (BQ_LOCATION), e.g. US, EU or a region."
  type        = string
  default     = "US"
  validation {
    condition     = can(regex("^(US|EU|[a-z]+-[a-z]+[0-9]+)$", var.bq_location))
    error_message = "bq_location must be US, EU or a region such as europe-west1."
  }
}

variable "central_dataset" {
  description = "Dataset id of the central dataset (CENTRAL_DATASET)."
  type        = string
  default     = "tenants"
  validation {
    # Same rule as Settings._dataset_name in the code.
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]{0,1023}$", var.central_dataset))
    error_message = "central_dataset must be a valid BigQuery dataset id."
  }
}

variable "credential_live_validation" {
  description = "Let tenants ask for ?validate=live on credentials, a call to the provider (CREDENTIAL_LIVE_VALIDATION)."
  type        = bool
  default     = false
}

variable "frontend_invokers" {
  description = "IAM members allowed to invoke the tenant-facing functions (credentials, pipelines, quota), e.g. the API gateway's or the frontend backend's service account. Never allUsers."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for m in var.frontend_invokers : can(regex("^(serviceAccount|group|user|domain):[^\\s]+$", m))])
    error_message = "frontend_invokers entries must be IAM members such as serviceAccount:gw@p.iam.gserviceaccount.com; allUsers and allAuthenticatedUsers are refused."
  }
}

variable "frontend_origins" {
  description = "Browser origins allowed by CORS (FRONTEND_ORIGINS), scheme://host only."
  type        = list(string)
  default     = []
  validation {
    # Same rule as Settings._no_wildcard: credentials cross origins, so never "*".
    condition     = alltrue([for o in var.frontend_origins : can(regex("^https?://[^/*\\s]+$", o))])
    error_message = "frontend_origins entries must be scheme://host origins, never *."
  }
}

variable "function_max_instances" {
  description = "Upper bound of instances per function: caps cost and the BigQuery DML concurrency a burst can cause."
  type        = number
  default     = 10
  validation {
    condition     = var.function_max_instances >= 1 && var.function_max_instances <= 100
    error_message = "function_max_instances must be between 1 and 100."
  }
}

variable "log_level" {
  description = "Log level of every function and the job (LOG_LEVEL)."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "notify_cron" {
  description = "Cloud Scheduler cron (5 fields, UTC) of the outbox sender pass (POST /notifications on the trigger): how soon an alert is delivered."
  type        = string
  default     = "*/2 * * * *"
  validation {
    condition = (
      length(split(" ", var.notify_cron)) == 5 &&
      alltrue([for field in split(" ", var.notify_cron) : can(regex("^[0-9*/,-]+$", field))])
    )
    error_message = "notify_cron must be a 5-field cron expression such as \"*/2 * * * *\", single spaces."
  }
}

variable "notify_from" {
  description = "From address of alert emails (NOTIFY_FROM); the SMTP relay must accept it."
  type        = string
  default     = "Convergence alerts <alerts@convergence.example>"
  validation {
    condition     = can(regex("@", var.notify_from))
    error_message = "notify_from must contain an email address."
  }
}

variable "operator_group" {
  description = "Google group of the operators: the only principal allowed to invoke the admin and onboard functions."
  type        = string
  validation {
    condition     = can(regex("^group:[^@\\s]+@[^@\\s]+$", var.operator_group))
    error_message = "operator_group must look like group:platform-ops@example.com."
  }
}

variable "payment_grace_days" {
  description = "Days a tenant stays PAST_DUE after a failed payment before it is suspended (PAYMENT_GRACE_DAYS)."
  type        = number
  default     = 7
  validation {
    condition     = var.payment_grace_days >= 0 && var.payment_grace_days <= 60
    error_message = "payment_grace_days must be between 0 and 60 (the code's bounds)."
  }
}

variable "prefix" {
  description = "Prefix of every resource name (no random suffixes), e.g. conv-prod."
  type        = string
  validation {
    # Short enough that "<prefix>-pipelines" fits the 30 characters of a service account id.
    condition     = can(regex("^[a-z][a-z0-9-]{1,10}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 3-12 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "project_id" {
  description = "Google Cloud project id of this environment (GCP_PROJECT). One project per environment."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be 6-30 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "queue_max_dispatches_per_second" {
  description = "Cloud Tasks dispatch rate; each dispatch is one Cloud Run Admin API jobs:run call, whose default quota is a few per second per region."
  type        = number
  default     = 1
  validation {
    # 3/s is 180/min, the highest default "job run requests per minute per region"
    # we found documented; stay at or under it unless the project's quota was raised.
    condition     = var.queue_max_dispatches_per_second > 0 && var.queue_max_dispatches_per_second <= 3
    error_message = "queue_max_dispatches_per_second must be in (0, 3] to stay under the Cloud Run job run quota."
  }
}

variable "region" {
  description = "Region of the functions, the runner job, the Tasks queue and the Scheduler job (CLOUD_REGION)."
  type        = string
  default     = "us-central1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1."
  }
}

variable "run_heartbeat_seconds" {
  description = "Seconds between heartbeats of a running pipeline run (RUN_HEARTBEAT_SECONDS)."
  type        = number
  default     = 30
  validation {
    condition     = var.run_heartbeat_seconds >= 5 && var.run_heartbeat_seconds <= 600
    error_message = "run_heartbeat_seconds must be between 5 and 600 (the code's bound)."
  }
}

variable "run_stale_after_seconds" {
  description = "Seconds without a heartbeat after which the trigger reaps a RUNNING run (RUN_STALE_AFTER_SECONDS); several heartbeats long."
  type        = number
  default     = 600
  validation {
    condition     = var.run_stale_after_seconds >= 60 && var.run_stale_after_seconds <= 7200
    error_message = "run_stale_after_seconds must be between 60 and 7200."
  }
}

variable "runner_image" {
  description = "Image of the runner job, built from ../Dockerfile and pushed to this environment's Artifact Registry; pin it by digest (…@sha256:…)."
  type        = string
  validation {
    # A digest makes the deploy run exactly what was built and scanned; a mutable tag would not.
    condition     = can(regex("^[a-z0-9.-]+/[^@\\s]+@sha256:[a-f0-9]{64}$", var.runner_image))
    error_message = "runner_image must be pinned by digest: REGION-docker.pkg.dev/PROJECT/REPO/IMAGE@sha256:<64 hex>."
  }
}

variable "runner_max_retries" {
  description = "Cloud Run retries of a failed runner task; safe because a run is claimed once (QUEUED -> RUNNING) and a duplicate exits 0."
  type        = number
  default     = 1
  validation {
    condition     = var.runner_max_retries >= 0 && var.runner_max_retries <= 10
    error_message = "runner_max_retries must be between 0 and 10 (Cloud Run's limit)."
  }
}

variable "runner_task_timeout_seconds" {
  description = "Timeout of one runner task (one pipeline run)."
  type        = number
  default     = 3600
  validation {
    condition     = var.runner_task_timeout_seconds >= 60 && var.runner_task_timeout_seconds <= 86400
    error_message = "runner_task_timeout_seconds must be between 60 and 86400 (24 h, Cloud Run's limit)."
  }
}

variable "tenant_dataset_suffix" {
  description = "Suffix appended to every tenant dataset name (TENANT_DATASET_SUFFIX), e.g. _dev; empty in production."
  type        = string
  default     = ""
  validation {
    # Same rule as Settings._suffix in the code.
    condition     = can(regex("^([a-z0-9_]{1,20})?$", var.tenant_dataset_suffix))
    error_message = "tenant_dataset_suffix must match ^[a-z0-9_]{1,20}$ or be empty."
  }
}

variable "trigger_cron" {
  description = "Cloud Scheduler cron (5 fields, UTC) of the trigger tick; pipelines may be scheduled every 5 minutes, so tick at least that often."
  type        = string
  default     = "* * * * *"
  validation {
    condition = (
      length(split(" ", var.trigger_cron)) == 5 &&
      alltrue([for field in split(" ", var.trigger_cron) : can(regex("^[0-9*/,-]+$", field))])
    )
    error_message = "trigger_cron must be a 5-field cron expression such as \"* * * * *\" or \"*/5 * * * *\", single spaces."
  }
}

# Names, the function catalogue and the runtime environment shared by every function and the job.

locals {
  # One name per function everywhere: the key here is the entry point in main.py,
  # the Terraform for_each key and the local mount path. Deployed ids add the
  # prefix and use hyphens (Cloud Run service names refuse underscores).
  function_ids = { for name in keys(local.functions) : name => "${var.prefix}-${replace(name, "_", "-")}" }
  # The gen2 function URL format; checked against the real `url` by a postcondition
  # in functions.tf. Computed, not read back, so the trigger can receive its own
  # URL as TRIGGER_AUDIENCE without a dependency cycle.
  function_urls = { for name, id in local.function_ids : name => "https://${var.region}-${var.project_id}.cloudfunctions.net/${id}" }

  # Known names, not resource attributes: the runtime env below names them and
  # the job itself reads that env, so reading them back would be a cycle.
  queue_name      = "${var.prefix}-pipeline-runs"
  runner_job_name = "${var.prefix}-pipeline-runner"

  # Every deployed function: who may invoke it (IAM members; public ones are in
  # local.public_functions instead) and which platform secrets it reads
  # (mounted as env vars of the same name; see secrets.tf).
  functions = {
    # Bootstrap and tenant lifecycle (X-Admin-Key); reveals webhook-issued keys and rotates keys (pepper).
    admin = {
      description     = "Admin API: bootstrap, tenant status, plans, keys, offboarding, key reveal."
      invokers        = [var.operator_group]
      secrets         = ["ADMIN_API_KEY", "API_KEY_PEPPER"]
      timeout_seconds = 300 # offboarding shreds keys and deletes a dataset
    }
    # Tenant endpoint (X-API-Key -> pepper), called by the frontend through its gateway.
    credentials = {
      description     = "Tenant cloud credentials (encrypted) and provider configs."
      invokers        = var.frontend_invokers
      secrets         = ["API_KEY_PEPPER"]
      timeout_seconds = 60
    }
    # Operators create tenants (X-Admin-Key) and the first API key (pepper).
    onboard = {
      description     = "Onboard a tenant: profile, plan, dataset, key-encryption key, first API key."
      invokers        = [var.operator_group]
      secrets         = ["ADMIN_API_KEY", "API_KEY_PEPPER"]
      timeout_seconds = 300 # creates a dataset, tables and authorized views
    }
    # Tenant endpoint (X-API-Key -> pepper); manual runs enqueue Cloud Tasks.
    pipelines = {
      description     = "Tenant pipeline configs and runs."
      invokers        = var.frontend_invokers
      secrets         = ["API_KEY_PEPPER"]
      timeout_seconds = 120
    }
    # Tenant endpoint (X-API-Key -> pepper): the audit trail (issue 21).
    audit = {
      description     = "A tenant's audit trail (OWNER and ADMIN)."
      invokers        = var.frontend_invokers
      secrets         = ["API_KEY_PEPPER"]
      timeout_seconds = 60
    }
    # Tenant endpoint (X-API-Key -> pepper); accepting an invitation issues a key (pepper).
    members = {
      description     = "Team members, roles and invitations."
      invokers        = var.frontend_invokers
      secrets         = ["API_KEY_PEPPER"]
      timeout_seconds = 60
    }
    # Tenant endpoint (X-API-Key -> pepper): reads the tenant's focus_cost, writes budgets.
    costs = {
      description     = "Cost summaries, top movers and budgets of the calling tenant."
      invokers        = var.frontend_invokers
      secrets         = ["API_KEY_PEPPER"]
      timeout_seconds = 60
    }
    # Tenant endpoint (X-API-Key -> pepper).
    quota = {
      description     = "Plan limits, usage and warnings of the calling tenant."
      invokers        = var.frontend_invokers
      secrets         = ["API_KEY_PEPPER"]
      timeout_seconds = 60
    }
    # Public on purpose: Stripe cannot present a Google identity. Every request is
    # verified against STRIPE_WEBHOOK_SECRET before anything is parsed; checkout
    # onboards the tenant and issues its first key (pepper).
    stripe_webhook = {
      description     = "Stripe events: checkout, subscription and invoice lifecycle."
      invokers        = []
      secrets         = ["API_KEY_PEPPER", "STRIPE_WEBHOOK_SECRET"]
      timeout_seconds = 300 # checkout onboards a tenant
    }
    # Tenant endpoint (X-API-Key -> pepper; the pepper also derives idempotent webhook secrets).
    notifications = {
      description     = "Tenant webhooks (signing secret shown once) and alert messages."
      invokers        = var.frontend_invokers
      secrets         = ["API_KEY_PEPPER"]
      timeout_seconds = 60
    }
    # Only Cloud Scheduler's service account (OIDC); the admin key keeps the local path.
    # It is also the outbox sender (POST /notifications), the one process that
    # talks to the SMTP relay, so it alone reads the relay's credentials.
    trigger = {
      description     = "Scheduler tick: admit due pipelines, enqueue runs, reap stale runs; send alerts."
      invokers        = ["serviceAccount:${local.service_account_emails["scheduler"]}"]
      secrets         = ["ADMIN_API_KEY", "SMTP_HOST", "SMTP_USERNAME", "SMTP_PASSWORD"]
      timeout_seconds = 300
    }
  }

  # Invokable by anyone (allUsers); see functions.tf and docs/decisions.md.
  public_functions = ["stripe_webhook"]

  # Platform secrets the runner job mounts; it authenticates nobody and issues no key.
  job_secrets = []

  # Every setting the code reads in production (shared Settings), for every
  # function and the job alike: one map, so no process can miss one.
  # tests/unit/test_terraform.py compares its keys with the Settings fields.
  runtime_env = {
    ANTHROPIC_ADMIN_API_BASE = "https://api.anthropic.com"
    AUTH_CACHE_TTL_SECONDS   = "30"
    AZURE_AUTHORITY_HOST     = "https://login.microsoftonline.com"
    AZURE_BLOB_ENDPOINT      = "https://{account}.blob.core.windows.net"
    BQ_JOB_TIMEOUT           = "60"
    BQ_LOCATION              = var.bq_location
    # A request in a warehouse outage answers 503 + Retry-After after 5 s; the runner job
    # ignores it and rides the outage out (jobs/pipeline_runner.py).
    BQ_UNREACHABLE_SECONDS = "5"
    CENTRAL_DATASET        = var.central_dataset
    CLOUD_ACCESS_TIMEOUT   = "15"
    CLOUD_REGION           = var.region
    # Audience prefix of the runner's ID tokens for AWS and Entra (+ "/<external id>").
    CLOUD_TOKEN_AUDIENCE       = local.function_urls["credentials"]
    CONVERGENCE_ENV            = "production"
    CREDENTIAL_LIVE_VALIDATION = tostring(var.credential_live_validation)
    DISPATCH_BACKEND           = "cloud_tasks"
    FRONTEND_ORIGINS           = join(",", var.frontend_origins)
    GCP_PROJECT                = var.project_id
    GENAI_API_TIMEOUT          = "30"
    GOOGLE_CERTS_URL           = "https://www.googleapis.com/oauth2/v1/certs" # keys of the scheduler's tokens
    KMS_KEY_RING               = google_kms_key_ring.tenant_keys.id
    LOG_LEVEL                  = var.log_level
    MAX_BODY_BYTES             = "1048576" # 1 MiB
    NOTIFY_BATCH_SIZE          = "50"
    NOTIFY_FROM                = var.notify_from
    NOTIFY_MAX_ATTEMPTS        = "8"
    OPENAI_ADMIN_API_BASE      = "https://api.openai.com"
    PAYMENT_GRACE_DAYS         = tostring(var.payment_grace_days)
    RUNNER_IDENTITY_SUBJECT    = google_service_account.sa["runner"].unique_id
    RUNNER_JOB                 = local.runner_job_name
    RUNNER_SERVICE_ACCOUNT     = google_service_account.sa["runner"].email
    RUN_HEARTBEAT_SECONDS      = tostring(var.run_heartbeat_seconds)
    RUN_STALE_AFTER_SECONDS    = tostring(var.run_stale_after_seconds)
    SCHEDULER_SA               = google_service_account.sa["scheduler"].email
    # Secrets arrive as env vars mounted from Secret Manager: no runtime RPC.
    SECRETS_BACKEND            = "env"
    STRIPE_SIGNATURE_TOLERANCE = "300"
    TASKS_INVOKER_SA           = google_service_account.sa["tasks"].email
    TASKS_QUEUE                = local.queue_name
    TENANT_DATASET_SUFFIX      = var.tenant_dataset_suffix
    TRIGGER_AUDIENCE           = local.function_urls["trigger"]
  }
}

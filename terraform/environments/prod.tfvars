# Production environment: its own project. No secret values here, ever.
project_id            = "convergence-prod"
prefix                = "conv-prod"
region                = "us-central1"
bq_location           = "US"
central_dataset       = "tenants"
tenant_dataset_suffix = ""
log_level             = "INFO"

frontend_origins  = ["https://app.convergence.example"]
frontend_invokers = ["serviceAccount:conv-prod-gateway@convergence-prod.iam.gserviceaccount.com"]
operator_group    = "group:convergence-ops@example.com"

# Digest printed by the image build (README.md, "Build and push the runner image").
runner_image = "us-central1-docker.pkg.dev/convergence-prod/convergence/pipeline-runner@sha256:REPLACE_WITH_THE_BUILT_DIGEST"

trigger_cron                    = "* * * * *"
queue_max_dispatches_per_second = 1
function_max_instances          = 20
credential_live_validation      = false

# Development environment: its own project. No secret values here, ever.
project_id            = "convergence-dev"
prefix                = "conv-dev"
region                = "us-central1"
bq_location           = "US"
central_dataset       = "tenants"
tenant_dataset_suffix = "_dev"
log_level             = "DEBUG"

frontend_origins  = ["http://localhost:3000", "https://dev.app.convergence.example"]
frontend_invokers = ["serviceAccount:conv-dev-gateway@convergence-dev.iam.gserviceaccount.com"]
operator_group    = "group:convergence-dev-ops@example.com"

# Digest printed by the image build (README.md, "Build and push the runner image").
runner_image = "us-central1-docker.pkg.dev/convergence-dev/convergence/pipeline-runner@sha256:REPLACE_WITH_THE_BUILT_DIGEST"

trigger_cron                    = "* * * * *"
queue_max_dispatches_per_second = 1
function_max_instances          = 3
credential_live_validation      = true

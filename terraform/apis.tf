# The Google APIs the platform uses; enabled once, never disabled on destroy.

locals {
  apis = [
    "artifactregistry.googleapis.com",     # runner image; gen2 function images
    "bigquery.googleapis.com",             # central and tenant datasets
    "cloudbuild.googleapis.com",           # gen2 functions are built by Cloud Build
    "cloudfunctions.googleapis.com",       # the HTTP functions
    "cloudkms.googleapis.com",             # tenant key-encryption keys, central-data CMEK
    "cloudresourcemanager.googleapis.com", # project IAM bindings from Terraform
    "cloudscheduler.googleapis.com",       # the trigger tick
    "cloudtasks.googleapis.com",           # run dispatch
    "iam.googleapis.com",                  # service accounts, custom roles
    "logging.googleapis.com",              # structured logs of functions and the job
    "run.googleapis.com",                  # gen2 function services and the runner job
    "secretmanager.googleapis.com",        # platform secrets mounted as env
    "storage.googleapis.com",              # function source archive
  ]
}

resource "google_project_service" "apis" {
  for_each = toset(local.apis)
  project  = var.project_id
  service  = each.value
  # Disabling an API on destroy would break anything else in the project using it.
  disable_on_destroy = false
}

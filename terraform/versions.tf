# Provider and Terraform versions, and the (partial) state backend.

terraform {
  # check blocks and lifecycle postconditions need >= 1.5; optional() defaults >= 1.3.
  required_version = ">= 1.7.0, < 2.0.0"

  required_providers {
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
  }

  # Partial configuration: the bucket and prefix come from
  # `terraform init -backend-config=...` (see README.md), never from this file,
  # so one configuration serves every environment.
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
}

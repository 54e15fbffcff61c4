# Provider and Terraform versions. Applied by the customer, in the customer's AWS account.

terraform {
  required_version = ">= 1.7.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region = var.region
}

# The Data Exports API lives in us-east-1 whatever the bucket's region.
provider "aws" {
  alias  = "billing"
  region = "us-east-1"
}

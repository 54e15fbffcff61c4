# Inputs, in alphabetical order. The platform_* values come from the platform:
# GET /credentials/platform-identity (per tenant) or the platform's `runner_identity` output.

variable "bucket_name" {
  description = "Name of the S3 bucket the export is written to (created here)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name)) && !strcontains(var.bucket_name, "..")
    error_message = "S3 bucket names are 3-63 lower-case letters, digits, '.' or '-'."
  }
}

variable "export_name" {
  description = "Name of the Data Export (1-128 of A-Z a-z 0-9 ! - _ . * ' ( ))."
  type        = string
  default     = "convergence-focus"
  validation {
    condition     = can(regex("^[0-9A-Za-z!_.*'()-]{1,128}$", var.export_name))
    error_message = "Data Export names are 1-128 of A-Z a-z 0-9 ! - _ . * ' ( )."
  }
}

variable "export_type" {
  description = "FOCUS_1_2_AWS (FOCUS 1.2 with AWS columns) or CUR2 (CUR 2.0)."
  type        = string
  default     = "FOCUS_1_2_AWS"
  validation {
    condition     = contains(["FOCUS_1_2_AWS", "CUR2"], var.export_type)
    error_message = "export_type must be FOCUS_1_2_AWS or CUR2."
  }
}

variable "platform_audience" {
  description = "Your tenant's audience (GET /credentials/platform-identity: audience). Only tokens the platform mints for your tenant carry it."
  type        = string
  validation {
    condition     = can(regex("^https://[^\\s]+/cvg-[0-9a-f]{32}$", var.platform_audience))
    error_message = "platform_audience is the platform's audience URL ending in /cvg-<32 hex>."
  }
}

variable "platform_subject" {
  description = "The platform's runner identity: the Google service account's numeric unique id (GET /credentials/platform-identity: subject)."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{10,30}$", var.platform_subject))
    error_message = "platform_subject is a numeric Google service account unique id."
  }
}

variable "prefix" {
  description = "S3 prefix of the export; the files land under <prefix>/<export_name>/."
  type        = string
  default     = "convergence"
  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$", var.prefix))
    error_message = "prefix is '/'-separated S3 safe characters, no leading or trailing '/'."
  }
}

variable "region" {
  description = "Region of the bucket (Data Exports are created in us-east-1 and deliver to any region)."
  type        = string
  default     = "us-east-1"
}

variable "role_name" {
  description = "Name of the IAM role the platform assumes."
  type        = string
  default     = "convergence-billing-reader"
}

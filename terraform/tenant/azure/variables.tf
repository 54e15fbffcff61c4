# Inputs, in alphabetical order. The platform_* values come from the platform:
# GET /credentials/platform-identity (per tenant) or the platform's `runner_identity` output.

variable "container_name" {
  description = "Blob container the export writes to (created here)."
  type        = string
  default     = "cost-exports"
  validation {
    condition     = can(regex("^[a-z0-9]+(-[a-z0-9]+)*$", var.container_name)) && length(var.container_name) >= 3 && length(var.container_name) <= 63
    error_message = "Container names are 3-63 lower-case letters, digits and single hyphens."
  }
}

variable "dataset_version" {
  description = "FocusCost version: 1.0, 1.0r2 or 1.2-preview."
  type        = string
  default     = "1.0r2"
  validation {
    condition     = contains(["1.0", "1.0r2", "1.2-preview"], var.dataset_version)
    error_message = "dataset_version must be 1.0, 1.0r2 or 1.2-preview."
  }
}

variable "directory" {
  description = "Directory (blob prefix) of the export inside the container."
  type        = string
  default     = "convergence"
}

variable "export_name" {
  description = "Name of the Cost Management export."
  type        = string
  default     = "convergence-focus"
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", var.export_name))
    error_message = "export_name is up to 64 letters, digits, '-' and '_'."
  }
}

variable "location" {
  description = "Azure region of the storage account."
  type        = string
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

variable "resource_group_name" {
  description = "Existing resource group for the storage account."
  type        = string
}

variable "storage_account_name" {
  description = "Storage account the export writes to (created here): 3-24 lower-case letters and digits."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "Storage account names are 3-24 lower-case letters and digits."
  }
}

variable "subscription_id" {
  description = "Subscription whose costs are exported (the export's scope)."
  type        = string
}

# The storage account and container the export writes to: HTTPS only, TLS 1.2,
# no anonymous access, no shared-key access (Entra only; the export writes with its identity).

resource "azurerm_storage_account" "exports" {
  #checkov:skip=CKV_AZURE_33:Queue logging: this account has no queues.
  #checkov:skip=CKV_AZURE_206:Geo-replication doubles cost for data Cost Management re-exports on demand.
  #checkov:skip=CKV2_AZURE_1:Customer-managed keys are the customer's choice; Microsoft-managed encryption is on.
  #checkov:skip=CKV2_AZURE_33:A private endpoint would shut out the platform, which reads from Google Cloud.
  #checkov:skip=CKV_AZURE_59:Public network access is how the platform reaches the container; Entra RBAC scopes it.
  #checkov:skip=CKV_AZURE_35:Default-deny network rules would shut out the platform (no fixed egress IPs).
  #checkov:skip=CKV2_AZURE_41:No SAS is issued: shared-key access (and so SAS signing) is disabled.
  name                            = var.storage_account_name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  shared_access_key_enabled       = false
  local_user_enabled              = false
  default_to_oauth_authentication = true

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  sas_policy {
    expiration_period = "1.00:00:00"
  }
}

resource "azurerm_storage_container" "exports" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging would need a Log Analytics workspace the customer may not have.
  name                  = var.container_name
  storage_account_id    = azurerm_storage_account.exports.id
  container_access_type = "private"
}

locals {
  # The role assignment's scope: this container only, not the account.
  container_scope = "${azurerm_storage_account.exports.id}/blobServices/default/containers/${azurerm_storage_container.exports.name}"
}

# Outputs, in alphabetical order: what to send the platform (POST /credentials, /provider-configs).

output "credential" {
  description = "The FEDERATED_CREDENTIAL credential's `credentials` object."
  value = {
    tenant_id = azuread_service_principal.reader.application_tenant_id
    client_id = azuread_application.reader.client_id
  }
}

output "provider_config" {
  description = "The `azure` object of the AZURE provider config."
  value = {
    storage_account = azurerm_storage_account.exports.name
    container       = azurerm_storage_container.exports.name
    directory       = var.directory
    export_name     = var.export_name
    dataset_version = var.dataset_version
  }
}

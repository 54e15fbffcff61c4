# The Entra app the platform signs in as: no secret, one federated identity credential
# trusting the platform's Google runner identity for your tenant's audience only
# (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-create-trust),
# and read access to the export's container only.

resource "azuread_application" "reader" {
  display_name     = "convergence-billing-reader"
  sign_in_audience = "AzureADMyOrg"
}

resource "azuread_service_principal" "reader" {
  client_id = azuread_application.reader.client_id
}

resource "azuread_application_federated_identity_credential" "platform" {
  #checkov:skip=CKV_AZURE_249:A GitHub Actions rule; the issuer here is Google, pinned with its subject and this tenant's audience.
  application_id = azuread_application.reader.id
  display_name   = "convergence-google-runner"
  description    = "The Convergence platform's runner (a Google service account), for this tenant's audience."
  issuer         = "https://accounts.google.com"
  subject        = var.platform_subject
  audiences      = [var.platform_audience]
}

resource "azurerm_role_assignment" "platform_reads" {
  scope                = local.container_scope
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azuread_service_principal.reader.object_id
}

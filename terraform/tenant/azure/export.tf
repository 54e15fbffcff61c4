# The Cost Management export: FocusCost (actual and amortized cost in one dataset),
# daily, Parquet, partitioned. azurerm has no FocusCost export, so azapi calls the API:
# https://learn.microsoft.com/rest/api/cost-management/exports/create-or-update

resource "azapi_resource" "focus_export" {
  type      = "Microsoft.CostManagement/exports@2025-03-01"
  name      = var.export_name
  parent_id = "/subscriptions/${var.subscription_id}"
  location  = "global"

  identity {
    type = "SystemAssigned"
  }

  body = {
    properties = {
      format                = "Parquet"
      compressionMode       = "snappy"
      partitionData         = true
      dataOverwriteBehavior = "OverwritePreviousReport"
      definition = {
        type      = "FocusCost"
        timeframe = "MonthToDate"
        dataSet = {
          granularity = "Daily"
          configuration = {
            dataVersion = var.dataset_version
          }
        }
      }
      deliveryInfo = {
        destination = {
          type           = "AzureBlob"
          resourceId     = azurerm_storage_account.exports.id
          container      = azurerm_storage_container.exports.name
          rootFolderPath = var.directory
        }
      }
      schedule = {
        status     = "Active"
        recurrence = "Daily"
        recurrencePeriod = {
          from = "2026-01-01T00:00:00Z"
          to   = "2036-01-01T00:00:00Z"
        }
      }
    }
  }
  response_export_values = ["identity.principalId"]
}

# The export writes with its own managed identity (shared keys are disabled).
resource "azurerm_role_assignment" "export_writes" {
  scope                = local.container_scope
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azapi_resource.focus_export.output.identity.principalId
}

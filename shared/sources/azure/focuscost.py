"""The columns of Cost Management FocusCost exports, per dataset version, and their types.

Sources (column lists and types):
- FocusCost 1.0 and its x_* columns: microsoft/finops-toolkit docs-mslearn/focus/metadata.md
  (learn.microsoft.com/cloud-computing/finops/focus/metadata).
- 1.0r2: learn.microsoft.com/azure/cost-management-billing/dataset-schema/cost-usage-details-focus
  ("the only change in this release is that all date columns now include seconds":
  1.0 writes "2024-01-01T00:00Z", 1.0r2 "2024-01-01T00:00:00Z").
- 1.2-preview (June 2025): the same page, "Version 1.2-preview": the FOCUS 1.2 columns
  (CapacityReservationId/Status, still empty; CommitmentDiscountQuantity/Unit; InvoiceId;
  PricingCurrency and PricingCurrency* prices; ServiceSubcategory; SkuMeter; SkuPriceDetails)
  beside the 1.0 columns and Microsoft's x_* columns.
"""

from __future__ import annotations

from typing import Literal

ColumnType = Literal["STRING", "NUMERIC", "TIMESTAMP", "BOOL"]
VERSIONS = ("1.0", "1.0r2", "1.2-preview")

# FOCUS columns of FocusCost 1.0 / 1.0r2 (Microsoft leaves AvailabilityZone out).
FOCUS_1_0: dict[str, ColumnType] = {
    "BilledCost": "NUMERIC",
    "BillingAccountId": "STRING",
    "BillingAccountName": "STRING",
    "BillingAccountType": "STRING",
    "BillingCurrency": "STRING",
    "BillingPeriodEnd": "TIMESTAMP",
    "BillingPeriodStart": "TIMESTAMP",
    "ChargeCategory": "STRING",
    "ChargeClass": "STRING",
    "ChargeDescription": "STRING",
    "ChargeFrequency": "STRING",
    "ChargePeriodEnd": "TIMESTAMP",
    "ChargePeriodStart": "TIMESTAMP",
    "CommitmentDiscountCategory": "STRING",
    "CommitmentDiscountId": "STRING",
    "CommitmentDiscountName": "STRING",
    "CommitmentDiscountStatus": "STRING",
    "CommitmentDiscountType": "STRING",
    "ConsumedQuantity": "NUMERIC",
    "ConsumedUnit": "STRING",
    "ContractedCost": "NUMERIC",
    "ContractedUnitPrice": "NUMERIC",
    "EffectiveCost": "NUMERIC",
    "InvoiceIssuerName": "STRING",
    "ListCost": "NUMERIC",
    "ListUnitPrice": "NUMERIC",
    "PricingCategory": "STRING",
    "PricingQuantity": "NUMERIC",
    "PricingUnit": "STRING",
    "ProviderName": "STRING",
    "PublisherName": "STRING",
    "RegionId": "STRING",
    "RegionName": "STRING",
    "ResourceId": "STRING",
    "ResourceName": "STRING",
    "ResourceType": "STRING",
    "ServiceCategory": "STRING",
    "ServiceName": "STRING",
    "SkuId": "STRING",
    "SkuPriceId": "STRING",
    "SubAccountId": "STRING",
    "SubAccountName": "STRING",
    "SubAccountType": "STRING",
    "Tags": "STRING",  # a JSON object, kept as its text
}
# Columns FocusCost 1.2-preview adds (FOCUS 1.2).
FOCUS_1_2_ADDED: dict[str, ColumnType] = {
    "CapacityReservationId": "STRING",
    "CapacityReservationStatus": "STRING",
    "CommitmentDiscountQuantity": "NUMERIC",
    "CommitmentDiscountUnit": "STRING",
    "InvoiceId": "STRING",
    "PricingCurrency": "STRING",
    "PricingCurrencyContractedUnitPrice": "NUMERIC",
    "PricingCurrencyEffectiveCost": "NUMERIC",
    "PricingCurrencyListUnitPrice": "NUMERIC",
    "ServiceSubcategory": "STRING",
    "SkuMeter": "STRING",
    "SkuPriceDetails": "STRING",  # a JSON object, kept as its text
}
# Microsoft's own columns (x_*), kept in the raw table as they are.
MICROSOFT_X: dict[str, ColumnType] = {
    "x_AccountId": "STRING",
    "x_AccountName": "STRING",
    "x_AccountOwnerId": "STRING",
    "x_BilledCostInUsd": "NUMERIC",
    "x_BilledUnitPrice": "NUMERIC",
    "x_BillingAccountId": "STRING",
    "x_BillingAccountName": "STRING",
    "x_BillingExchangeRate": "NUMERIC",
    "x_BillingExchangeRateDate": "TIMESTAMP",
    "x_BillingProfileId": "STRING",
    "x_BillingProfileName": "STRING",
    "x_ContractedCostInUsd": "NUMERIC",
    "x_CostAllocationRuleName": "STRING",
    "x_CostCenter": "STRING",
    "x_CustomerId": "STRING",
    "x_CustomerName": "STRING",
    "x_EffectiveCostInUsd": "NUMERIC",
    "x_EffectiveUnitPrice": "NUMERIC",
    "x_InvoiceId": "STRING",
    "x_InvoiceIssuerId": "STRING",
    "x_InvoiceSectionId": "STRING",
    "x_InvoiceSectionName": "STRING",
    "x_ListCostInUsd": "NUMERIC",
    "x_PartnerCreditApplied": "STRING",
    "x_PartnerCreditRate": "STRING",
    "x_PricingBlockSize": "NUMERIC",
    "x_PricingCurrency": "STRING",
    "x_PricingSubcategory": "STRING",
    "x_PricingUnitDescription": "STRING",
    "x_PublisherCategory": "STRING",
    "x_PublisherId": "STRING",
    "x_ResellerId": "STRING",
    "x_ResellerName": "STRING",
    "x_ResourceGroupName": "STRING",
    "x_ResourceType": "STRING",
    "x_ServicePeriodEnd": "TIMESTAMP",
    "x_ServicePeriodStart": "TIMESTAMP",
    "x_SkuDescription": "STRING",
    "x_SkuDetails": "STRING",  # a JSON object, kept as its text
    "x_SkuIsCreditEligible": "BOOL",
    "x_SkuMeterCategory": "STRING",
    "x_SkuMeterId": "STRING",
    "x_SkuMeterName": "STRING",
    "x_SkuMeterSubcategory": "STRING",
    "x_SkuOfferId": "STRING",
    "x_SkuOrderId": "STRING",
    "x_SkuOrderName": "STRING",
    "x_SkuPartNumber": "STRING",
    "x_SkuRegion": "STRING",
    "x_SkuServiceFamily": "STRING",
    "x_SkuTerm": "NUMERIC",
    "x_SkuTier": "STRING",
}

# Every column the raw table keeps, in its order (a union over the versions).
ALL_COLUMNS: dict[str, ColumnType] = {**FOCUS_1_0, **FOCUS_1_2_ADDED, **MICROSOFT_X}

# What the mapping cannot do without: a file missing one of these fails its run.
_REQUIRED_1_0 = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ProviderName",
    "ServiceCategory",
    "ServiceName",
)
REQUIRED: dict[str, tuple[str, ...]] = {
    "1.0": _REQUIRED_1_0,
    "1.0r2": _REQUIRED_1_0,
    "1.2-preview": (*_REQUIRED_1_0, "ServiceSubcategory", "PricingCurrency"),
}


def version_columns(version: str) -> dict[str, ColumnType]:
    """The columns a FocusCost export of `version` writes, in Microsoft's order."""
    if version == "1.2-preview":
        return {**FOCUS_1_0, **FOCUS_1_2_ADDED, **MICROSOFT_X}
    return {**FOCUS_1_0, **MICROSOFT_X}

-- Azure Cost Management FocusCost (1.0, 1.0r2, 1.2-preview) -> FOCUS 1.2 rows in focus_cost.
-- One FOCUS row per export row; money is copied, never recomputed, so each billing
-- period's SUM(BilledCost) equals the export's own. Column by column: docs/sources/azure.md.
-- The loader (shared/sources/azure/mapping.py) drops these comment lines before sending.
-- sqlcheck: param pipeline_id STRING
-- sqlcheck: param run_id STRING
-- sqlcheck: param run_date DATE
-- sqlcheck: param range_start DATE
-- sqlcheck: param range_end DATE
-- sqlcheck: table {raw} tenant.azure_focus_raw
-- sqlcheck: table {focus} tenant.focus_cost
INSERT INTO {focus} (
  BilledCost, BillingAccountId, BillingAccountName, BillingAccountType, BillingCurrency,
  BillingPeriodEnd, BillingPeriodStart, CapacityReservationId, CapacityReservationStatus,
  ChargeCategory, ChargeClass, ChargeDescription, ChargeFrequency, ChargePeriodEnd,
  ChargePeriodStart, CommitmentDiscountCategory, CommitmentDiscountId, CommitmentDiscountName,
  CommitmentDiscountQuantity, CommitmentDiscountStatus, CommitmentDiscountType,
  CommitmentDiscountUnit, ConsumedQuantity, ConsumedUnit, ContractedCost, ContractedUnitPrice,
  EffectiveCost, InvoiceId, InvoiceIssuerName, ListCost, ListUnitPrice, PricingCategory,
  PricingCurrency, PricingCurrencyContractedUnitPrice, PricingCurrencyEffectiveCost,
  PricingCurrencyListUnitPrice, PricingQuantity, PricingUnit, ProviderName, PublisherName,
  RegionId, RegionName, ResourceId, ResourceName, ResourceType, ServiceCategory, ServiceName,
  ServiceSubcategory, SkuId, SkuMeter, SkuPriceDetails, SkuPriceId, SubAccountId,
  SubAccountName, SubAccountType, Tags,
  x_focus_version, x_tenant_id, x_pipeline_id, x_credential_id, x_run_date, x_run_id,
  x_ingested_at, x_source_file,
  x_ResourceGroupName, x_ResourceType, x_SkuDescription, x_provider_columns
)
SELECT
  r.BilledCost,
  r.BillingAccountId,
  r.BillingAccountName,
  r.BillingAccountType,
  r.BillingCurrency,
  r.BillingPeriodEnd,
  r.BillingPeriodStart,
  -- 1.2-preview only (and still empty there); NULL from 1.0 / 1.0r2.
  r.CapacityReservationId,
  r.CapacityReservationStatus,
  r.ChargeCategory,
  r.ChargeClass,
  -- Microsoft leaves it empty on unused savings plan hours and charges without a SKU
  -- (conformance summary: "replace with computed alternative"): the SKU's description,
  -- else what the row is.
  COALESCE(
    r.ChargeDescription,
    r.x_SkuDescription,
    CONCAT(
      IFNULL(r.CommitmentDiscountName, r.ServiceName),
      IF(r.CommitmentDiscountStatus = 'Unused', ' (unused commitment)', '')
    )
  ),
  r.ChargeFrequency,
  r.ChargePeriodEnd,
  r.ChargePeriodStart,
  r.CommitmentDiscountCategory,
  r.CommitmentDiscountId,
  r.CommitmentDiscountName,
  r.CommitmentDiscountQuantity,
  r.CommitmentDiscountStatus,
  r.CommitmentDiscountType,
  r.CommitmentDiscountUnit,
  r.ConsumedQuantity,
  r.ConsumedUnit,
  r.ContractedCost,
  r.ContractedUnitPrice,
  r.EffectiveCost,
  -- 1.0 carries the invoice number as x_InvoiceId; 1.2-preview as InvoiceId.
  COALESCE(r.InvoiceId, r.x_InvoiceId),
  r.InvoiceIssuerName,
  r.ListCost,
  r.ListUnitPrice,
  r.PricingCategory,
  p.pricing_currency,
  -- 1.0 has prices in the pricing currency only through x_BillingExchangeRate; the
  -- pricing-currency figures are filled only where both currencies are the same
  -- (then they are the billing figures), never by dividing money.
  COALESCE(r.PricingCurrencyContractedUnitPrice, IF(p.same_currency, r.ContractedUnitPrice, NULL)),
  COALESCE(r.PricingCurrencyEffectiveCost, IF(p.same_currency, r.EffectiveCost, NULL)),
  COALESCE(r.PricingCurrencyListUnitPrice, IF(p.same_currency, r.ListUnitPrice, NULL)),
  r.PricingQuantity,
  r.PricingUnit,
  r.ProviderName,
  -- Microsoft leaves PublisherName empty on reservation usage and purchases and on unused
  -- savings plan hours; its conformance summary says to read "Microsoft" there.
  COALESCE(r.PublisherName, 'Microsoft'),
  r.RegionId,
  r.RegionName,
  r.ResourceId,
  r.ResourceName,
  r.ResourceType,
  r.ServiceCategory,
  r.ServiceName,
  -- FOCUS 1.1 added ServiceSubcategory; 1.0 exports lack it: "Other (<category>)" is
  -- the FOCUS value for a service of a known category and unknown subcategory.
  COALESCE(r.ServiceSubcategory, CONCAT('Other (', r.ServiceCategory, ')')),
  -- Microsoft writes "-2" or "Unassigned" where it has no value (conformance summary).
  IF(r.SkuId IN ('-2', 'Unassigned'), NULL, r.SkuId),
  COALESCE(r.SkuMeter, r.x_SkuMeterName),
  r.SkuPriceDetails,
  IF(r.SkuPriceId IN ('-2', 'Unassigned'), NULL, r.SkuPriceId),
  IF(r.SubAccountId IN ('-2', 'Unassigned'), NULL, r.SubAccountId),
  IF(r.SubAccountId IN ('-2', 'Unassigned'), NULL, r.SubAccountName),
  IF(r.SubAccountId IN ('-2', 'Unassigned'), NULL, r.SubAccountType),
  -- A JSON object; an empty cell is no tags.
  NULLIF(r.Tags, ''),
  '1.2',
  r.x_tenant_id,
  r.x_pipeline_id,
  r.x_credential_id,
  @run_date,
  @run_id,
  CURRENT_TIMESTAMP(),
  r.x_source_file,
  -- Microsoft's own columns (issue 18: "provider columns are kept as x_*"): the three an
  -- Azure FinOps user groups by most as columns, and every one of them, as delivered, in
  -- one JSON object (read with JSON_VALUE(x_provider_columns, '$.x_SkuMeterCategory')).
  r.x_ResourceGroupName,
  r.x_ResourceType,
  r.x_SkuDescription,
  -- Each field is named (AS): the emulator does not name a field after its column path.
  TO_JSON_STRING(STRUCT(
    r.x_AccountId AS x_AccountId, r.x_AccountName AS x_AccountName,
    r.x_AccountOwnerId AS x_AccountOwnerId, r.x_BilledCostInUsd AS x_BilledCostInUsd,
    r.x_BilledUnitPrice AS x_BilledUnitPrice, r.x_BillingAccountId AS x_BillingAccountId,
    r.x_BillingAccountName AS x_BillingAccountName,
    r.x_BillingExchangeRate AS x_BillingExchangeRate,
    r.x_BillingExchangeRateDate AS x_BillingExchangeRateDate,
    r.x_BillingProfileId AS x_BillingProfileId, r.x_BillingProfileName AS x_BillingProfileName,
    r.x_ContractedCostInUsd AS x_ContractedCostInUsd,
    r.x_CostAllocationRuleName AS x_CostAllocationRuleName, r.x_CostCenter AS x_CostCenter,
    r.x_CustomerId AS x_CustomerId, r.x_CustomerName AS x_CustomerName,
    r.x_EffectiveCostInUsd AS x_EffectiveCostInUsd,
    r.x_EffectiveUnitPrice AS x_EffectiveUnitPrice, r.x_InvoiceId AS x_InvoiceId,
    r.x_InvoiceIssuerId AS x_InvoiceIssuerId, r.x_InvoiceSectionId AS x_InvoiceSectionId,
    r.x_InvoiceSectionName AS x_InvoiceSectionName, r.x_ListCostInUsd AS x_ListCostInUsd,
    r.x_PartnerCreditApplied AS x_PartnerCreditApplied,
    r.x_PartnerCreditRate AS x_PartnerCreditRate, r.x_PricingBlockSize AS x_PricingBlockSize,
    r.x_PricingCurrency AS x_PricingCurrency, r.x_PricingSubcategory AS x_PricingSubcategory,
    r.x_PricingUnitDescription AS x_PricingUnitDescription,
    r.x_PublisherCategory AS x_PublisherCategory, r.x_PublisherId AS x_PublisherId,
    r.x_ResellerId AS x_ResellerId, r.x_ResellerName AS x_ResellerName,
    r.x_ResourceGroupName AS x_ResourceGroupName, r.x_ResourceType AS x_ResourceType,
    r.x_ServicePeriodEnd AS x_ServicePeriodEnd, r.x_ServicePeriodStart AS x_ServicePeriodStart,
    r.x_SkuDescription AS x_SkuDescription, r.x_SkuDetails AS x_SkuDetails,
    r.x_SkuIsCreditEligible AS x_SkuIsCreditEligible,
    r.x_SkuMeterCategory AS x_SkuMeterCategory, r.x_SkuMeterId AS x_SkuMeterId,
    r.x_SkuMeterName AS x_SkuMeterName, r.x_SkuMeterSubcategory AS x_SkuMeterSubcategory,
    r.x_SkuOfferId AS x_SkuOfferId, r.x_SkuOrderId AS x_SkuOrderId,
    r.x_SkuOrderName AS x_SkuOrderName, r.x_SkuPartNumber AS x_SkuPartNumber,
    r.x_SkuRegion AS x_SkuRegion, r.x_SkuServiceFamily AS x_SkuServiceFamily,
    r.x_SkuTerm AS x_SkuTerm, r.x_SkuTier AS x_SkuTier
  ))
FROM {raw} AS r
CROSS JOIN UNNEST([STRUCT(
  COALESCE(r.PricingCurrency, r.x_PricingCurrency, r.BillingCurrency) AS pricing_currency,
  COALESCE(r.PricingCurrency, r.x_PricingCurrency, r.BillingCurrency) = r.BillingCurrency
    AS same_currency
)]) AS p
WHERE r.x_pipeline_id = @pipeline_id
  AND r.ChargePeriodStart >= TIMESTAMP(@range_start)
  AND r.ChargePeriodStart < TIMESTAMP(DATE_ADD(@range_end, INTERVAL 1 DAY))

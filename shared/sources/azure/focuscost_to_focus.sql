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
  -- Keys as literals: the emulator lower-cases STRUCT field names on INSERT, and
  -- JSONPath is case-sensitive. Money as decimal text: a NUMERIC with 9 decimals is not
  -- a JSON number without loss (BigQuery refuses it), and its text is exact.
  TO_JSON_STRING(JSON_OBJECT(
    'x_AccountId', r.x_AccountId, 'x_AccountName', r.x_AccountName,
    'x_AccountOwnerId', r.x_AccountOwnerId,
    'x_BilledCostInUsd', CAST(r.x_BilledCostInUsd AS STRING),
    'x_BilledUnitPrice', CAST(r.x_BilledUnitPrice AS STRING),
    'x_BillingAccountId', r.x_BillingAccountId, 'x_BillingAccountName', r.x_BillingAccountName,
    'x_BillingExchangeRate', CAST(r.x_BillingExchangeRate AS STRING),
    'x_BillingExchangeRateDate', r.x_BillingExchangeRateDate,
    'x_BillingProfileId', r.x_BillingProfileId, 'x_BillingProfileName', r.x_BillingProfileName,
    'x_ContractedCostInUsd', CAST(r.x_ContractedCostInUsd AS STRING),
    'x_CostAllocationRuleName', r.x_CostAllocationRuleName, 'x_CostCenter', r.x_CostCenter,
    'x_CustomerId', r.x_CustomerId, 'x_CustomerName', r.x_CustomerName,
    'x_EffectiveCostInUsd', CAST(r.x_EffectiveCostInUsd AS STRING),
    'x_EffectiveUnitPrice', CAST(r.x_EffectiveUnitPrice AS STRING),
    'x_InvoiceId', r.x_InvoiceId, 'x_InvoiceIssuerId', r.x_InvoiceIssuerId,
    'x_InvoiceSectionId', r.x_InvoiceSectionId, 'x_InvoiceSectionName', r.x_InvoiceSectionName,
    'x_ListCostInUsd', CAST(r.x_ListCostInUsd AS STRING),
    'x_PartnerCreditApplied', r.x_PartnerCreditApplied,
    'x_PartnerCreditRate', r.x_PartnerCreditRate,
    'x_PricingBlockSize', CAST(r.x_PricingBlockSize AS STRING),
    'x_PricingCurrency', r.x_PricingCurrency, 'x_PricingSubcategory', r.x_PricingSubcategory,
    'x_PricingUnitDescription', r.x_PricingUnitDescription,
    'x_PublisherCategory', r.x_PublisherCategory, 'x_PublisherId', r.x_PublisherId,
    'x_ResellerId', r.x_ResellerId, 'x_ResellerName', r.x_ResellerName,
    'x_ResourceGroupName', r.x_ResourceGroupName, 'x_ResourceType', r.x_ResourceType,
    'x_ServicePeriodEnd', r.x_ServicePeriodEnd, 'x_ServicePeriodStart', r.x_ServicePeriodStart,
    'x_SkuDescription', r.x_SkuDescription, 'x_SkuDetails', r.x_SkuDetails,
    'x_SkuIsCreditEligible', r.x_SkuIsCreditEligible,
    'x_SkuMeterCategory', r.x_SkuMeterCategory, 'x_SkuMeterId', r.x_SkuMeterId,
    'x_SkuMeterName', r.x_SkuMeterName, 'x_SkuMeterSubcategory', r.x_SkuMeterSubcategory,
    'x_SkuOfferId', r.x_SkuOfferId, 'x_SkuOrderId', r.x_SkuOrderId,
    'x_SkuOrderName', r.x_SkuOrderName, 'x_SkuPartNumber', r.x_SkuPartNumber,
    'x_SkuRegion', r.x_SkuRegion, 'x_SkuServiceFamily', r.x_SkuServiceFamily,
    'x_SkuTerm', CAST(r.x_SkuTerm AS STRING), 'x_SkuTier', r.x_SkuTier
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

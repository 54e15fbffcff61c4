-- A native FOCUS 1.0 / 1.2 export -> focus_cost (FOCUS 1.2). {source} is the export
-- already given every FOCUS 1.2 column by the entry point (shared/sources/focus_native/
-- native.py): a column the export lacks (1.0 has no PricingCurrency*, InvoiceId,
-- BillingAccountType, SubAccountType, ServiceSubcategory, ...) arrives as NULL, and the
-- rules below fill the mandatory ones from the columns 1.0 has. Columns the provider adds
-- (x_*) are kept in x_provider_columns as one JSON object. Column by column, and what
-- changes from 1.0 to 1.2: docs/sources/focus-versions.md.
-- Money is passed through unchanged: the export's own NUMERIC BilledCost is the total
-- the check reconciles to, exactly.
-- sqlcheck: allow a template: {source} is a subquery the entry point builds from the export's own columns
SELECT
  s.AvailabilityZone,
  s.BilledCost,
  s.BillingAccountId,
  s.BillingAccountName,
  s.BillingAccountType,
  s.BillingCurrency,
  s.BillingPeriodEnd,
  s.BillingPeriodStart,
  s.CapacityReservationId,
  s.CapacityReservationStatus,
  s.ChargeCategory,
  s.ChargeClass,
  s.ChargeDescription,
  -- Mandatory since 1.0 but missing from Google's preview export: a usage row is
  -- usage-based, anything else (tax, adjustments, purchases) one-time.
  IFNULL(s.ChargeFrequency, IF(s.ChargeCategory = 'Usage', 'Usage-Based', 'One-Time'))
    AS ChargeFrequency,
  s.ChargePeriodEnd,
  s.ChargePeriodStart,
  s.CommitmentDiscountCategory,
  s.CommitmentDiscountId,
  s.CommitmentDiscountName,
  s.CommitmentDiscountQuantity,
  s.CommitmentDiscountStatus,
  s.CommitmentDiscountType,
  s.CommitmentDiscountUnit,
  s.ConsumedQuantity,
  s.ConsumedUnit,
  s.ContractedCost,
  s.ContractedUnitPrice,
  s.EffectiveCost,
  s.InvoiceId,
  -- 1.0 has InvoiceIssuerName; an export without it is invoiced by its provider.
  IFNULL(s.InvoiceIssuerName, s.ProviderName) AS InvoiceIssuerName,
  s.ListCost,
  s.ListUnitPrice,
  s.PricingCategory,
  -- New in 1.2: without a pricing currency, prices are in the billing currency.
  IFNULL(s.PricingCurrency, s.BillingCurrency) AS PricingCurrency,
  IFNULL(s.PricingCurrencyContractedUnitPrice, s.ContractedUnitPrice)
    AS PricingCurrencyContractedUnitPrice,
  IFNULL(s.PricingCurrencyEffectiveCost, s.EffectiveCost) AS PricingCurrencyEffectiveCost,
  IFNULL(s.PricingCurrencyListUnitPrice, s.ListUnitPrice) AS PricingCurrencyListUnitPrice,
  s.PricingQuantity,
  s.PricingUnit,
  s.ProviderName,
  s.PublisherName,
  s.RegionId,
  s.RegionName,
  s.ResourceId,
  s.ResourceName,
  s.ResourceType,
  IFNULL(s.ServiceCategory, 'Other') AS ServiceCategory,
  s.ServiceName,
  -- New in 1.1: an export without it gets the category's "Other (...)" value.
  IFNULL(s.ServiceSubcategory, CONCAT('Other (', IFNULL(s.ServiceCategory, 'Other'), ')'))
    AS ServiceSubcategory,
  s.SkuId,
  s.SkuMeter,
  s.SkuPriceDetails,
  s.SkuPriceId,
  s.SubAccountId,
  s.SubAccountName,
  s.SubAccountType,
  s.Tags,
  -- Lineage: the export row's own export time where it has one, the provider's columns.
  s.x_ExportTime AS x_export_time,
  s.x_provider_columns
FROM {source} AS s

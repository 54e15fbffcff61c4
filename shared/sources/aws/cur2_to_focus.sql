-- CUR 2.0 (aws_cur2_raw) -> FOCUS 1.2 (focus_cost) for one config and billing period.
-- Follows the FinOps Foundation's AWS conversion configs,
-- github.com/finopsfoundation/focus_converters @ c799bf96 (June 2024),
-- focus_converter_base/focus_converter/conversion_configs/aws-cur/*.yaml
-- (file named per column below), with their stale points fixed:
--   * CUR 2.0 spells ARN columns *_a_r_n (the configs read *_arn: CommitmentDiscountId came out NULL);
--   * FOCUS 1.2 has ChargeCategory Credit (the configs map Credit to Adjustment, 1.0-preview);
--   * FOCUS 1.2 ChargeClass: Correction for refunds (the configs have no ChargeClass rule);
--   * resource_tags is a map (landed as a JSON object) and becomes Tags as is;
--   * FOCUS 1.2 rules the configs predate (the gate, ../shared/tools/focus_gate.py): a Purchase's
--     EffectiveCost is 0, so RIFee / SavingsPlanRecurringFee become Usage rows with status Unused
--     carrying the unused commitment; InvoiceId is provisional {payer}/{YYYYMM} until AWS fills
--     bill_invoice_id; InvoiceIssuerName is 'AWS' for Amazon's own invoicing entities;
--     PricingUnit/ConsumedUnit in FOCUS unit format ('Hrs' -> 'Hours', 'GB-Mo' -> 'GB-Months').
-- Column by column: docs/sources/aws.md.
-- sqlcheck: param pipeline_id STRING
-- sqlcheck: param billing_period DATE
-- sqlcheck: param run_id STRING
-- sqlcheck: param run_date DATE
-- sqlcheck: table {raw} tenant.aws_cur2_raw
-- sqlcheck: table {focus} tenant.focus_cost
INSERT INTO {focus} (
  AvailabilityZone, BilledCost, BillingAccountId, BillingAccountName, BillingCurrency,
  BillingPeriodEnd, BillingPeriodStart, ChargeCategory, ChargeClass, ChargeDescription,
  ChargeFrequency, ChargePeriodEnd, ChargePeriodStart, CommitmentDiscountCategory,
  CommitmentDiscountId, CommitmentDiscountStatus, CommitmentDiscountType, ConsumedQuantity,
  ConsumedUnit, ContractedCost, ContractedUnitPrice, EffectiveCost, InvoiceId, InvoiceIssuerName,
  ListCost, ListUnitPrice, PricingCategory, PricingCurrency, PricingCurrencyContractedUnitPrice,
  PricingCurrencyEffectiveCost, PricingCurrencyListUnitPrice, PricingQuantity, PricingUnit,
  ProviderName, PublisherName, RegionId, RegionName, ResourceId, ServiceCategory, ServiceName,
  ServiceSubcategory, SkuId, SkuMeter, SkuPriceId, SubAccountId, SubAccountName, SubAccountType,
  Tags, x_focus_version, x_billing_period, x_source_file, x_tenant_id, x_pipeline_id,
  x_credential_id, x_run_date, x_run_id, x_ingested_at
)
SELECT
  c.line_item_availability_zone,                                  -- availability_zone_S001
  c.billed,                                                       -- billed_cost_S001
  c.bill_payer_account_id,                                        -- billing_account_id_S001
  c.bill_payer_account_name,
  c.line_item_currency_code,                                      -- billing_currency_S001
  c.bill_billing_period_end_date,                                 -- billing_period_end_S001
  c.bill_billing_period_start_date,                               -- billing_period_start_S001
  c.category,                                                     -- 1_charge_category_S001 (+ Credit)
  IF(c.bill_bill_type = 'Refund' OR c.line_item_line_item_type = 'Refund', 'Correction', NULL),
  c.line_item_line_item_description,                              -- charge_description_S001
  CASE
    WHEN c.line_item_line_item_type IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Recurring'
    WHEN c.category = 'Usage' THEN 'Usage-Based'
    ELSE 'One-Time'
  END,                                                            -- charge_frequency_S001 (reworked)
  c.line_item_usage_end_date,                                     -- charge_period_end_S001
  c.line_item_usage_start_date,                                   -- charge_period_start_S001
  CASE WHEN c.sp_arn IS NOT NULL THEN 'Spend' WHEN c.ri_arn IS NOT NULL THEN 'Usage' END,
  COALESCE(c.sp_arn, c.ri_arn),                                   -- commitment_discount_id_S001 (*_a_r_n)
  CASE
    WHEN c.line_item_line_item_type IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Unused'
    WHEN c.category = 'Usage' AND COALESCE(c.sp_arn, c.ri_arn) IS NOT NULL THEN 'Used'
  END,
  CASE WHEN c.sp_arn IS NOT NULL THEN 'Savings Plan' WHEN c.ri_arn IS NOT NULL THEN 'Reserved Instance' END,
  IF(c.usage_row, c.line_item_usage_amount, NULL),                -- consumed_quantity_S001
  IF(c.usage_row, c.focus_unit, NULL),                            -- consumed_unit_S001
  c.billed,
  IF(c.usage_row, c.line_item_unblended_rate, NULL),
  c.effective,                                                    -- effective_cost_S001
  -- bill_invoice_id is blank until the invoice is final: the provisional id is payer/month.
  -- FORMAT_TIMESTAMP formats in UTC when no zone is given (BigQuery's default); naming
  -- 'UTC' made the emulator format every row in Python, about 10x slower.
  IFNULL(NULLIF(c.bill_invoice_id, ''),
    CONCAT(c.bill_payer_account_id, '/', FORMAT_TIMESTAMP('%Y%m', c.bill_billing_period_start_date))),
  -- Amazon's own entities (Inc., EMEA SARL, India, ...) are the provider; a reseller keeps its name.
  IF(IFNULL(c.bill_invoicing_entity, 'Amazon Web Services') LIKE 'Amazon%'
    OR IFNULL(c.bill_invoicing_entity, '') LIKE 'AWS%', 'AWS', c.bill_invoicing_entity), -- invoice_issuer_S001
  c.list_cost,                                                    -- list_cost_S001 (the export's own cost)
  IF(c.usage_row, c.pricing_public_on_demand_rate, NULL),         -- list_unit_price_S001
  IF(c.category = 'Usage',
    CASE
      WHEN COALESCE(c.sp_arn, c.ri_arn) IS NOT NULL THEN 'Committed'
      WHEN c.pricing_purchase_option = 'Spot Instances' THEN 'Dynamic'
      ELSE 'Standard'
    END, NULL),                                                   -- pricing_category_S001
  c.line_item_currency_code,
  IF(c.usage_row, c.line_item_unblended_rate, NULL),
  c.effective,
  IF(c.usage_row, c.pricing_public_on_demand_rate, NULL),
  IF(c.usage_row, c.line_item_usage_amount, NULL),                -- pricing_quantity_S001
  IF(c.usage_row, c.focus_unit, NULL),                            -- pricing_unit_S001
  'AWS',                                                          -- provider_S001
  IF(c.bill_billing_entity = 'AWS Marketplace', IFNULL(c.line_item_legal_entity, 'AWS Marketplace'), 'AWS'),
  c.product_region_code,                                          -- region_S001
  CASE c.product_region_code
    WHEN 'us-east-1' THEN 'US East (N. Virginia)' WHEN 'us-east-2' THEN 'US East (Ohio)'
    WHEN 'us-west-1' THEN 'US West (N. California)' WHEN 'us-west-2' THEN 'US West (Oregon)'
    WHEN 'eu-west-1' THEN 'Europe (Ireland)' WHEN 'eu-central-1' THEN 'Europe (Frankfurt)'
    WHEN 'ap-southeast-2' THEN 'Asia Pacific (Sydney)' WHEN 'ap-northeast-1' THEN 'Asia Pacific (Tokyo)'
    ELSE c.product_region_code
  END,
  NULLIF(c.line_item_resource_id, ''),                            -- resource_id_S001
  c.service_category,                                             -- service_category_S001
  IFNULL(c.product_product_name, c.line_item_product_code),      -- service_name_S001
  CASE                                                            -- FOCUS 1.2 subcategories of the category
    WHEN c.line_item_product_code = 'AWSLambda' THEN 'Serverless Compute'
    WHEN c.line_item_product_code IN ('AmazonECS', 'AmazonEKS', 'AmazonECR', 'AmazonECRPublic') THEN 'Containers'
    WHEN c.line_item_product_code IN ('AmazonEC2', 'AmazonLightsail') THEN 'Virtual Machines'
    WHEN c.line_item_product_code IN ('AmazonS3', 'AmazonGlacier', 'AmazonS3GlacierDeepArchive') THEN 'Object Storage'
    WHEN c.line_item_product_code = 'AmazonEBS' THEN 'Block Storage'
    WHEN c.line_item_product_code IN ('AmazonEFS', 'AmazonFSx') THEN 'File Storage'
    WHEN c.line_item_product_code = 'AWSBackup' THEN 'Backup'
    WHEN c.line_item_product_code = 'AmazonRDS' THEN 'Relational Databases'
    WHEN c.line_item_product_code IN ('AmazonDynamoDB', 'AmazonDocDB', 'AmazonMCS') THEN 'NoSQL Databases'
    WHEN c.line_item_product_code IN ('AmazonElastiCache', 'AmazonMemoryDB') THEN 'Caching'
    WHEN c.line_item_product_code = 'AmazonRedshift' THEN 'Data Warehouses'
    WHEN c.line_item_product_code IN ('AmazonCloudWatch', 'AmazonGrafana', 'AmazonPrometheus') THEN 'Observability'
    ELSE CONCAT('Other (', c.service_category, ')')
  END,
  c.product_sku,                                                  -- sku_id_S001
  IF(c.usage_row, c.line_item_usage_type, NULL),
  IF(c.usage_row, IFNULL(c.pricing_rate_code, c.product_sku), NULL), -- sku_price_id_S001
  c.line_item_usage_account_id,                                   -- sub_account_id_S001
  c.line_item_usage_account_name,
  'Linked Account',
  c.resource_tags,
  '1.2',
  c.x_billing_period,
  CONCAT(c.x_manifest, '#', c.x_source_file),
  c.x_tenant_id,
  c.x_pipeline_id,
  c.x_credential_id,
  @run_date,
  @run_id,
  CURRENT_TIMESTAMP()
FROM (
  SELECT
    r.*,
    NULLIF(r.savings_plan_savings_plan_a_r_n, '') AS sp_arn,
    NULLIF(r.reservation_reservation_a_r_n, '') AS ri_arn,
    IFNULL(r.line_item_net_unblended_cost, r.line_item_unblended_cost) AS billed,
    r.line_item_line_item_type IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage') AS usage_row,
    CASE
      WHEN r.line_item_line_item_type = 'Tax' THEN 'Tax'
      -- A recurring fee row holds the period's unused commitment (its used part is amortized
      -- into the covered usage): FOCUS 1.2 shows that as Usage with status Unused.
      WHEN r.line_item_line_item_type IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Usage'
      WHEN r.line_item_line_item_type IN ('Fee', 'SavingsPlanUpfrontFee') THEN 'Purchase'
      WHEN r.line_item_line_item_type = 'Credit' THEN 'Credit'
      WHEN r.line_item_line_item_type = 'Refund' THEN 'Adjustment'
      WHEN r.line_item_line_item_type IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage',
        'SavingsPlanNegation', 'BundledDiscount', 'Discount', 'PrivateRateDiscount', 'EdpDiscount') THEN 'Usage'
      ELSE 'Adjustment'
    END AS category,
    -- EffectiveCost is amortized and net of negotiated discounts: each term reads the net_*
    -- column and falls back to the gross one when it is NULL (an account without a discount
    -- has no net_* columns in its export; the reader lands them as NULL). As the FinOps
    -- Foundation's CUR 2.0 -> FOCUS conversion and the CUR 2.0 data dictionary
    -- (https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2.html) describe.
    -- The unused Savings Plan commitment has no net column: it stays total - used.
    CASE r.line_item_line_item_type
      WHEN 'SavingsPlanCoveredUsage' THEN
        IFNULL(r.savings_plan_net_savings_plan_effective_cost, r.savings_plan_savings_plan_effective_cost)
      WHEN 'SavingsPlanRecurringFee' THEN r.savings_plan_total_commitment_to_date - r.savings_plan_used_commitment
      WHEN 'SavingsPlanNegation' THEN 0
      WHEN 'SavingsPlanUpfrontFee' THEN 0
      WHEN 'DiscountedUsage' THEN IFNULL(r.reservation_net_effective_cost, r.reservation_effective_cost)
      WHEN 'RIFee' THEN IFNULL(IFNULL(r.reservation_net_unused_amortized_upfront_fee_for_billing_period,
          r.reservation_unused_amortized_upfront_fee_for_billing_period), 0)
        + IFNULL(IFNULL(r.reservation_net_unused_recurring_fee, r.reservation_unused_recurring_fee), 0)
      -- FOCUS 1.2: a Purchase's EffectiveCost is 0 (EffectiveCost-C-005-C).
      WHEN 'Fee' THEN 0
      ELSE IFNULL(r.line_item_net_unblended_cost, r.line_item_unblended_cost)
    END AS effective,
    IF(r.line_item_line_item_type IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage'),
      IFNULL(r.pricing_public_on_demand_cost, r.line_item_unblended_cost),
      r.line_item_unblended_cost) AS list_cost,
    -- FOCUS unit format: plural time units, 'Hours' not 'Hrs', '<unit>-Months' not '<unit>-Mo'.
    REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(r.pricing_unit,
      r'Hrs$', 'Hours'), r'-Mo$', '-Months'),
      r'-(Second|Minute|Hour|Day|Month)$', r'-\1s') AS focus_unit,
    -- service_category_S001: service_categories.csv (the Foundation's aws_category_mapping.csv)
    CASE
      WHEN r.line_item_product_code IN ('AWSDeepRacer', 'AmazonA2I', 'AmazonCodeWhisperer', 'AmazonDevOpsGuru', 'AmazonEI',
        'AmazonForecast', 'AmazonFraudDetector', 'AmazonHealthLake', 'AmazonKendra', 'AmazonLex',
        'AmazonLookoutEquipment', 'AmazonLookoutMetrics', 'AmazonLookoutVision', 'AmazonMonitron',
        'AmazonOmics', 'AmazonPersonalize', 'AmazonPolly', 'AmazonRekognition', 'AmazonSageMaker',
        'AmazonTextract', 'comprehend', 'transcribe', 'translate') THEN 'AI and Machine Learning'
      WHEN r.line_item_product_code IN ('AWSCleanRooms', 'AWSDataExchange', 'AWSGlueElasticViews', 'AWSGlue', 'AWSLakeFormation',
        'AmazonAthena', 'AmazonCloudSearch', 'AmazonES', 'AmazonFinSpace',
        'AmazonKinesisAnalytics', 'AmazonKinesisFirehose', 'AmazonKinesis', 'AmazonMSK',
        'AmazonQuickSight', 'ElasticMapReduce', 'datapipeline') THEN 'Analytics'
      WHEN r.line_item_product_code IN ('A4B', 'AWSSupplyChain', 'AWSWickr', 'AWSWisdom', 'AmazonChimeBusinessCalling',
        'AmazonChimeCallMeAMCS', 'AmazonChimeCallMe', 'AmazonChimeDialInAMCS',
        'AmazonChimeDialin', 'AmazonChimeFeatures', 'AmazonChimeServices',
        'AmazonChimeVoiceConnector', 'AmazonChime', 'AmazonHoneycode', 'AmazonPinpoint',
        'AmazonSES', 'AmazonSWF', 'AmazonWAM', 'AmazonWorkDocs', 'AmazonWorkLink',
        'AmazonWorkMail', 'AmazonWorkSpacesWeb', 'Compute', 'ContactLensAmazonConnect',
        'CustomerProfiles') THEN 'Business Applications'
      WHEN r.line_item_product_code IN ('AWSAppRunner', 'AWSLambda', 'AWSOutposts', 'AmazonEC2', 'AmazonLightsail',
        'SimSpaceWeaver', 'VMwareCloudOnAWS', 'AmazonECRPublic', 'AmazonECR', 'AmazonECS',
        'AmazonEKS', 'AmazonAppStream') THEN 'Compute'
      WHEN r.line_item_product_code IN ('AmazonDocDB', 'AmazonDynamoDB', 'AmazonElastiCache', 'AmazonMCS', 'AmazonMemoryDB',
        'AmazonNeptune', 'AmazonRDS', 'AmazonRedshift', 'AmazonTimestream') THEN 'Databases'
      WHEN r.line_item_product_code IN ('AWSAmplify', 'AWSAppSync', 'AWSCodeArtifact', 'AWSCodeCommit', 'AWSCodeDeploy',
        'AWSCodePipeline', 'AWSDeviceFarm', 'CodeBuild', 'CodeCatalyst', 'CodeGuru') THEN 'Developer Tools'
      WHEN r.line_item_product_code IN ('AWSQueueService', 'AmazonMQ', 'AmazonMWAA', 'AmazonSNS', 'AmazonStates', 'AppFlow',
        'Amazon EventBridge', 'AWSAppFabric') THEN 'Integration'
      WHEN r.line_item_product_code IN ('AWSGreengrass', 'AWSIoT1Click', 'AWSIoTAnalytics', 'AWSIoTEvents', 'AWSIoTFleetWise',
        'AWSIoTSiteWise', 'AWSIoTThingsGraph', 'AWSIoT', 'IoTDeviceDefender',
        'IoTDeviceManagement', 'IoTTwinMaker') THEN 'Internet of Things'
      WHEN r.line_item_product_code IN ('AWSBudgets', 'AWSCostExplorer', 'AWSCloudFormation', 'AWSCloudTrail', 'AWSConfig',
        'AWSResilienceHub', 'AWSServiceCatalog', 'AWSSystemsManager', 'AmazonCloudWatch',
        'AmazonGrafana', 'AmazonPrometheus', 'OpsWorks', 'AWSBillingConductor') THEN 'Management and Governance'
      WHEN r.line_item_product_code IN ('AWSElementalMediaConvert', 'AWSElementalMediaLive', 'AWSElementalMediaPackage',
        'AWSElementalMediaStore', 'AWSElementalMediaTailor', 'AWSMediaConnect', 'AmazonETS',
        'AmazonIVS', 'AmazonKinesisVideo', 'nimble') THEN 'Media'
      WHEN r.line_item_product_code IN ('AWSApplicationMigrationSvc', 'AWSDataSync', 'AWSDatabaseMigrationSvc', 'AWSM2',
        'AWSTransfer') THEN 'Migration'
      WHEN r.line_item_product_code IN ('AWSCloudMap', 'AWSCloudWAN', 'AWSDataTransfer', 'AWSDirectConnect', 'AWSELB',
        'AWSGlobalAccelerator', 'AWSNetworkFirewall', 'AWSPrivate5G', 'AmazonApiGateway',
        'AmazonCloudFront', 'AmazonRoute53', 'AmazonVPC') THEN 'Networking'
      WHEN r.line_item_product_code IN ('AmazonManagedBlockchain', 'AmazonQLDB', 'AmazonBraket', 'AWSRoboMaker',
        'AWSGroundStation') THEN 'Other'
      WHEN r.line_item_product_code IN ('AWSCertificateManager', 'AWSDirectoryService', 'AWSFMS', 'AWSSecretsManager',
        'AWSSecurityHub', 'AWSShield', 'AmazonCognitoSync', 'AmazonCognito', 'AmazonDetective',
        'AmazonGuardDuty', 'AmazonInspectorV2', 'AmazonInspector', 'AmazonMacie',
        'AmazonSecurityLake', 'AmazonVerifiedPermissions', 'CloudHSM', 'auditmanager', 'awskms',
        'awswaf') THEN 'Security'
      WHEN r.line_item_product_code IN ('AWSBackup', 'AWSElasticDisasterRecovery', 'AWSStorageGatewayDeepArchive',
        'AWSStorageGateway', 'AmazonEBS', 'AmazonEFS', 'AmazonFSx', 'AmazonGlacier',
        'AmazonS3GlacierDeepArchive', 'AmazonS3', 'IngestionServiceSnowball', 'SnowballExtraDays') THEN 'Storage'
      ELSE 'Other'
    END AS service_category
  FROM {raw} AS r
  WHERE r.x_pipeline_id = @pipeline_id AND r.x_billing_period = @billing_period
) AS c

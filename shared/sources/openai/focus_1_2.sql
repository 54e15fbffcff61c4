-- OpenAI costs -> FOCUS 1.2 rows: one row per (day, project, line item) of the cost API.
-- Column by column: docs/sources/genai.md. Token quantities come from the completions
-- usage of the same day, project and model (line items read "<model>, <token type>").
-- sqlcheck: param pipeline_id STRING
-- sqlcheck: param date_from DATE
-- sqlcheck: param date_to DATE
-- sqlcheck: table {costs} tenant.openai_costs_raw
-- sqlcheck: table {usage} tenant.openai_usage_raw
WITH costs AS (
  SELECT
    c.*,
    TRIM(SPLIT(c.line_item, ',')[SAFE_OFFSET(0)]) AS model,
    LOWER(TRIM(SPLIT(c.line_item, ',')[SAFE_OFFSET(1)])) AS token_type
  FROM {costs} AS c
  WHERE c.x_pipeline_id = @pipeline_id
    AND DATE(c.bucket_start) BETWEEN @date_from AND @date_to
),
usage AS (
  SELECT
    DATE(u.bucket_start) AS usage_date,
    u.project_id,
    u.model,
    SUM(u.input_tokens - IFNULL(u.input_cached_tokens, 0)) AS uncached_input,
    SUM(u.input_cached_tokens) AS cached_input,
    SUM(u.output_tokens) AS output
  FROM {usage} AS u
  WHERE u.x_pipeline_id = @pipeline_id
    AND DATE(u.bucket_start) BETWEEN @date_from AND @date_to
  GROUP BY usage_date, u.project_id, u.model
),
joined AS (
  SELECT
    c.*,
    CASE c.token_type
      WHEN 'input' THEN u.uncached_input
      WHEN 'cached input' THEN u.cached_input
      WHEN 'output' THEN u.output
    END AS tokens
  FROM costs AS c
  LEFT JOIN usage AS u
    ON u.usage_date = DATE(c.bucket_start)
    AND u.project_id IS NOT DISTINCT FROM c.project_id
    AND u.model = c.model
)
SELECT
  j.amount AS BilledCost,
  -- No organisation id in the cost API: the tenant's provider config names the account.
  j.x_pipeline_id AS BillingAccountId,
  'OpenAI organization' AS BillingAccountName,
  j.currency AS BillingCurrency,
  -- OpenAI invoices per calendar month (UTC); the end is exclusive.
  TIMESTAMP(DATE_TRUNC(DATE(j.bucket_start), MONTH)) AS BillingPeriodStart,
  TIMESTAMP(DATE_ADD(DATE_TRUNC(DATE(j.bucket_start), MONTH), INTERVAL 1 MONTH)) AS BillingPeriodEnd,
  'Usage' AS ChargeCategory,
  CAST(NULL AS STRING) AS ChargeClass,
  j.line_item AS ChargeDescription,
  'Usage-Based' AS ChargeFrequency,
  j.bucket_start AS ChargePeriodStart,
  j.bucket_end AS ChargePeriodEnd,
  CAST(j.tokens AS NUMERIC) AS ConsumedQuantity,
  IF(j.tokens IS NULL, NULL, 'Tokens') AS ConsumedUnit,
  j.amount AS ContractedCost,
  j.amount AS EffectiveCost,
  'OpenAI' AS InvoiceIssuerName,
  -- A provisional invoice id, generated before the invoice (FOCUS 1.2 InvoiceId MAY):
  -- the account and its calendar-month billing period, as the GCP mapping does.
  CONCAT(j.x_pipeline_id, '/', FORMAT_DATE('%Y%m', DATE(j.bucket_start))) AS InvoiceId,
  j.amount AS ListCost,
  'Standard' AS PricingCategory,
  j.currency AS PricingCurrency,
  j.amount AS PricingCurrencyEffectiveCost,
  CAST(j.tokens AS NUMERIC) AS PricingQuantity,
  IF(j.tokens IS NULL, NULL, 'Tokens') AS PricingUnit,
  'OpenAI' AS ProviderName,
  'OpenAI' AS PublisherName,
  'AI and Machine Learning' AS ServiceCategory,
  'OpenAI API' AS ServiceName,
  'Generative AI' AS ServiceSubcategory,
  j.model AS SkuMeter,
  j.project_id AS SubAccountId,
  j.project_id AS SubAccountName,
  IF(j.project_id IS NULL, NULL, 'Project') AS SubAccountType,
  j.model AS x_model,
  j.token_type AS x_token_type,
  j.x_tenant_id,
  j.x_pipeline_id,
  j.x_credential_id
FROM joined AS j

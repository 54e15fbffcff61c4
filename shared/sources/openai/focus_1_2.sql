-- OpenAI costs -> FOCUS 1.2 rows: one row per (day, project, line item) of the cost API.
-- Column by column: docs/sources/genai.md. Token quantities come from the completions
-- usage of the same day, project and model (line items read "<model>, <token type>");
-- the other usage endpoints' quantities (embeddings and moderations input tokens, images,
-- speech characters, transcription seconds) match "<model>, input|images|characters|seconds".
-- sqlcheck: param pipeline_id STRING
-- sqlcheck: param date_from DATE
-- sqlcheck: param date_to DATE
-- sqlcheck: table {costs} tenant.openai_costs_raw
-- sqlcheck: table {usage} tenant.openai_usage_raw
-- sqlcheck: table {other_usage} tenant.openai_usage_other_raw
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
  -- Completions: one quantity per token type of the line items.
  SELECT
    DATE(u.bucket_start) AS usage_date,
    u.project_id,
    u.model,
    t.token_type,
    'Tokens' AS unit,
    t.quantity
  FROM {usage} AS u
  CROSS JOIN UNNEST([
    STRUCT('input' AS token_type, u.input_tokens - IFNULL(u.input_cached_tokens, 0) AS quantity),
    STRUCT('cached input' AS token_type, u.input_cached_tokens AS quantity),
    STRUCT('output' AS token_type, u.output_tokens AS quantity)
  ]) AS t
  WHERE u.x_pipeline_id = @pipeline_id
    AND DATE(u.bucket_start) BETWEEN @date_from AND @date_to
  UNION ALL
  -- The other endpoints: their one quantity, named as the line item names it.
  SELECT
    DATE(o.bucket_start) AS usage_date,
    o.project_id,
    o.model,
    CASE o.quantity_field
      WHEN 'input_tokens' THEN 'input'
      ELSE o.quantity_field
    END AS token_type,
    CASE o.quantity_field
      WHEN 'input_tokens' THEN 'Tokens'
      WHEN 'images' THEN 'Images'
      WHEN 'characters' THEN 'Characters'
      WHEN 'seconds' THEN 'Seconds'
    END AS unit,
    o.quantity
  FROM {other_usage} AS o
  WHERE o.x_pipeline_id = @pipeline_id
    AND DATE(o.bucket_start) BETWEEN @date_from AND @date_to
),
usage_totals AS (
  -- One row per (day, project, model, type): the join below cannot fan a cost row out.
  SELECT usage_date, project_id, model, token_type, ANY_VALUE(unit) AS unit, SUM(quantity) AS tokens
  FROM usage
  GROUP BY usage_date, project_id, model, token_type
),
joined AS (
  SELECT
    c.*,
    u.tokens,
    u.unit
  FROM costs AS c
  LEFT JOIN usage_totals AS u
    ON u.usage_date = DATE(c.bucket_start)
    AND u.project_id IS NOT DISTINCT FROM c.project_id
    AND u.model = c.model
    AND u.token_type = c.token_type
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
  IF(j.tokens IS NULL, NULL, j.unit) AS ConsumedUnit,
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
  IF(j.tokens IS NULL, NULL, j.unit) AS PricingUnit,
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

-- Anthropic cost report -> FOCUS 1.2 rows: one row per (day, workspace, description).
-- Column by column: docs/sources/genai.md. Token quantities come from the messages
-- usage of the same day, workspace and model, for the cost row's token type.
-- sqlcheck: param pipeline_id STRING
-- sqlcheck: param date_from DATE
-- sqlcheck: param date_to DATE
-- sqlcheck: table {costs} tenant.anthropic_costs_raw
-- sqlcheck: table {usage} tenant.anthropic_usage_raw
WITH costs AS (
  SELECT c.*
  FROM {costs} AS c
  WHERE c.x_pipeline_id = @pipeline_id
    AND DATE(c.bucket_start) BETWEEN @date_from AND @date_to
),
usage AS (
  SELECT
    DATE(u.bucket_start) AS usage_date,
    u.workspace_id,
    u.model,
    SUM(u.uncached_input_tokens) AS uncached_input_tokens,
    SUM(u.output_tokens) AS output_tokens,
    SUM(u.cache_read_input_tokens) AS cache_read_input_tokens,
    SUM(u.cache_creation_5m_input_tokens) AS cache_creation_5m,
    SUM(u.cache_creation_1h_input_tokens) AS cache_creation_1h,
    SUM(u.web_search_requests) AS web_search_requests
  FROM {usage} AS u
  WHERE u.x_pipeline_id = @pipeline_id
    AND DATE(u.bucket_start) BETWEEN @date_from AND @date_to
  GROUP BY usage_date, u.workspace_id, u.model
),
searches AS (
  SELECT usage_date, workspace_id, SUM(web_search_requests) AS requests
  FROM usage
  GROUP BY usage_date, workspace_id
),
joined AS (
  SELECT
    c.*,
    CASE c.token_type
      WHEN 'uncached_input_tokens' THEN u.uncached_input_tokens
      WHEN 'output_tokens' THEN u.output_tokens
      WHEN 'cache_read_input_tokens' THEN u.cache_read_input_tokens
      WHEN 'cache_creation.ephemeral_5m_input_tokens' THEN u.cache_creation_5m
      WHEN 'cache_creation.ephemeral_1h_input_tokens' THEN u.cache_creation_1h
    END AS tokens,
    IF(c.cost_type = 'web_search', s.requests, NULL) AS requests
  FROM costs AS c
  LEFT JOIN usage AS u
    ON u.usage_date = DATE(c.bucket_start)
    AND u.workspace_id IS NOT DISTINCT FROM c.workspace_id
    AND u.model = c.model
  LEFT JOIN searches AS s
    ON s.usage_date = DATE(c.bucket_start)
    AND s.workspace_id IS NOT DISTINCT FROM c.workspace_id
)
SELECT
  j.amount AS BilledCost,
  -- No organisation id in the cost report: the tenant's provider config names the account.
  j.x_pipeline_id AS BillingAccountId,
  'Anthropic organization' AS BillingAccountName,
  j.currency AS BillingCurrency,
  -- Anthropic invoices per calendar month (UTC); the end is exclusive.
  TIMESTAMP(DATE_TRUNC(DATE(j.bucket_start), MONTH)) AS BillingPeriodStart,
  TIMESTAMP(DATE_ADD(DATE_TRUNC(DATE(j.bucket_start), MONTH), INTERVAL 1 MONTH)) AS BillingPeriodEnd,
  'Usage' AS ChargeCategory,
  CAST(NULL AS STRING) AS ChargeClass,
  j.description AS ChargeDescription,
  'Usage-Based' AS ChargeFrequency,
  j.bucket_start AS ChargePeriodStart,
  j.bucket_end AS ChargePeriodEnd,
  CAST(COALESCE(j.tokens, j.requests) AS NUMERIC) AS ConsumedQuantity,
  CASE WHEN j.tokens IS NOT NULL THEN 'Tokens' WHEN j.requests IS NOT NULL THEN 'Requests' END
    AS ConsumedUnit,
  j.amount AS ContractedCost,
  j.amount AS EffectiveCost,
  'Anthropic' AS InvoiceIssuerName,
  -- A provisional invoice id, generated before the invoice (FOCUS 1.2 InvoiceId MAY):
  -- the account and its calendar-month billing period, as the GCP mapping does.
  CONCAT(j.x_pipeline_id, '/', FORMAT_DATE('%Y%m', DATE(j.bucket_start))) AS InvoiceId,
  j.amount AS ListCost,
  'Standard' AS PricingCategory,
  j.currency AS PricingCurrency,
  j.amount AS PricingCurrencyEffectiveCost,
  CAST(COALESCE(j.tokens, j.requests) AS NUMERIC) AS PricingQuantity,
  CASE WHEN j.tokens IS NOT NULL THEN 'Tokens' WHEN j.requests IS NOT NULL THEN 'Requests' END
    AS PricingUnit,
  'Anthropic' AS ProviderName,
  'Anthropic' AS PublisherName,
  'AI and Machine Learning' AS ServiceCategory,
  'Claude API' AS ServiceName,
  'Generative AI' AS ServiceSubcategory,
  j.model AS SkuMeter,
  IFNULL(j.workspace_id, 'default') AS SubAccountId,
  IFNULL(j.workspace_id, 'Default workspace') AS SubAccountName,
  'Workspace' AS SubAccountType,
  j.model AS x_model,
  IFNULL(j.token_type, j.cost_type) AS x_token_type,
  j.x_tenant_id,
  j.x_pipeline_id,
  j.x_credential_id
FROM joined AS j

-- Google Cloud billing export (detailed/resource or standard, copied to {raw} by the
-- reader) -> FOCUS 1.2 rows: one FOCUS row per export row. Column by column, with the
-- reasons: docs/sources/gcp.md. The step (shared/sources/gcp/mapping.py) inserts these
-- columns plus x_focus_version, x_run_date, x_run_id and x_ingested_at into focus_cost.
-- Money is already exact NUMERIC in {raw} (the reader's PARSE_NUMERIC(CAST(x AS STRING))).
-- Credits are folded into the row (BilledCost = EffectiveCost = cost + SUM(credits.amount)),
-- as Google's own FOCUS view does, so the export's totals reconcile row by row.
-- A run's window: usage dates or export dates in date_from - lookback_days .. date_to.
-- sqlcheck: param pipeline_id STRING
-- sqlcheck: param date_from DATE
-- sqlcheck: param date_to DATE
-- sqlcheck: param lookback_days INT64
-- sqlcheck: table {raw} tenant.gcp_billing_raw
SELECT
  -- Location
  r.location.zone AS AvailabilityZone,
  r.location.region AS RegionId,
  CASE r.location.region
    WHEN 'us-central1' THEN 'Iowa'
    WHEN 'us-east1' THEN 'South Carolina'
    WHEN 'us-east4' THEN 'Northern Virginia'
    WHEN 'us-west1' THEN 'Oregon'
    WHEN 'us-west2' THEN 'Los Angeles'
    WHEN 'europe-west1' THEN 'Belgium'
    WHEN 'europe-west2' THEN 'London'
    WHEN 'europe-west3' THEN 'Frankfurt'
    WHEN 'europe-west4' THEN 'Netherlands'
    WHEN 'asia-east1' THEN 'Taiwan'
    WHEN 'asia-northeast1' THEN 'Tokyo'
    WHEN 'asia-southeast1' THEN 'Singapore'
    WHEN 'australia-southeast1' THEN 'Sydney'
    ELSE r.location.region
  END AS RegionName,

  -- Costs: credits folded in; ContractedCost is before credits; ListCost is cost_at_list
  r.cost + IFNULL(r.cr.total, 0) AS BilledCost,
  r.cost + IFNULL(r.cr.total, 0) AS EffectiveCost,
  r.cost AS ContractedCost,
  r.cost_at_list AS ListCost,
  CAST(NULL AS NUMERIC) AS ListUnitPrice,
  IF(r.cost_type = 'regular', r.price.effective_price, NULL) AS ContractedUnitPrice,

  -- Account and invoice
  r.billing_account_id AS BillingAccountId,
  CAST(NULL AS STRING) AS BillingAccountName,
  CAST(NULL AS STRING) AS BillingAccountType,
  r.currency AS BillingCurrency,
  -- Google invoices by calendar month in Pacific time; the end is exclusive.
  TIMESTAMP(
    DATE_ADD(PARSE_DATE('%Y%m', r.invoice.month), INTERVAL 1 MONTH), 'America/Los_Angeles'
  ) AS BillingPeriodEnd,
  TIMESTAMP(PARSE_DATE('%Y%m', r.invoice.month), 'America/Los_Angeles') AS BillingPeriodStart,
  -- The export has no invoice number; Google issues one invoice per billing account and
  -- invoice month, so that pair identifies the (provisional) invoice.
  CONCAT(r.billing_account_id, '/', r.invoice.month) AS InvoiceId,
  'Google Cloud' AS InvoiceIssuerName,
  'Google Cloud' AS ProviderName,
  -- Marketplace rows are published by their seller.
  IF(
    IFNULL(r.transaction_type, 'GOOGLE') = 'GOOGLE',
    'Google Cloud',
    IFNULL(r.seller_name, 'Google Cloud')
  ) AS PublisherName,
  r.project.id AS SubAccountId,
  r.project.name AS SubAccountName,
  IF(r.project.id IS NOT NULL, 'Project', NULL) AS SubAccountType,

  -- Capacity reservations: not in the export
  CAST(NULL AS STRING) AS CapacityReservationId,
  CAST(NULL AS STRING) AS CapacityReservationStatus,

  -- Charge
  CASE r.cost_type
    WHEN 'regular' THEN 'Usage'
    WHEN 'tax' THEN 'Tax'
    WHEN 'adjustment' THEN 'Adjustment'
    WHEN 'rounding_error' THEN 'Adjustment'
  END AS ChargeCategory,
  IF(r.adjustment_info.id IS NOT NULL, 'Correction', NULL) AS ChargeClass,
  r.sku.description AS ChargeDescription,
  IF(r.cost_type = 'regular', 'Usage-Based', 'One-Time') AS ChargeFrequency,
  r.usage_end_time AS ChargePeriodEnd,
  r.usage_start_time AS ChargePeriodStart,

  -- Commitment discounts: the committed use discount credit on the row names it
  CASE r.cr.cud_type
    WHEN 'COMMITTED_USAGE_DISCOUNT' THEN 'Usage'
    WHEN 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE' THEN 'Spend'
  END AS CommitmentDiscountCategory,
  r.cr.cud_id AS CommitmentDiscountId,
  r.cr.cud_name AS CommitmentDiscountName,
  CAST(NULL AS NUMERIC) AS CommitmentDiscountQuantity,
  IF(r.cr.cud_id IS NOT NULL, 'Used', NULL) AS CommitmentDiscountStatus,
  IF(r.cr.cud_id IS NOT NULL, 'Committed Use Discount', NULL) AS CommitmentDiscountType,
  CAST(NULL AS STRING) AS CommitmentDiscountUnit,

  -- Quantities and units (GCP units -> FOCUS UnitFormat; unknown units pass as they are)
  IF(r.cost_type = 'regular', r.usage.amount, NULL) AS ConsumedQuantity,
  IF(
    r.cost_type = 'regular',
    CASE r.usage.unit
      WHEN 'seconds' THEN 'Seconds'
      WHEN 'second' THEN 'Seconds'
      WHEN 'hour' THEN 'Hours'
      WHEN 'hours' THEN 'Hours'
      WHEN 'month' THEN 'Months'
      WHEN 'bytes' THEN 'B'
      WHEN 'byte' THEN 'B'
      WHEN 'byte-seconds' THEN 'B-Seconds'
      WHEN 'gibibyte' THEN 'GiB'
      WHEN 'gibibyte hour' THEN 'GiB-Hours'
      WHEN 'gibibyte month' THEN 'GiB-Months'
      WHEN 'gibibyte second' THEN 'GiB-Seconds'
      WHEN 'mebibyte' THEN 'MiB'
      WHEN 'tebibyte' THEN 'TiB'
      WHEN 'vCPU-second' THEN 'vCPU-Seconds'
      WHEN 'count' THEN 'Count'
      WHEN 'requests' THEN 'Requests'
      WHEN 'request' THEN 'Requests'
      ELSE r.usage.unit
    END,
    NULL
  ) AS ConsumedUnit,
  IF(r.cost_type = 'regular', r.usage.amount_in_pricing_units, NULL) AS PricingQuantity,
  IF(
    r.cost_type = 'regular',
    CASE r.usage.pricing_unit
      WHEN 'seconds' THEN 'Seconds'
      WHEN 'second' THEN 'Seconds'
      WHEN 'hour' THEN 'Hours'
      WHEN 'hours' THEN 'Hours'
      WHEN 'month' THEN 'Months'
      WHEN 'bytes' THEN 'B'
      WHEN 'byte' THEN 'B'
      WHEN 'byte-seconds' THEN 'B-Seconds'
      WHEN 'gibibyte' THEN 'GiB'
      WHEN 'gibibyte hour' THEN 'GiB-Hours'
      WHEN 'gibibyte month' THEN 'GiB-Months'
      WHEN 'gibibyte second' THEN 'GiB-Seconds'
      WHEN 'mebibyte' THEN 'MiB'
      WHEN 'tebibyte' THEN 'TiB'
      WHEN 'vCPU-second' THEN 'vCPU-Seconds'
      WHEN 'count' THEN 'Count'
      WHEN 'requests' THEN 'Requests'
      WHEN 'request' THEN 'Requests'
      ELSE r.usage.pricing_unit
    END,
    NULL
  ) AS PricingUnit,

  -- Pricing
  IF(
    r.cost_type = 'regular', IF(r.cr.cud_id IS NOT NULL, 'Committed', 'Standard'), NULL
  ) AS PricingCategory,
  r.currency AS PricingCurrency,
  IF(r.cost_type = 'regular', r.price.effective_price, NULL) AS PricingCurrencyContractedUnitPrice,
  r.cost + IFNULL(r.cr.total, 0) AS PricingCurrencyEffectiveCost,
  CAST(NULL AS NUMERIC) AS PricingCurrencyListUnitPrice,

  -- Resource
  r.resource.global_name AS ResourceId,
  r.resource.name AS ResourceName,
  CAST(NULL AS STRING) AS ResourceType,

  -- Service: FOCUS 1.2 ServiceCategory / ServiceSubcategory pairs
  CASE r.service.description
    WHEN 'Compute Engine' THEN 'Compute'
    WHEN 'Kubernetes Engine' THEN 'Compute'
    WHEN 'Cloud Run' THEN 'Compute'
    WHEN 'Cloud Run Functions' THEN 'Compute'
    WHEN 'Cloud Functions' THEN 'Compute'
    WHEN 'App Engine' THEN 'Web'
    WHEN 'Cloud Storage' THEN 'Storage'
    WHEN 'Filestore' THEN 'Storage'
    WHEN 'BigQuery' THEN 'Databases'
    WHEN 'Cloud SQL' THEN 'Databases'
    WHEN 'Cloud Spanner' THEN 'Databases'
    WHEN 'Cloud Bigtable' THEN 'Databases'
    WHEN 'Cloud Firestore' THEN 'Databases'
    WHEN 'Cloud Memorystore for Redis' THEN 'Databases'
    WHEN 'Dataflow' THEN 'Analytics'
    WHEN 'Cloud Dataproc' THEN 'Analytics'
    WHEN 'Cloud Pub/Sub' THEN 'Integration'
    WHEN 'Networking' THEN 'Networking'
    WHEN 'Cloud DNS' THEN 'Networking'
    WHEN 'Cloud CDN' THEN 'Networking'
    WHEN 'Cloud Load Balancing' THEN 'Networking'
    WHEN 'Vertex AI' THEN 'AI and Machine Learning'
    WHEN 'Gemini API' THEN 'AI and Machine Learning'
    WHEN 'Generative Language API' THEN 'AI and Machine Learning'
    WHEN 'Gemini for Google Cloud' THEN 'AI and Machine Learning'
    WHEN 'Gemini Code Assist' THEN 'AI and Machine Learning'
    WHEN 'Cloud Logging' THEN 'Management and Governance'
    WHEN 'Cloud Monitoring' THEN 'Management and Governance'
    WHEN 'Secret Manager' THEN 'Security'
    WHEN 'Cloud Key Management Service (KMS)' THEN 'Security'
    WHEN 'Support' THEN 'Management and Governance'
    WHEN 'Invoice' THEN 'Other'
    ELSE 'Other'
  END AS ServiceCategory,
  IFNULL(r.service.description, 'Invoice') AS ServiceName,
  CASE
    -- Generative AI (FOCUS 1.1+): the Gemini services, and the Vertex AI SKUs of
    -- generative models (Gemini, Imagen, Veo, PaLM/bison, Gemma, Model Garden partner
    -- models), so one query finds all GenAI spend with the OpenAI / Anthropic rows.
    -- Other Vertex AI rows (training, prediction nodes, pipelines) stay AI Platforms.
    WHEN r.service.description IN (
      'Gemini API', 'Generative Language API', 'Gemini for Google Cloud', 'Gemini Code Assist'
    ) THEN 'Generative AI'
    WHEN r.service.description = 'Vertex AI'
      AND REGEXP_CONTAINS(
        LOWER(IFNULL(r.sku.description, '')),
        '(gemini|gemma|imagen|veo|palm|bison|gecko|codey|chirp|claude|llama|mistral|generative)'
      ) THEN 'Generative AI'
    ELSE CASE r.service.description
      WHEN 'Compute Engine' THEN 'Virtual Machines'
      WHEN 'Kubernetes Engine' THEN 'Containers'
      WHEN 'Cloud Run' THEN 'Serverless Compute'
      WHEN 'Cloud Run Functions' THEN 'Serverless Compute'
      WHEN 'Cloud Functions' THEN 'Serverless Compute'
      WHEN 'App Engine' THEN 'Application Platforms'
      WHEN 'Cloud Storage' THEN 'Object Storage'
      WHEN 'Filestore' THEN 'File Storage'
      WHEN 'BigQuery' THEN 'Data Warehouses'
      WHEN 'Cloud SQL' THEN 'Relational Databases'
      WHEN 'Cloud Spanner' THEN 'Relational Databases'
      WHEN 'Cloud Bigtable' THEN 'NoSQL Databases'
      WHEN 'Cloud Firestore' THEN 'NoSQL Databases'
      WHEN 'Cloud Memorystore for Redis' THEN 'Caching'
      WHEN 'Dataflow' THEN 'Data Processing'
      WHEN 'Cloud Dataproc' THEN 'Data Processing'
      WHEN 'Cloud Pub/Sub' THEN 'Messaging'
      WHEN 'Networking' THEN 'Network Connectivity'
      WHEN 'Cloud DNS' THEN 'Network Routing'
      WHEN 'Cloud CDN' THEN 'Content Delivery'
      WHEN 'Cloud Load Balancing' THEN 'Application Networking'
      WHEN 'Vertex AI' THEN 'AI Platforms'
      WHEN 'Cloud Logging' THEN 'Observability'
      WHEN 'Cloud Monitoring' THEN 'Observability'
      WHEN 'Secret Manager' THEN 'Secret Management'
      WHEN 'Cloud Key Management Service (KMS)' THEN 'Secret Management'
      WHEN 'Support' THEN 'Support'
      ELSE 'Other (Other)'
    END
  END AS ServiceSubcategory,

  -- SKU (tax, adjustments and rounding rows have no SKU of their own)
  IF(r.cost_type = 'regular', NULLIF(r.sku.id, ''), NULL) AS SkuId,
  IF(r.cost_type = 'regular', r.sku.description, NULL) AS SkuMeter,
  CAST(NULL AS STRING) AS SkuPriceDetails,
  IF(
    r.cost_type = 'regular' AND NULLIF(r.sku.id, '') IS NOT NULL,
    CONCAT(r.sku.id, '/', IFNULL(CAST(r.price.tier_start_amount AS STRING), '0')),
    NULL
  ) AS SkuPriceId,

  -- Tags: resource labels plus tags as one JSON object (tag keys are namespace/key,
  -- labels have no '/', so they can't clash)
  tg.tags AS Tags,

  -- Lineage: the export row and the raw copy's run
  r.export_time AS x_export_time,
  r.x_tenant_id AS x_tenant_id,
  r.x_pipeline_id AS x_pipeline_id,
  r.x_credential_id AS x_credential_id
FROM (
  SELECT
    raw.*,
    -- Credits aggregated once per row, and only for rows that have any: a correlated
    -- UNNEST is the costly part of the statement, and most rows carry no credit.
    IF(
      ARRAY_LENGTH(raw.credits) = 0,
      NULL,
      (
        SELECT AS STRUCT
          SUM(c.amount) AS total,
          MAX(IF(c.type IN ('COMMITTED_USAGE_DISCOUNT', 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE'), c.id, NULL)) AS cud_id,
          MAX(IF(c.type IN ('COMMITTED_USAGE_DISCOUNT', 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE'), c.full_name, NULL)) AS cud_name,
          MAX(IF(c.type IN ('COMMITTED_USAGE_DISCOUNT', 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE'), c.type, NULL)) AS cud_type
        FROM UNNEST(raw.credits) AS c
      )
    ) AS cr,
    TO_JSON_STRING(STRUCT(raw.labels AS l, raw.tags AS t)) AS tag_key
  FROM {raw} AS raw
  WHERE raw.x_pipeline_id = @pipeline_id
    AND (
      DATE(raw.usage_start_time) BETWEEN DATE_SUB(@date_from, INTERVAL @lookback_days DAY) AND @date_to
      OR DATE(raw.export_time) BETWEEN DATE_SUB(@date_from, INTERVAL @lookback_days DAY) AND @date_to
    )
) AS r
-- Tags are built once per distinct label/tag set, not once per row: rows of one
-- resource or project repeat the same set.
LEFT JOIN (
  SELECT
    k.tag_key,
    (
      SELECT CONCAT('{', STRING_AGG(TO_JSON_STRING(kv.k) || ':' || TO_JSON_STRING(kv.v), ',' ORDER BY kv.k), '}')
      FROM (
        SELECT l.key AS k, l.value AS v FROM UNNEST(k.labels) AS l
        UNION ALL
        SELECT CONCAT(t.namespace, '/', t.key) AS k, t.value AS v FROM UNNEST(k.tags) AS t
      ) AS kv
    ) AS tags
  FROM (
    SELECT
      TO_JSON_STRING(STRUCT(raw.labels AS l, raw.tags AS t)) AS tag_key,
      ANY_VALUE(raw.labels) AS labels,
      ANY_VALUE(raw.tags) AS tags
    FROM {raw} AS raw
    WHERE raw.x_pipeline_id = @pipeline_id
      AND (
        DATE(raw.usage_start_time) BETWEEN DATE_SUB(@date_from, INTERVAL @lookback_days DAY) AND @date_to
        OR DATE(raw.export_time) BETWEEN DATE_SUB(@date_from, INTERVAL @lookback_days DAY) AND @date_to
      )
    GROUP BY tag_key
  ) AS k
) AS tg ON tg.tag_key = r.tag_key

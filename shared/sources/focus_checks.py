"""FOCUS 1.2 column rules every source's check applies: mandatory columns, allowed values."""

from __future__ import annotations

from shared.pipelines.context import DqResult, StepError

# FOCUS 1.2 ServiceCategory -> its ServiceSubcategory values (the spec's table; each
# category also allows "Other (<category>)").
SERVICE_SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "AI and Machine Learning": (
        "AI Platforms",
        "Bots",
        "Generative AI",
        "Machine Learning",
        "Natural Language Processing",
    ),
    "Analytics": (
        "Analytics Platforms",
        "Business Intelligence",
        "Data Processing",
        "Search",
        "Streaming Analytics",
    ),
    "Business Applications": ("Productivity and Collaboration",),
    "Compute": (
        "Containers",
        "End User Computing",
        "Quantum Compute",
        "Serverless Compute",
        "Virtual Machines",
    ),
    "Databases": (
        "Caching",
        "Data Warehouses",
        "Ledger Databases",
        "NoSQL Databases",
        "Relational Databases",
        "Time Series Databases",
    ),
    "Developer Tools": (
        "Developer Platforms",
        "Continuous Integration and Deployment",
        "Development Environments",
        "Source Code Management",
        "Quality Assurance",
    ),
    "Identity": ("Identity and Access Management",),
    "Integration": ("API Management", "Messaging", "Workflow Orchestration"),
    "Internet of Things": ("IoT Analytics", "IoT Platforms"),
    "Management and Governance": (
        "Architecture",
        "Compliance",
        "Cost Management",
        "Data Governance",
        "Disaster Recovery",
        "Endpoint Management",
        "Observability",
        "Support",
    ),
    "Media": ("Content Creation", "Gaming", "Media Streaming", "Mixed Reality"),
    "Migration": ("Data Migration", "Resource Migration"),
    "Mobile": (),
    "Multicloud": ("Multicloud Integration",),
    "Networking": (
        "Application Networking",
        "Content Delivery",
        "Network Connectivity",
        "Network Infrastructure",
        "Network Routing",
        "Network Security",
    ),
    "Security": (
        "Secret Management",
        "Security Posture Management",
        "Threat Detection and Response",
    ),
    "Storage": (
        "Backup Storage",
        "Block Storage",
        "File Storage",
        "Object Storage",
        "Storage Platforms",
    ),
    "Web": ("Application Platforms",),
    "Other": (),
}

ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "ChargeCategory": ("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    "ChargeClass": ("Correction",),
    "ChargeFrequency": ("One-Time", "Recurring", "Usage-Based"),
    "PricingCategory": ("Standard", "Dynamic", "Committed", "Other"),
    "CommitmentDiscountCategory": ("Spend", "Usage"),
    "CommitmentDiscountStatus": ("Used", "Unused"),
    "ServiceCategory": tuple(sorted(SERVICE_SUBCATEGORIES)),
    "ServiceSubcategory": tuple(
        sorted(
            {s for subs in SERVICE_SUBCATEGORIES.values() for s in subs}
            | {f"Other ({c})" for c in SERVICE_SUBCATEGORIES}
        )
    ),
}
# focus_cost columns that are FOCUS 1.3, not 1.2 (the table is switchable to 1.3).
FOCUS_1_3_ONLY = (
    "AllocatedMethodDetails",
    "AllocatedMethodId",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
    "ContractApplied",
    "HostProviderName",
    "ServiceProviderName",
)
# Mandatory FOCUS 1.2 columns that may never be NULL.
NOT_NULL = (
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
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
)


def quote(value: str) -> str:
    """A GoogleSQL string literal for our own constants (never for tenant data)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def null_check_sql(focus_table: str, where: str) -> str:
    """Per mandatory column, how many rows of `focus_table AS f` matching `where` hold NULL."""
    counts = ",\n  ".join(f"COUNTIF(f.`{c}` IS NULL) AS `{c}`" for c in NOT_NULL)
    return f"SELECT\n  {counts}\nFROM {focus_table} AS f\nWHERE {where}"


def allowed_values_sql(focus_table: str, where: str) -> str:
    """Per enumerated column, how many rows matching `where` hold a value outside FOCUS's list."""
    parts = []
    for column, allowed in ALLOWED_VALUES.items():
        values = ", ".join(quote(v) for v in allowed)
        parts.append(
            f"COUNTIF(f.`{column}` IS NOT NULL AND f.`{column}` NOT IN ({values})) AS `{column}`"
        )
    body = ",\n  ".join(parts)
    return f"SELECT\n  {body}\nFROM {focus_table} AS f\nWHERE {where}"


class DqFailed(StepError):
    """A failed expectation; carries every DqResult so the executor can still record them."""

    def __init__(self, message: str, dq_results: list[DqResult]) -> None:
        super().__init__("dq_failed", message)
        self.dq_results = dq_results

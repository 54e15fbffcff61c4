"""The columns of AWS Data Exports the platform reads, per export type, and how to tell types apart.

CUR 2.0: https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2.html
FOCUS 1.0 (AWS): https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-focus-1-0-aws.html
FOCUS 1.2 (AWS): https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-focus-1-2-aws.html
The raw tables (schemas/tenant/aws_cur2_raw.json, aws_focus_raw.json) hold
exactly these columns (money NUMERIC, maps as JSON text) plus lineage; both
FOCUS versions land in one table, 1.0 leaving the 1.2-only columns NULL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ExportColumns:
    strings: tuple[str, ...]
    times: tuple[str, ...]
    money: tuple[str, ...]  # decimals: text in staging, NUMERIC in the raw table
    maps: tuple[str, ...]  # map<string,string>: JSON object text

    @property
    def all(self) -> tuple[str, ...]:
        return self.strings + self.times + self.money + self.maps


CUR2 = ExportColumns(
    strings=(
        "bill_bill_type", "bill_billing_entity", "bill_invoice_id", "bill_invoicing_entity",
        "bill_payer_account_id", "bill_payer_account_name", "line_item_usage_account_id",
        "line_item_usage_account_name", "line_item_line_item_type", "line_item_product_code",
        "line_item_usage_type", "line_item_operation", "line_item_availability_zone",
        "line_item_resource_id", "line_item_currency_code", "line_item_line_item_description",
        "line_item_legal_entity", "pricing_unit", "pricing_term", "pricing_rate_code",
        "pricing_purchase_option", "product_product_name", "product_region_code",
        "product_servicecode", "product_sku", "product_product_family",
        "reservation_reservation_a_r_n", "savings_plan_savings_plan_a_r_n",
    ),
    times=(
        "bill_billing_period_start_date", "bill_billing_period_end_date",
        "line_item_usage_start_date", "line_item_usage_end_date",
    ),
    money=(
        "line_item_usage_amount", "line_item_unblended_rate", "line_item_unblended_cost",
        "line_item_net_unblended_cost", "pricing_public_on_demand_cost",
        "pricing_public_on_demand_rate", "reservation_effective_cost",
        "reservation_unused_amortized_upfront_fee_for_billing_period",
        "reservation_unused_recurring_fee", "savings_plan_savings_plan_effective_cost",
        "savings_plan_total_commitment_to_date", "savings_plan_used_commitment",
        "reservation_net_effective_cost",
        "reservation_net_unused_amortized_upfront_fee_for_billing_period",
        "reservation_net_unused_recurring_fee", "savings_plan_net_savings_plan_effective_cost",
    ),
    maps=("resource_tags",),
)  # fmt: skip

FOCUS_10_STRINGS = (
    "AvailabilityZone", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "ConsumedUnit", "InvoiceIssuerName",
    "PricingCategory", "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName",
    "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "SkuId",
    "SkuPriceId", "SubAccountId", "SubAccountName", "x_Operation", "x_ServiceCode", "x_UsageType",
)  # fmt: skip
# Columns FOCUS 1.1 and 1.2 added (1.2 changelog), absent from a FOCUS 1.0 export.
FOCUS_12_ONLY_STRINGS = (
    "BillingAccountType", "CapacityReservationId", "CapacityReservationStatus",
    "CommitmentDiscountUnit", "InvoiceId", "PricingCurrency", "ServiceSubcategory", "SkuMeter",
    "SkuPriceDetails", "SubAccountType",
)  # fmt: skip
FOCUS_TIMES = ("BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart")
FOCUS_10_MONEY = (
    "BilledCost", "ConsumedQuantity", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
    "ListCost", "ListUnitPrice", "PricingQuantity",
)  # fmt: skip
FOCUS_12_ONLY_MONEY = (
    "CommitmentDiscountQuantity", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice",
)  # fmt: skip
FOCUS = ExportColumns(
    strings=FOCUS_10_STRINGS + FOCUS_12_ONLY_STRINGS,
    times=FOCUS_TIMES,
    money=FOCUS_10_MONEY + FOCUS_12_ONLY_MONEY,
    maps=("Tags", "x_CostCategories", "x_Discounts"),
)

EXPORT_COLUMNS = {"CUR2": CUR2, "FOCUS_1_2_AWS": FOCUS, "FOCUS_1_0_AWS": FOCUS}
RAW_TABLES = {
    "CUR2": "aws_cur2_raw",
    "FOCUS_1_2_AWS": "aws_focus_raw",
    "FOCUS_1_0_AWS": "aws_focus_raw",
}
_CUR2_REQUIRED = (
    "bill_billing_period_start_date", "bill_billing_period_end_date", "bill_payer_account_id",
    "line_item_line_item_type", "line_item_usage_start_date", "line_item_usage_end_date",
    "line_item_product_code", "line_item_currency_code", "line_item_unblended_cost",
)  # fmt: skip
_FOCUS_REQUIRED = (
    "BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "ChargeCategory", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost", "EffectiveCost",
    "ListCost", "ServiceName",
)  # fmt: skip
REQUIRED = {
    "CUR2": _CUR2_REQUIRED,
    "FOCUS_1_2_AWS": _FOCUS_REQUIRED,
    "FOCUS_1_0_AWS": _FOCUS_REQUIRED,
}
# The cost column(s) whose sum is the source's own total: the first non-NULL wins
# (CUR: net unblended cost where the account has discounts, else unblended).
BILLED = {
    "CUR2": ("line_item_net_unblended_cost", "line_item_unblended_cost"),
    "FOCUS_1_2_AWS": ("BilledCost",),
    "FOCUS_1_0_AWS": ("BilledCost",),
}
CURRENCY = {
    "CUR2": "line_item_currency_code",
    "FOCUS_1_2_AWS": "BillingCurrency",
    "FOCUS_1_0_AWS": "BillingCurrency",
}
# Columns of FOCUS versions after 1.2 (1.3 renames providers): an export carrying
# them is a version this reader does not know.
_LATER_FOCUS = ("ServiceProviderName", "HostProviderName")


def detect_export_type(columns: Iterable[str]) -> str | None:
    """CUR2, FOCUS_1_2_AWS or FOCUS_1_0_AWS from a manifest's column names; None if unknown."""
    names = set(columns)
    if "line_item_line_item_type" in names:
        return "CUR2"
    if "BilledCost" not in names or names & set(_LATER_FOCUS):
        return None
    if names & {"InvoiceId", "PricingCurrency", "ServiceSubcategory", "BillingAccountType"}:
        return "FOCUS_1_2_AWS"
    return "FOCUS_1_0_AWS"

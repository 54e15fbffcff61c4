"""The one plan catalogue: Stripe price lookup keys to run, team and provider limits."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict

PlanName = Literal["STARTER", "PROFESSIONAL", "SCALE"]

TRIAL_DAYS = 14
# Warn at this share of the daily or monthly limit; block at 100 %.
WARN_RATIO = 0.8


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: PlanName
    daily_runs: int
    monthly_runs: int
    concurrent_runs: int
    team_members: int
    providers: int
    price_usd_monthly: int
    stripe_lookup_key: str
    # Cap on bytes a tenant's own query may bill (custom bq_etl steps).
    max_bytes_billed: int


PLANS: dict[str, Plan] = {
    plan.name: plan
    for plan in (
        Plan(
            name="STARTER",
            daily_runs=6,
            monthly_runs=180,
            concurrent_runs=3,
            team_members=2,
            providers=3,
            price_usd_monthly=49,
            stripe_lookup_key="convergence_starter_monthly",
            max_bytes_billed=10 * 1024**3,
        ),
        Plan(
            name="PROFESSIONAL",
            daily_runs=25,
            monthly_runs=750,
            concurrent_runs=5,
            team_members=6,
            providers=6,
            price_usd_monthly=199,
            stripe_lookup_key="convergence_professional_monthly",
            max_bytes_billed=100 * 1024**3,
        ),
        Plan(
            name="SCALE",
            daily_runs=100,
            monthly_runs=3000,
            concurrent_runs=10,
            team_members=11,
            providers=10,
            price_usd_monthly=499,
            stripe_lookup_key="convergence_scale_monthly",
            max_bytes_billed=1024**4,
        ),
    )
}

_BY_LOOKUP_KEY = {plan.stripe_lookup_key: plan for plan in PLANS.values()}


def plan_named(name: str) -> Plan:
    return PLANS[name]


def plan_for_lookup_key(lookup_key: str | None) -> Plan | None:
    """The plan a Stripe price belongs to, or None for a price we don't sell."""
    return _BY_LOOKUP_KEY.get(lookup_key or "")


def trial_end(start: dt.datetime) -> dt.datetime:
    return start + dt.timedelta(days=TRIAL_DAYS)

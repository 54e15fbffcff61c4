"""Month-end forecast: the month to date plus the recent daily run rate over the days left.

Why this rule (docs/insights.md, "Forecast"): it is what a FinOps user can check
by hand, it reacts within a week to a real change in spend, and it needs only
the daily totals the budget statement already computes. Today is partial
(exports lag), so the rate comes from the last RUN_RATE_DAYS complete days and
today counts as a day left; the forecast is never below what is already spent.
"""

from __future__ import annotations

import calendar
import datetime as dt
import decimal

RUN_RATE_DAYS = 7


def month_bounds(today: dt.date) -> tuple[dt.date, dt.date]:
    """The first day of today's month and the first day of the next."""
    first = today.replace(day=1)
    days = calendar.monthrange(today.year, today.month)[1]
    return first, first + dt.timedelta(days=days)


def days_left(today: dt.date) -> int:
    """Days of the month from today (included, it is not complete) to its end."""
    _, next_month = month_bounds(today)
    return (next_month - today).days


def forecast(daily: dict[dt.date, decimal.Decimal], today: dt.date) -> decimal.Decimal:
    """Month-end spend from daily costs (any days; only this month's and the run-rate
    window's are read)."""
    first, _ = month_bounds(today)
    complete = sum((v for day, v in daily.items() if first <= day < today), decimal.Decimal(0))
    to_date = complete + daily.get(today, decimal.Decimal(0))
    window = [today - dt.timedelta(days=i) for i in range(1, RUN_RATE_DAYS + 1)]
    rate = sum((daily.get(day, decimal.Decimal(0)) for day in window), decimal.Decimal(0))
    projected = complete + rate / RUN_RATE_DAYS * days_left(today)
    return max(to_date, projected)


def forecast_sql(month_complete: str, today_cost: str, run_rate_sum: str, days: str) -> str:
    """The same rule in SQL over NUMERIC expressions (budget_alerts.py)."""
    return (
        f"GREATEST({month_complete} + {today_cost}, "
        f"{month_complete} + {run_rate_sum} / {RUN_RATE_DAYS} * {days})"
    )

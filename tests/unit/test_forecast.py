"""The month-end forecast rule: complete days plus the last 7 complete days' rate over the rest."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from shared.insights.forecast import days_left, forecast


def test_forecast_is_month_to_date_plus_the_seven_day_run_rate_times_days_left() -> None:
    today = dt.date(2026, 3, 10)  # 9 complete days, 22 days left including today
    daily = {dt.date(2026, 3, d): Decimal("10") for d in range(1, 10)}
    daily[dt.date(2026, 2, 28)] = Decimal("999")  # last month: only in no window here
    assert days_left(today) == 22
    assert forecast(daily, today) == Decimal("90") + Decimal("10") * 22


def test_the_run_rate_reaches_into_last_month_early_in_a_month() -> None:
    today = dt.date(2026, 3, 2)
    daily = {dt.date(2026, 2, d): Decimal("7") for d in range(22, 29)}
    daily[dt.date(2026, 3, 1)] = Decimal("14")
    # rate = (6 * 7 + 14) / 7 = 8 per day, 30 days left including today
    assert forecast(daily, today) == Decimal("14") + Decimal("8") * 30


def test_the_forecast_is_never_below_what_is_already_spent() -> None:
    today = dt.date(2026, 3, 31)
    daily = {today: Decimal("500")}
    assert forecast(daily, today) == Decimal("500")

"""Cron schedules in a zone: DST gaps and overlaps, month ends, leap days, minimum interval."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from shared.scheduling.schedule import ScheduleError, check_cron, next_fire

UTC = dt.UTC


def fires(expression: str, zone: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    out, after = [], start
    for _ in range(count):
        after = next_fire(expression, zone, after)
        out.append(after)
    return out


def test_a_daily_0230_job_runs_once_on_the_spring_forward_day() -> None:
    # New York skips 02:00-03:00 on 2026-03-08.
    runs = fires("30 2 * * *", "America/New_York", dt.datetime(2026, 3, 7, 12, tzinfo=UTC), 3)

    assert runs == [
        dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # 02:30 EST never happens: 03:30 EDT
        dt.datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT
        dt.datetime(2026, 3, 10, 6, 30, tzinfo=UTC),
    ]


def test_a_daily_0130_job_runs_once_on_the_fall_back_day() -> None:
    # New York repeats 01:00-02:00 on 2026-11-01.
    runs = fires("30 1 * * *", "America/New_York", dt.datetime(2026, 10, 31, 12, tzinfo=UTC), 3)

    assert runs == [
        dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # the first 01:30 (EDT) only
        dt.datetime(2026, 11, 2, 6, 30, tzinfo=UTC),
        dt.datetime(2026, 11, 3, 6, 30, tzinfo=UTC),
    ]


def test_an_every_five_minutes_job_never_fires_twice_for_one_instant_across_dst() -> None:
    start = dt.datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    runs = fires("*/5 * * * *", "America/New_York", start, 60)

    assert runs == sorted(set(runs))
    assert all(b - a >= dt.timedelta(minutes=5) for a, b in itertools.pairwise(runs))


def test_the_31st_skips_months_without_one() -> None:
    runs = fires("0 6 31 * *", "UTC", dt.datetime(2026, 1, 31, 7, tzinfo=UTC), 3)

    assert [r.date() for r in runs] == [
        dt.date(2026, 3, 31),
        dt.date(2026, 5, 31),
        dt.date(2026, 7, 31),
    ]


def test_the_last_day_of_february_moves_with_the_leap_year() -> None:
    runs = fires("0 0 29 2 *", "Europe/Paris", dt.datetime(2026, 1, 1, tzinfo=UTC), 2)

    assert runs == [
        dt.datetime(2028, 2, 28, 23, 0, tzinfo=UTC),  # 00:00 CET on 2028-02-29
        dt.datetime(2032, 2, 28, 23, 0, tzinfo=UTC),
    ]


def test_fire_times_are_in_utc_and_follow_the_zone() -> None:
    [first] = fires("0 9 * * 1", "Asia/Kolkata", dt.datetime(2026, 11, 30, tzinfo=UTC), 1)

    assert first == dt.datetime(2026, 11, 30, 3, 30, tzinfo=UTC)  # Monday 09:00 IST
    assert first.tzinfo == UTC


@pytest.mark.parametrize(
    "expression",
    ["* * * * *", "*/2 * * * *", "0,3 * * * *", "0,58 3,4 * * *", "0-4 3 * * *", "1,59 * * * *"],
)
def test_schedules_more_often_than_every_five_minutes_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        check_cron(expression)

    assert caught.value.field == "schedule_cron"


@pytest.mark.parametrize(
    "expression", ["*/5 * * * *", "0 * * * *", "30 2 * * *", "0,30 9-17 * * 1-5", "0 0 29 2 *"]
)
def test_schedules_five_minutes_apart_or_more_are_accepted(expression: str) -> None:
    assert check_cron(expression) == expression


@pytest.mark.parametrize(
    "expression", ["", "* * * *", "61 * * * *", "* 25 * * *", "a b c d e", "* * * * * *"]
)
def test_invalid_cron_expressions_are_refused_naming_the_field(expression: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        check_cron(expression)

    assert caught.value.field == "schedule_cron"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "EST5EDT ", "../etc/passwd", "", "utc+1"])
def test_unknown_zones_are_refused_naming_the_field(zone: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        next_fire("0 0 * * *", zone, dt.datetime(2026, 1, 1, tzinfo=UTC))

    assert caught.value.field == "timezone"


@pytest.mark.parametrize("expression", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *", "0 0 31 6,9 *"])
def test_a_cron_that_can_never_fire_is_refused_and_never_raises_croniter_errors(
    expression: str,
) -> None:
    with pytest.raises(ScheduleError) as refused:
        check_cron(expression)
    with pytest.raises(ScheduleError) as no_fire:
        next_fire(expression, "UTC", dt.datetime(2026, 1, 1, tzinfo=UTC))

    assert refused.value.field == no_fire.value.field == "schedule_cron"


def test_a_leap_day_cron_is_accepted_and_fires_on_the_next_leap_day() -> None:
    assert check_cron("0 0 29 2 *") == "0 0 29 2 *"
    assert next_fire("0 0 29 2 *", "UTC", dt.datetime(2026, 1, 1, tzinfo=UTC)) == dt.datetime(
        2028, 2, 29, tzinfo=UTC
    )

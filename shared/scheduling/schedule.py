"""Cron schedules in a tenant's time zone: validation and DST-correct next fire times in UTC."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter
from croniter.croniter import CroniterError

# Schedules firing more often than this would spend a tenant's daily quota in
# minutes and flood the queue; the trigger ticks once a minute anyway.
MIN_INTERVAL_MINUTES = 5
_MINUTES_PER_DAY = 24 * 60


class ScheduleError(ValueError):
    """A cron expression or time zone that can't be used; the message names the problem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; refuses anything else (abbreviations, paths, offsets)."""
    if name not in _zone_names():
        raise ScheduleError("timezone", f"unknown IANA time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError("timezone", f"unknown IANA time zone {name!r}") from None


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def check_cron(expression: str) -> str:
    """A five-field cron expression that fires at most every MIN_INTERVAL_MINUTES."""
    expression = " ".join(expression.split())
    if len(expression.split(" ")) != 5:
        raise ScheduleError("schedule_cron", "must have five fields: minute hour day month weekday")
    try:
        minutes, hours = croniter(expression).expanded[:2]
    except (CroniterError, ValueError, KeyError):
        raise ScheduleError(
            "schedule_cron", f"not a valid cron expression: {expression!r}"
        ) from None
    all_hours = range(24) if hours == ["*"] else hours
    all_minutes = range(60) if minutes == ["*"] else minutes
    # Fire times within a day; consecutive days join at midnight, so the
    # wrap-around gap counts too (conservative for day-of-month schedules).
    times = sorted(int(h) * 60 + int(m) for h in all_hours for m in all_minutes)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    gaps.append(times[0] + _MINUTES_PER_DAY - times[-1])
    if min(gaps) < MIN_INTERVAL_MINUTES:
        raise ScheduleError(
            "schedule_cron",
            f"fires more often than every {MIN_INTERVAL_MINUTES} minutes; "
            "space the runs at least that far apart",
        )
    # A day that no month has (31 February, 31 April) passes the field checks
    # but never fires; refuse it here, paused or not, so activating the config
    # later can't fail. A leap day is found within croniter's look-ahead.
    try:
        croniter(expression, dt.datetime(2026, 1, 1)).get_next(dt.datetime)
    except (CroniterError, ValueError):
        raise ScheduleError(
            "schedule_cron", f"never fires: no date matches {expression!r}"
        ) from None
    return expression


def _localize(naive: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """A wall-clock time in `tz` as an aware instant, DST gaps and overlaps made explicit.

    fold=0 picks the first of two repeated times (fall back: the job runs once)
    and, for a time the clock skips (spring forward), the offset before the
    jump, i.e. the instant the skipped wall time would have had: 02:30 on a
    spring-forward day runs at 03:30 new time, once.
    """
    return naive.replace(tzinfo=tz, fold=0)


def next_fire(expression: str, tz_name: str, after: dt.datetime) -> dt.datetime:
    """The first fire time strictly after `after` (aware), in UTC."""
    if after.tzinfo is None:
        raise ValueError("`after` must be timezone-aware")
    tz = zone(tz_name)
    # Iterate wall-clock times (naive) so each matching wall time fires once,
    # then map to instants; a mapped instant can fall behind `after` around a
    # DST change, so keep going until one is in the future.
    local_after = after.astimezone(tz).replace(tzinfo=None)
    wall = croniter(expression, local_after - dt.timedelta(hours=3))
    try:
        for _ in range(10_000):
            candidate = _localize(wall.get_next(dt.datetime), tz)
            if candidate > after:
                return candidate.astimezone(dt.UTC)
    except (CroniterError, ValueError, OverflowError):
        # Only a stored expression older than check_cron's never-fires rule gets here.
        raise ScheduleError(
            "schedule_cron", f"never fires: no date matches {expression!r}"
        ) from None
    raise ScheduleError("schedule_cron", "no fire time found")  # pragma: no cover


def as_local(instant: dt.datetime | None, tz_name: str) -> str | None:
    """An instant shown in the config's zone, ISO 8601 with its offset."""
    return instant.astimezone(zone(tz_name)).isoformat() if instant else None

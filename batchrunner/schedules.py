"""Cron schedules: crontab(5) text in, an APScheduler CronTrigger out, refused when malformed.

APScheduler 3.x reads day-of-week numbers with 0 = Monday (agronholm/apscheduler#1102); crontab(5)
says 0 and 7 are Sunday. The day-of-week field is therefore expanded here into day names, which
both read the same way. A 6-field expression has seconds first.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Mapping
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from .errors import ConfigError

DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
OFF = "off"


def override_variable(job_name: str) -> str:
    return "RUNNER_SCHEDULE_" + job_name.upper().replace("-", "_")


def effective(job_name: str, default: str, env: Mapping[str, str]) -> tuple[str, str]:
    """The schedule in force and where it comes from (the variable's name, or "job")."""
    variable = override_variable(job_name)
    value = env.get(variable, "").strip()
    return (value, variable) if value else (default, "job")


def trigger(expression: str, tz: ZoneInfo, source: str = "schedule") -> CronTrigger | None:
    """A CronTrigger for a crontab expression, None for "off"; ConfigError naming `source` otherwise."""
    text = expression.strip()
    if text.lower() == OFF:
        return None
    text = MACROS.get(text.lower(), text)
    fields = text.split()
    if len(fields) not in (5, 6):
        raise ConfigError(source, f"{expression!r} has {len(fields)} fields; give 5 (minute hour day month weekday), 6 (seconds first) or 'off'")
    second, minute, hour, day, month, dow = (["0"] + fields) if len(fields) == 5 else fields
    if day != "*" and dow != "*":
        raise ConfigError(source, f"{expression!r} restricts both day of month and day of week; cron would run on either, so give one of them")
    try:
        return CronTrigger(
            second=second, minute=minute, hour=hour, day=day, month=month,
            day_of_week=_weekdays(dow), timezone=tz,
        )
    except ValueError as exc:
        raise ConfigError(source, f"{expression!r} is not a valid cron expression: {exc}") from None


def next_fire(trig: CronTrigger | None, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`, in UTC.

    In the hour that autumn's clock change repeats, APScheduler fires a fixed-hour job twice
    (once per UTC offset); like cron, the runner fires it once. In spring's skipped hour,
    APScheduler fires an hour late, once.
    """
    if trig is None:
        return None
    # APScheduler walks local wall times; given a UTC moment it does not get stuck on a repeated one.
    fire = trig.get_next_fire_time(None, after.astimezone(timezone.utc) + timedelta(microseconds=1))
    while fire is not None and _second_pass(trig, fire):
        fire = trig.get_next_fire_time(None, fire.astimezone(timezone.utc) + timedelta(microseconds=1))
    return fire.astimezone(timezone.utc) if fire is not None else None


def _second_pass(trig: CronTrigger, fire: datetime) -> bool:
    """True for the second occurrence of a repeated wall time, for a job with a fixed hour."""
    if not fire.fold or fire.replace(fold=0).utcoffset() == fire.utcoffset():
        return False
    hour = next(f for f in trig.fields if f.name == "hour")
    return str(hour) != "*"


def previous_fire(trig: CronTrigger | None, now: datetime, since: datetime) -> datetime | None:
    """The latest fire time in (since, now], or None.

    Cron triggers only step forward, so look back over growing windows: a per-second schedule
    down for a month costs a few steps, not millions.
    """
    if trig is None:
        return None
    for window in LOOKBACK_WINDOWS:
        start = since if window == timedelta.max else max(since, now - window)
        latest, candidate = None, next_fire(trig, start)
        while candidate is not None and candidate <= now:
            latest, candidate = candidate, next_fire(trig, candidate)
        if latest is not None or start == since:
            return latest
    return None


LOOKBACK_WINDOWS = [timedelta(minutes=2), timedelta(hours=2), timedelta(days=2), timedelta(days=40), timedelta(days=800), timedelta.max]


def _weekdays(field: str) -> str:
    """crontab(5) day-of-week (0-7, names, ranges, steps, lists) as a list of day names."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        days |= _weekday_part(part, field)
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def _weekday_part(part: str, field: str) -> set[int]:
    match = re.fullmatch(r"(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:/(\d+))?", part)
    if not match:
        raise ValueError(f"bad day of week {field!r}")
    start, end, step = match.groups()
    if start == "*":
        low, high = 0, 6
    else:
        low = _weekday(start, field)
        high = _weekday(end, field) if end else (6 if step else low)
    step_n = int(step) if step else 1
    if step_n < 1:
        raise ValueError(f"bad step in day of week {field!r}")
    if high == 7 and low > 0:
        return {d % 7 for d in range(low, 8, step_n)}
    if low > high:
        raise ValueError(f"day-of-week range {part!r} runs backwards")
    return {d % 7 for d in range(low, high + 1, step_n)}


def _weekday(token: str, field: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token[:3] in DAY_NAMES and len(token) in (3,) :
        return DAY_NAMES.index(token[:3])
    raise ValueError(f"bad day of week {token!r} in {field!r} (0-7 or sun-sat)")

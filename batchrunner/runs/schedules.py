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

from batchrunner.errors import ConfigError

DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
# Field: (lowest, highest, names). crontab(5) takes 0 and 7 for Sunday.
FIELDS = {
    "second": (0, 59, None),
    "minute": (0, 59, None),
    "hour": (0, 23, None),
    "day": (1, 31, None),
    "month": (1, 12, MONTH_NAMES),
    "day_of_week": (0, 7, DAY_NAMES),
}
NEVER_PROBE = datetime(2000, 1, 1, tzinfo=timezone.utc)  # a leap year: 29 February comes at once
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


def for_tenant(job_name: str, default: str, env: Mapping[str, str], tenant=None) -> tuple[str, str]:
    """The (job, tenant)'s schedule and the label its errors name: the tenants file's `schedule`, then
    RUNNER_SCHEDULE_<JOB> for the tenant `default` (or None), else the job's own (README, "Several tenants")."""
    given = tenant.settings_for(job_name).schedule if tenant is not None else None
    if given:
        expression, source = given, f"RUNNER_TENANTS_FILE tenant {tenant.name}, jobs.{job_name}.schedule"
    elif tenant is None or tenant.is_default:
        expression, source = effective(job_name, default, env)
    else:
        expression, source = default, "job"
    return expression, source if source != "job" else f"schedule of job {job_name}"


def check_overrides(env: Mapping[str, str], job_names) -> None:
    """Refuse a RUNNER_SCHEDULE_ variable that names no job: a typo would leave a job on its default."""
    known = {override_variable(name): name for name in job_names}
    for variable in sorted(env):
        if variable.startswith("RUNNER_SCHEDULE_") and variable not in known:
            names = ", ".join(known) or "none"
            raise ConfigError(variable, f"names no registered job; the variables of the registered jobs are {names}")


def trigger(expression: str, tz: ZoneInfo, source: str = "schedule") -> CronTrigger | None:
    """A CronTrigger for a crontab expression, None for "off"; ConfigError naming `source` otherwise."""
    text = expression.strip()
    if text.lower() == OFF:
        return None
    if text.startswith("@") and text.lower() not in MACROS:
        raise ConfigError(source, f"{expression!r} is not a schedule; use 5 cron fields or one of {', '.join(MACROS)}")
    text = MACROS.get(text.lower(), text)
    fields = text.split()
    if len(fields) not in (5, 6):
        raise ConfigError(source, f"{expression!r} has {len(fields)} fields; give 5 (minute hour day month weekday), 6 (seconds first) or 'off'")
    values = dict(zip(FIELDS, (["0"] + fields) if len(fields) == 5 else fields))
    if values["day"] != "*" and values["day_of_week"] != "*":
        raise ConfigError(source, f"{expression!r} restricts both day of month and day of week; cron would run on either, so give one of them")
    try:
        trig = CronTrigger(**{name: _field(name, value) for name, value in values.items()}, timezone=tz)
    except ValueError as exc:
        raise ConfigError(source, f"{expression!r} is not a valid cron expression: {exc}") from None
    if next_fire(trig, NEVER_PROBE) is None:
        raise ConfigError(source, f"{expression!r} names a date that never comes (such as 31 February)")
    return trig


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


def fires_at(trig: CronTrigger | None, moment: datetime) -> bool:
    """True when `moment` is one of the trigger's fire times."""
    return trig is not None and next_fire(trig, moment - timedelta(microseconds=1)) == moment


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


def _field(name: str, text: str) -> str:
    """One field as APScheduler reads it: numbers only (days of the week as names), checked strictly.

    APScheduler's own parser reads `0` as Monday and quietly drops what it does not understand
    (`jan-dec/3` becomes `jan`), so every field is expanded here first.
    """
    if text == "*":
        return "*"
    values: set[int] = set()
    for part in text.lower().split(","):
        values |= _part(name, part)
    if name == "day_of_week":
        return ",".join(DAY_NAMES[v % 7] for v in sorted({v % 7 for v in values}))
    return ",".join(str(v) for v in sorted(values))


def _part(name: str, part: str) -> set[int]:
    low, high, _ = FIELDS[name]
    match = re.fullmatch(r"(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:/(\d+))?", part)
    if not match:
        raise ValueError(f"bad {_label(name)} {part!r}")
    start, end, step = match.groups()
    if start == "*" and end is not None:
        raise ValueError(f"bad {_label(name)} {part!r}")
    if start == "*":
        first, last = low, (6 if name == "day_of_week" else high)
    else:
        first = _value(name, start)
        last = _value(name, end) if end else (high if step else first)
    if step is not None and int(step) < 1:
        raise ValueError(f"bad step in {_label(name)} {part!r}")
    if first > last:
        raise ValueError(f"{_label(name)} range {part!r} runs backwards")
    return set(range(first, last + 1, int(step or 1)))


def _value(name: str, token: str) -> int:
    low, high, names = FIELDS[name]
    if token.isdigit() and low <= int(token) <= high:
        return int(token)
    if names and token in names:
        return names.index(token) + low
    allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    raise ValueError(f"bad {_label(name)} {token!r} ({allowed})")


def _label(name: str) -> str:
    return name.replace("_", " ")

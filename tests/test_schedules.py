"""Cron schedules read as crontab(5) reads them, and refused when they are wrong."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from batchrunner.errors import ConfigError
from batchrunner.runs import schedules

UTC = ZoneInfo("UTC")
MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def test_weekday_zero_is_sunday_not_monday():
    fire = schedules.next_fire(schedules.trigger("0 2 * * 0", UTC), MONDAY)
    assert fire == datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)
    assert fire.strftime("%A") == "Sunday"


@pytest.mark.parametrize("dow, expected", [
    ("7", "sun"), ("1-5", "mon,tue,wed,thu,fri"), ("*/2", "sun,tue,thu,sat"),
    ("5-7", "sun,fri,sat"), ("sat,sun", "sun,sat"), ("MON", "mon"), ("0,3", "sun,wed"),
])
def test_weekday_fields_as_crontab_means_them(dow, expected):
    assert schedules._field("day_of_week", dow) == expected


@pytest.mark.parametrize("expression, first_fire", [
    ("0 2 * jan-dec/3 *", datetime(2027, 1, 1, 2, 0)),  # APScheduler alone would read every day of January
    ("0 2 1 JUL *", datetime(2027, 7, 1, 2, 0)),
    ("0 2 1 jul/2 *", datetime(2027, 7, 1, 2, 0)),  # from July, every other month to the year's end
    ("0 2 29 2 *", datetime(2028, 2, 29, 2, 0)),
    ("15,45 */6 * * *", datetime(2026, 11, 23, 12, 15)),
])
def test_month_names_steps_and_lists(expression, first_fire):
    assert schedules.next_fire(schedules.trigger(expression, UTC), MONDAY) == first_fire.replace(tzinfo=timezone.utc)


def test_six_fields_have_seconds_first():
    trig = schedules.trigger("*/2 * * * * *", UTC)
    assert schedules.next_fire(trig, MONDAY) == datetime(2026, 11, 23, 12, 0, 2, tzinfo=timezone.utc)


def test_macros_and_off():
    assert schedules.next_fire(schedules.trigger("@daily", UTC), MONDAY) == datetime(2026, 11, 24, tzinfo=timezone.utc)
    assert schedules.trigger("off", UTC) is None


@pytest.mark.parametrize("expression, fragment", [
    ("0 2 * *", "has 4 fields"),
    ("61 2 * * *", "is not a valid cron expression"),
    ("0 2 * * 8", "bad day of week"),
    ("0 2 1 * 1", "restricts both day of month and day of week"),
    ("every day", "has 2 fields"),
    ("0 2 * j/2 *", "bad month 'j' (1-12 or jan-dec)"),
    ("0 2 * jan- *", "bad month 'jan-'"),
    ("0 2 * jan-mar-may *", "bad month 'jan-mar-may'"),
    ("0 2 last * *", "bad day 'last'"),
    ("0 2 L * *", "bad day 'l'"),
    ("0 2 * * 6-0", "day of week range '6-0' runs backwards"),
    ("0 25 * * *", "bad hour '25' (0-23)"),
    ("0 2 * 13 *", "bad month '13' (1-12 or jan-dec)"),
    ("*/0 * * * *", "bad step in minute '*/0'"),
    ("*-5 * * * *", "bad minute '*-5'"),
    ("@reboot", "is not a schedule; use 5 cron fields or one of @yearly, @annually, @monthly"),
    ("0 2 31 2 *", "names a date that never comes"),
])
def test_bad_schedules_are_refused_naming_the_variable(expression, fragment):
    with pytest.raises(ConfigError) as err:
        schedules.trigger(expression, UTC, "RUNNER_SCHEDULE_EXPORT_CLIENTS")
    assert str(err.value).startswith(f"RUNNER_SCHEDULE_EXPORT_CLIENTS: {expression!r}")
    assert fragment in str(err.value)


def test_override_variable_and_effective_schedule():
    assert schedules.override_variable("export-clients") == "RUNNER_SCHEDULE_EXPORT_CLIENTS"
    env = {"RUNNER_SCHEDULE_EXPORT_CLIENTS": "*/5 * * * *"}
    assert schedules.effective("export-clients", "0 2 * * *", env) == ("*/5 * * * *", "RUNNER_SCHEDULE_EXPORT_CLIENTS")
    assert schedules.effective("export-clients", "0 2 * * *", {}) == ("0 2 * * *", "job")


BERLIN = ZoneInfo("Europe/Berlin")


def _fires(expression, start, end):
    trig = schedules.trigger(expression, BERLIN)
    fires, t = [], start
    while (t := schedules.next_fire(trig, t)) and t < end:
        fires.append(t)
    return fires


def test_the_skipped_hour_of_spring_fires_once():
    # 2027-03-28: Berlin skips from 02:00 to 03:00; a 02:30 job runs once that day, an hour late.
    fires = _fires("30 2 * * *", datetime(2027, 3, 27, 12, tzinfo=timezone.utc), datetime(2027, 3, 29, 12, tzinfo=timezone.utc))
    assert [f.astimezone(BERLIN).strftime("%m-%d %H:%M") for f in fires] == ["03-28 03:30", "03-29 02:30"]


def test_the_repeated_hour_of_autumn_fires_once():
    # 2026-10-25: Berlin repeats 02:00-03:00; a 02:30 job runs once, not twice.
    fires = _fires("30 2 * * *", datetime(2026, 10, 24, 12, tzinfo=timezone.utc), datetime(2026, 10, 26, 12, tzinfo=timezone.utc))
    assert [f.astimezone(BERLIN).strftime("%m-%d %H:%M") for f in fires] == ["10-25 02:30", "10-26 02:30"]


def test_previous_fire_finds_the_latest_missed_time():
    trig = schedules.trigger("0 * * * *", UTC)
    since = datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)
    assert schedules.previous_fire(trig, MONDAY, since) == MONDAY
    assert schedules.previous_fire(trig, datetime(2026, 11, 23, 8, 59, tzinfo=timezone.utc), since) is None


def test_an_hourly_wildcard_job_keeps_running_through_the_repeated_hour():
    fires = _fires("0 * * * *", datetime(2026, 10, 24, 23, tzinfo=timezone.utc), datetime(2026, 10, 25, 3, tzinfo=timezone.utc))
    # Local 02:00 CEST, 02:00 CET (the repeat) and 03:00 CET: every hour of real time, none dropped.
    assert [f.hour for f in fires] == [0, 1, 2]

"""Run records: no overlap, claims of scheduled times, abandoned runs (in-process, injected time)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select

from batchrunner import runs
from batchrunner.db import open_database
from batchrunner.models import RunStatus, Trigger, runs as runs_table

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def db(database_url):
    return open_database(database_url)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _running_row(db, **overrides):
    row = {"job": "export-clients", "trigger": "manual", "status": "running", "started_at": T0,
           "heartbeat_at": T0, "host": "other-host", "pid": 4242, **overrides}
    with db.write() as conn:
        return conn.execute(insert(runs_table).values(**row)).inserted_primary_key[0]


def _status(db, run_id):
    with db.read() as conn:
        return conn.execute(select(runs_table.c.status).where(runs_table.c.id == run_id)).scalar()


def test_a_second_run_is_skipped_while_the_first_runs(db):
    first = runs.start(db, "export-clients", Trigger.MANUAL, None, {}, T0)
    assert isinstance(first, runs.Started)
    second = runs.start(db, "export-clients", Trigger.MANUAL, None, {}, T0)
    assert isinstance(second, runs.Skipped) and second.blocker["id"] == first.run_id
    assert _status(db, second.run_id) == "skipped"
    runs.finish(db, first.run_id, RunStatus.SUCCEEDED, T0, result={"rows": 3})
    assert isinstance(runs.start(db, "export-clients", Trigger.MANUAL, None, {}, T0), runs.Started)


def test_other_jobs_are_not_blocked(db):
    assert isinstance(runs.start(db, "a", Trigger.MANUAL, None, {}, T0), runs.Started)
    assert isinstance(runs.start(db, "b", Trigger.MANUAL, None, {}, T0), runs.Started)


def test_a_run_whose_process_died_here_is_abandoned_at_once(db):
    from batchrunner import process

    stale = _running_row(db, host=process.HOST, node=process.NODE, pid=_dead_pid())
    assert isinstance(runs.start(db, "export-clients", Trigger.MANUAL, None, {}, T0), runs.Started)
    assert _status(db, stale) == "abandoned"


def test_a_run_on_another_host_is_abandoned_once_its_heartbeat_is_stale(db):
    other = _running_row(db, heartbeat_at=T0)
    fresh = T0 + timedelta(seconds=runs.STALE_SECONDS - 1)
    assert isinstance(runs.start(db, "export-clients", Trigger.MANUAL, None, {}, fresh), runs.Skipped)
    late = T0 + timedelta(seconds=runs.STALE_SECONDS + 1)
    assert isinstance(runs.start(db, "export-clients", Trigger.MANUAL, None, {}, late), runs.Started)
    assert _status(db, other) == "abandoned"


def test_a_scheduled_time_is_claimed_once(db):
    first = runs.start(db, "export-clients", Trigger.SCHEDULE, T0, {}, T0)
    runs.finish(db, first.run_id, RunStatus.SUCCEEDED, T0)
    again = runs.start(db, "export-clients", Trigger.CATCH_UP, T0, {}, T0)
    assert isinstance(again, runs.ClaimedElsewhere)


def test_an_abandoned_scheduled_run_gives_its_time_back(db):
    run_id = _running_row(db, trigger="schedule", scheduled_for=T0)
    with db.write() as conn:
        marked = runs.abandon_dead(conn, T0 + timedelta(seconds=runs.STALE_SECONDS + 1))
    assert [m["id"] for m in marked] == [run_id]
    with db.write() as conn:  # a second sweep finds nothing more to mark
        assert runs.abandon_dead(conn, T0 + timedelta(seconds=runs.STALE_SECONDS + 2)) == []
    rerun = runs.start(db, "export-clients", Trigger.CATCH_UP, T0, {}, T0 + timedelta(minutes=2))
    assert isinstance(rerun, runs.Started)


def test_finish_redacts_registered_secrets(db):
    from batchrunner.logs import redact_secret

    redact_secret("very-secret-value")
    started = runs.start(db, "x", Trigger.MANUAL, None, {}, T0)
    runs.finish(db, started.run_id, RunStatus.FAILED, T0, error="failed with very-secret-value inside")
    [row] = runs.history(db, "x")
    assert row["error"] == "failed with [redacted] inside"


def test_an_abandoned_fire_time_is_an_orphan_until_a_later_run_does_something(db):
    _running_row(db, trigger="schedule", scheduled_for=T0)
    late = T0 + timedelta(seconds=runs.STALE_SECONDS + 1)
    assert runs.sweep_dead(db, T0) == []  # heartbeat still fresh: nothing marked, no write taken
    assert [m["scheduled_for"] for m in runs.sweep_dead(db, late)] == [T0]
    assert runs.orphans(db) == [runs.Orphan("export-clients", T0, abandoned=1)]

    blocked = _running_row(db, status="skipped", trigger="schedule", scheduled_for=T0 + timedelta(hours=1))
    assert runs.orphans(db) == [runs.Orphan("export-clients", T0, abandoned=1)], "a skipped run did nothing"
    assert _status(db, blocked) == "skipped"
    later = runs.start(db, "export-clients", Trigger.MANUAL, None, {}, late)
    assert runs.orphans(db) == []
    runs.finish(db, later.run_id, RunStatus.FAILED, late, error="x")
    assert runs.orphans(db) == [], "a later run that failed still stands in for it"


def test_a_run_marked_abandoned_meanwhile_keeps_that_record_and_its_heartbeat_says_so(db):
    started = runs.start(db, "export-clients", Trigger.MANUAL, None, {}, T0)
    assert runs.beat(db, started.run_id, T0) is True
    with db.write() as conn:
        runs.abandon_dead(conn, T0 + timedelta(seconds=runs.STALE_SECONDS + 1))  # another host gave up on it
    assert runs.beat(db, started.run_id, T0 + timedelta(seconds=100)) is False
    runs.finish(db, started.run_id, RunStatus.SUCCEEDED, T0 + timedelta(seconds=100))
    assert _status(db, started.run_id) == "abandoned"

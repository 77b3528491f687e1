"""Run records: no overlap, claims of scheduled times, abandoned runs (in-process, injected time),
and two processes whose clocks disagree."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select, update

from batchrunner import process
from batchrunner.runs import records as runs
from batchrunner.store.database import database_time, open_database
from batchrunner.store.schema import RunStatus, Trigger, runs as runs_table
from conftest import QUIET, run_skewed, start_runner, wait_for

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
AHEAD = datetime.now(timezone.utc) + timedelta(days=365)  # a process clock far ahead: no longer the judge


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


def _db_now(db):
    with db.read() as conn:
        return database_time(conn)


def _set(db, run_id, **values):
    with db.write() as conn:
        conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(**values))


@pytest.fixture
def live_child():
    """A process of this node that stays alive while the test runs."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    child.kill()
    child.wait()


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
    stale = _running_row(db, host=process.HOST, node=process.NODE, pid=_dead_pid(), heartbeat_at=_db_now(db))
    assert isinstance(runs.start(db, "export-clients", Trigger.MANUAL, None, {}, T0), runs.Started)
    assert _status(db, stale) == "abandoned"


def test_a_run_on_another_node_is_abandoned_once_its_heartbeat_is_stale_by_the_database_clock(db):
    beaten = _db_now(db)
    other = _running_row(db, heartbeat_at=beaten - timedelta(seconds=runs.STALE_SECONDS - 10))
    # However far ahead this process's clock runs, the heartbeat is fresh by the database's.
    assert isinstance(runs.start(db, "export-clients", Trigger.MANUAL, None, {}, AHEAD), runs.Skipped)
    assert _status(db, other) == "running"
    _set(db, other, heartbeat_at=beaten - timedelta(seconds=runs.STALE_SECONDS + 1))
    assert isinstance(runs.start(db, "export-clients", Trigger.MANUAL, None, {}, T0), runs.Started)
    assert _status(db, other) == "abandoned"


def test_a_live_process_on_this_node_keeps_its_run_however_old_its_heartbeat(db, live_child):
    alive = _running_row(db, host=process.HOST, node=process.NODE, pid=live_child.pid,
                         pid_started=process.started(live_child.pid), heartbeat_at=T0)  # days old
    assert isinstance(runs.start(db, "export-clients", Trigger.MANUAL, None, {}, AHEAD), runs.Skipped)
    assert _status(db, alive) == "running"
    live_child.kill()
    live_child.wait()
    assert isinstance(runs.start(db, "export-clients", Trigger.MANUAL, None, {}, T0), runs.Started)
    assert _status(db, alive) == "abandoned"


def test_a_pid_given_to_a_later_process_does_not_keep_a_dead_run_alive(db, live_child):
    earlier = process.started(live_child.pid) - 100  # the run's process started before; its pid was reused
    reused = _running_row(db, host=process.HOST, node=process.NODE, pid=live_child.pid, pid_started=earlier,
                          heartbeat_at=_db_now(db))
    assert isinstance(runs.start(db, "export-clients", Trigger.MANUAL, None, {}, T0), runs.Started)
    assert _status(db, reused) == "abandoned"


def test_a_run_whose_end_the_database_refused_is_abandoned_by_the_next_sweep(db, refusals):
    started = runs.start(db, "export-clients", Trigger.MANUAL, None, {}, T0)
    refusals.refuse("runs", "NEW.status <> 'running'")
    with pytest.raises(runs.EndNotRecorded) as refused:
        runs.finish(db, started.run_id, RunStatus.SUCCEEDED, T0)
    assert str(refused.value).startswith(f"run {started.run_id} succeeded, but its end could not be recorded: the database")
    assert str(refused.value).endswith("; it shows as abandoned once the database takes writes again")
    assert _status(db, started.run_id) == "running"
    refusals.allow()
    # This very process is alive, but no longer runs it: the sweep (as `serve` makes every 10 s) marks it.
    assert [m["id"] for m in runs.sweep_dead(db, T0)] == [started.run_id]
    assert _status(db, started.run_id) == "abandoned"


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
    run_id = _running_row(db, trigger="schedule", scheduled_for=T0, heartbeat_at=_db_now(db))
    late = T0 + timedelta(seconds=runs.STALE_SECONDS + 1)
    assert runs.sweep_dead(db, T0) == []  # heartbeat still fresh: nothing marked, no write taken
    _set(db, run_id, heartbeat_at=_db_now(db) - timedelta(seconds=runs.STALE_SECONDS + 1))
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
    assert runs.beat(db, started.run_id) is True
    # As another host sees a run whose heartbeats stopped reaching the database (a partition):
    _set(db, started.run_id, node="another-node", heartbeat_at=_db_now(db) - timedelta(seconds=runs.STALE_SECONDS + 1))
    with db.write() as conn:
        assert [m["id"] for m in runs.abandon_dead(conn, T0)] == [started.run_id]
    assert runs.beat(db, started.run_id) is False
    runs.finish(db, started.run_id, RunStatus.SUCCEEDED, T0 + timedelta(seconds=100))
    assert _status(db, started.run_id) == "abandoned"


def test_the_heartbeat_is_the_database_clock(db):
    started = runs.start(db, "export-clients", Trigger.MANUAL, None, {}, AHEAD)
    before = _db_now(db)
    assert runs.beat(db, started.run_id)
    [row] = runs.history(db, "export-clients")
    assert before <= row["heartbeat_at"] <= _db_now(db)


@pytest.mark.parametrize("other_node", [False, True], ids=["same-node", "other-node"])
def test_a_process_95_s_ahead_does_not_abandon_a_live_run(local_env, tmp_path, other_node):
    env = {**local_env, **QUIET, "SLEEPY_SECONDS": "3"}
    db = open_database(env["RUNNER_DATABASE_URL"])
    first = start_runner(env, tmp_path, "run-job", "sleepy")
    wait_for(lambda: [r["status"] for r in runs.history(db, "sleepy")] == ["running"])
    ahead = run_skewed(env, tmp_path, 95, "run-job", "sleepy", other_node=other_node)
    assert ahead.returncode == 75, ahead.stderr
    assert first.wait(timeout=30) == 0, first.stderr.read()
    assert [r["status"] for r in runs.history(db, "sleepy")] == ["skipped", "succeeded"]

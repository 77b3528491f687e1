"""What `runner jobs`, `runner history` and the summaries show a person: the run in progress, tables
that fit the terminal, counts in the right number (issue 19, item 28)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from batchrunner.runs import records as runs
from batchrunner.store.database import open_database
from batchrunner.store.schema import RunStatus, Trigger
from conftest import QUIET, SQLITE_ONLY, on_a_terminal

pytestmark = SQLITE_ONLY
T0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
LONG_ERROR = ("the token lacks the scope read:roles for GET /api/v2/roles; grant read:roles to application abc "
              "(Dashboard > Applications > APIs > Auth0 Management API > Machine To Machine Applications), then run again")


def test_jobs_shows_the_run_in_progress_not_a_later_skipped_fire(local_runner, database_url):
    db = open_database(database_url)
    running = runs.start(db, "hello", Trigger.SCHEDULE, T0, {}, T0)  # this process: alive, never swept
    skipped = runs.start(db, "hello", Trigger.SCHEDULE, T0.replace(hour=3), {}, T0.replace(hour=3))
    assert isinstance(skipped, runs.Skipped)
    shown = json.loads(local_runner("jobs", "--json", extra_env=QUIET).stdout)
    [hello] = [j for j in shown if j["name"] == "hello"]
    assert hello["last_run"] == {"status": "running", "started_at": "2026-11-25T02:00:00Z"}
    runs.finish(db, running.run_id, RunStatus.SUCCEEDED, T0)
    shown = json.loads(local_runner("jobs", "--json", extra_env=QUIET).stdout)
    assert [j["last_run"]["status"] for j in shown if j["name"] == "hello"] == ["skipped"]  # nothing runs: the newest


@pytest.fixture
def long_history(database_url):
    db = open_database(database_url)
    for job in ("export-clients", "snapshot"):
        started = runs.start(db, job, Trigger.SCHEDULE, T0, {}, T0)
        runs.finish(db, started.run_id, RunStatus.FAILED, T0, error=LONG_ERROR)


def on_terminal(env, cwd, *args, columns: int) -> str:
    """What `runner ARGS` shows on a terminal `columns` wide."""
    return on_a_terminal({**env, **QUIET, "COLUMNS": str(columns)}, cwd, args, "stdout")


def test_history_fits_a_terminal_of_80_columns_and_loses_nothing(local_env, tmp_path, long_history):
    shown = on_terminal(local_env, tmp_path, "history", columns=80)
    lines = shown.split("\n\ndatabase: ")[0].splitlines()
    assert max(len(line) for line in lines) <= 80, shown
    assert lines[0].split() == ["RUN", "JOB", "TRIGGER", "STATUS", "STARTED", "(UTC)", "TOOK"]
    rows = [i for i, line in enumerate(lines) if line[:1].isdigit()]
    assert [lines[i].split() for i in rows] == [["2", "snapshot", "schedule", "failed", "2026-11-25T02:00:00Z", "0.0s"],
                                                 ["1", "export-clients", "schedule", "failed", "2026-11-25T02:00:00Z", "0.0s"]]
    for start, end in ((rows[0] + 1, rows[1]), (rows[1] + 1, len(lines))):
        assert " ".join(line.strip() for line in lines[start:end]) == f"error / result: {LONG_ERROR}"


def test_history_into_a_pipe_keeps_one_line_per_run(local_runner, long_history):
    lines = local_runner("history", extra_env={**QUIET, "COLUMNS": "80"}).stdout.splitlines()
    assert lines[2].endswith(LONG_ERROR) and lines[3].endswith(LONG_ERROR) and lines[4] == ""


def test_a_count_of_one_is_singular(local_runner):
    from batchrunner.cli.render import summary

    env = {**QUIET, "RUNNER_SCHEDULE_HELLO": "0 3 * * *"}
    assert local_runner("run-job", "hello", extra_env=env).returncode == 0
    assert local_runner("check", extra_env=env).stdout == "OK: 1 scheduled job; their latest runs succeeded and none is overdue\n"
    assert summary({"resources": {"roles": 1}, "path": "/x", "drift": "the first snapshot"}) == ": 1 row in 1 file at /x; the first snapshot"
    assert summary({"events": 1, "files": 1, "checkpoint": "9"}) == ": 1 event archived in 1 file; checkpoint 9"
    assert summary({"rows": 1, "path": "/x.csv"}) == ": 1 row written to /x.csv"

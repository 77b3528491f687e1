"""Timeouts (README, "Operating it unattended"): a run past its limit ends, is recorded failed, leaves no partial output."""

from __future__ import annotations

import json

import pytest

from batchrunner.runs import records as runs
from batchrunner.store.database import open_database
from conftest import QUIET, _runner, start_runner, stop, wait_for


@pytest.fixture
def quiet_env(clean_env, tmp_path):
    """SQLite only: nothing here is about the database."""
    return {**clean_env, **QUIET, "RUNNER_DATABASE_URL": f"sqlite:///{tmp_path / 'runner.db'}"}


@pytest.fixture
def local_runner(quiet_env, tmp_path):
    return _runner(quiet_env, tmp_path)


def _history(local_runner, env, job):
    return json.loads(local_runner("history", "--job", job, "--json", extra_env=env).stdout)


def test_run_job_ends_a_sleeping_job_at_its_timeout(local_runner, quiet_env):
    env = {**quiet_env, "SLEEPY_SECONDS": "60", "RUNNER_TIMEOUT_SLEEPY": "1"}
    result = local_runner("run-job", "sleepy", extra_env=env, timeout=20)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().endswith("runner: sleepy failed (run 1): timed out after 1 s")
    [run] = _history(local_runner, env, "sleepy")
    assert (run["status"], run["error"]) == ("failed", "timed out after 1 s")
    assert run["finished_at"] is not None


def test_a_job_that_ignores_stopping_leaves_no_partial_file(local_runner, quiet_env, tmp_path):
    env = {**quiet_env, "RUNNER_TIMEOUT_STUBBORN": "0.5"}
    result = local_runner("run-job", "stubborn", extra_env=env, timeout=20)
    assert result.returncode == 1 and "timed out after 0.5 s" in result.stderr
    exports = tmp_path / "exports"
    assert list(exports.iterdir()) == []  # neither stubborn.txt nor its hidden .partial


def test_serve_ends_a_job_that_ignores_stopping(local_runner, quiet_env, tmp_path):
    env = {**quiet_env, "RUNNER_SCHEDULE_STUBBORN": "* * * * * *", "RUNNER_TIMEOUT_STUBBORN": "1"}
    proc = start_runner(env, tmp_path, "serve")
    db = open_database(env["RUNNER_DATABASE_URL"])  # polled in this process, not by a `runner history` a poll
    wait_for(lambda: any(r["status"] == "failed" for r in runs.history(db, "stubborn")))
    code, err = stop(proc)
    assert code == 0, err
    failed = [r for r in _history(local_runner, env, "stubborn") if r["status"] == "failed"]
    assert failed[-1]["error"] == "timed out after 1 s"
    assert not any(p.name.startswith(".stubborn") for p in (tmp_path / "exports").iterdir())


def test_a_bad_timeout_is_a_setting_error(local_runner, quiet_env):
    result = local_runner("run-job", "hello", extra_env={**quiet_env, "RUNNER_TIMEOUT_HELLO": "soon"})
    assert result.returncode == 2
    assert result.stderr.strip() == "runner: RUNNER_TIMEOUT_HELLO: 'soon' is not a number of seconds; give e.g. 3600, or 'off' for no limit"
    typo = local_runner("serve", extra_env={**quiet_env, "RUNNER_TIMEOUT_HELO": "5"})
    assert typo.returncode == 2 and typo.stderr.startswith("runner: RUNNER_TIMEOUT_HELO: names no registered job")


def test_the_bundled_export_has_a_limit_that_can_be_lifted():
    from batchrunner.runs import timeouts
    from batchrunner.runs.registry import discover

    export = discover()["export-clients"]
    assert export.timeout == 3600
    assert timeouts.effective("export-clients", export.timeout, {"RUNNER_TIMEOUT_EXPORT_CLIENTS": "off"}) is None
    assert timeouts.effective("export-clients", export.timeout, {"RUNNER_TIMEOUT_EXPORT_CLIENTS": "90"}) == 90


def test_run_job_ends_a_job_whose_interruption_a_finaliser_ignored(local_runner, quiet_env):
    """The interruption lands in a `__del__`, which ignores it: the job looped on for ever."""
    env = {**quiet_env, "RUNNER_TIMEOUT_FINALIZER": "0.5"}
    result = local_runner("run-job", "finalizer", extra_env=env, timeout=20)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().endswith("runner: finalizer failed (run 1): timed out after 0.5 s")


def test_serve_ends_a_job_whose_interruption_a_finaliser_ignored(local_runner, quiet_env, tmp_path):
    env = {**quiet_env, "RUNNER_SCHEDULE_FINALIZER": "* * * * * *", "RUNNER_TIMEOUT_FINALIZER": "0.5"}
    proc = start_runner(env, tmp_path, "serve", "--stop-timeout", "0")
    db = open_database(env["RUNNER_DATABASE_URL"])
    wait_for(lambda: any(r["status"] == "failed" for r in runs.history(db, "finalizer")), timeout=20)
    code, err = stop(proc)
    assert code == 0, err
    failed = [r for r in _history(local_runner, env, "finalizer") if r["status"] == "failed"]
    assert failed[-1]["error"] == "timed out after 0.5 s"
    assert "the time limit's interruption landed in a finaliser (finalizer.<locals>.Slow.__del__) and was ignored" in err


@pytest.mark.parametrize("command", ["run-job", "serve"])
@pytest.mark.parametrize("job, schedule", [
    # The interruption broke a cleanup that then raised (PostgreSQL's, a query cut off mid-way):
    # its error, not the time limit, was recorded.
    ("messy", "* * * * * *"),
    # The job catches the interruption and goes on: it is interrupted again.
    ("swallower", "*/5 * * * * *"),
])
def test_a_run_past_its_limit_is_timed_out_whatever_it_does_with_the_interruption(local_runner, quiet_env, tmp_path,
                                                                                     command, job, schedule):
    variable = job.upper()
    env = {**quiet_env, f"RUNNER_TIMEOUT_{variable}": "0.5"}
    if command == "run-job":
        result = local_runner("run-job", job, extra_env=env, timeout=20)
        assert result.returncode == 1 and result.stderr.strip().endswith(f"runner: {job} failed (run 1): timed out after 0.5 s")
        return
    env[f"RUNNER_SCHEDULE_{variable}"] = schedule
    proc = start_runner(env, tmp_path, "serve", "--stop-timeout", "0")
    db = open_database(env["RUNNER_DATABASE_URL"])
    wait_for(lambda: any(r["status"] == "failed" for r in runs.history(db, job)), timeout=20)
    assert stop(proc)[0] == 0
    failed = [r for r in _history(local_runner, env, job) if r["status"] == "failed"]
    assert failed[0]["error"] == "timed out after 0.5 s"

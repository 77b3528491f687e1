"""Timeouts (SPEC section 16): a run past its limit ends, is recorded failed, leaves no partial output."""

from __future__ import annotations

import json

import pytest

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
    wait_for(lambda: any(r["status"] == "failed" for r in _history(local_runner, env, "stubborn")))
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
    from batchrunner import timeouts
    from batchrunner.registry import discover

    export = discover()["export-clients"]
    assert export.timeout == 3600
    assert timeouts.effective("export-clients", export.timeout, {"RUNNER_TIMEOUT_EXPORT_CLIENTS": "off"}) is None
    assert timeouts.effective("export-clients", export.timeout, {"RUNNER_TIMEOUT_EXPORT_CLIENTS": "90"}) == 90

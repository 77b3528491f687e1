"""A job's params for scheduled runs (RUNNER_PARAMS_<JOB>), --param over them, and required params
refused at start instead of failing every run (issue 19, item 27)."""

from __future__ import annotations

import json

import pytest

from batchrunner.runs import records as runs
from batchrunner.store.database import open_database
from conftest import JOBS, QUIET, SQLITE_ONLY, _runner, start_runner, stop, wait_for

pytestmark = SQLITE_ONLY

JOB = '''
from batchrunner.runs.registry import job

@job("admins-seen", schedule="*/30 * * * *", description="Needs a role.", needs_api=False, params=("note",), requires=("role",))
def admins_seen(ctx):
    return {"role": ctx.params["role"], "note": ctx.params.get("note", "")}
'''
MISSING = ('runner: admins-seen requires the param role: give --param role=VALUE, '
           'or set RUNNER_PARAMS_ADMINS_SEEN="role=VALUE" for every run')


@pytest.fixture
def env(local_env, tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "admins.py").write_text(JOB)
    return {**local_env, **QUIET, "RUNNER_JOBS": f"{JOBS}:{tmp_path / 'jobs'}", "RUNNER_SCHEDULE_ADMINS_SEEN": "off"}


@pytest.fixture
def cli(env, tmp_path):
    return _runner(env, tmp_path)


def test_a_required_param_given_nowhere_is_exit_2_and_no_run(cli):
    shown = cli("run-job", "admins-seen")
    assert shown.returncode == 2
    assert shown.stderr.strip() == MISSING
    assert json.loads(cli("history", "--json").stdout) == []


def test_runner_params_give_a_run_its_params_and_param_overrides_them_key_by_key(cli):
    given = {"RUNNER_PARAMS_ADMINS_SEEN": "role=rol_1 note='two words'"}
    shown = cli("run-job", "admins-seen", "--json", extra_env=given)
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert run["result"] == {"role": "rol_1", "note": "two words"} and run["params"] == {"role": "rol_1", "note": "two words"}
    shown = cli("run-job", "admins-seen", "--param", "role=rol_2", "--json", extra_env=given)
    assert json.loads(shown.stdout)["result"] == {"role": "rol_2", "note": "two words"}


@pytest.mark.parametrize("value, message", [
    ("role='rol_1", "runner: RUNNER_PARAMS_ADMINS_SEEN: no closing quotation; give KEY=VALUE pairs separated by spaces, quoted as in a shell"),
    ("rol_1", "runner: RUNNER_PARAMS_ADMINS_SEEN: 'rol_1' is no KEY=VALUE pair; give e.g. RUNNER_PARAMS_ADMINS_SEEN=\"role=rol_1\""),
    ("role=r rol=x", "runner: RUNNER_PARAMS_ADMINS_SEEN: admins-seen takes no param rol; its parameters: note, role"),
])
def test_a_malformed_runner_params_is_one_line_naming_it(cli, value, message):
    shown = cli("run-job", "admins-seen", extra_env={"RUNNER_PARAMS_ADMINS_SEEN": value})
    assert (shown.returncode, shown.stderr.strip()) == (2, message)


def test_serve_refuses_at_start_a_scheduled_job_without_its_required_param(cli):
    shown = cli("serve", extra_env={"RUNNER_SCHEDULE_ADMINS_SEEN": "0 2 * * *"})
    assert shown.returncode == 2
    assert shown.stderr.strip() == (
        'runner: RUNNER_PARAMS_ADMINS_SEEN: admins-seen requires the param role for its scheduled runs; '
        'set e.g. RUNNER_PARAMS_ADMINS_SEEN="role=VALUE", or turn the job off')
    typo = cli("serve", extra_env={"RUNNER_PARAMS_ADMIN_SEEN": "role=x"})
    assert typo.returncode == 2 and typo.stderr.startswith("runner: RUNNER_PARAMS_ADMIN_SEEN: names no registered job; ")
    assert "RUNNER_PARAMS_ADMINS_SEEN" in typo.stderr


def recorded_runs(env, job):
    return runs.history(open_database(env["RUNNER_DATABASE_URL"]), job, limit=100)


def test_a_scheduled_run_gets_its_params(env, tmp_path):
    env = {**env, "RUNNER_SCHEDULE_ADMINS_SEEN": "* * * * * *", "RUNNER_PARAMS_ADMINS_SEEN": "role=rol_9"}
    proc = start_runner(env, tmp_path, "serve")
    wait_for(lambda: any(r["status"] == "succeeded" for r in recorded_runs(env, "admins-seen")))
    assert stop(proc)[0] == 0
    run = next(r for r in recorded_runs(env, "admins-seen") if r["status"] == "succeeded")
    assert run["trigger"] == "schedule" and run["params"] == {"role": "rol_9"}
    assert run["result"] == {"role": "rol_9", "note": ""}


def test_a_value_without_its_key_is_shown_with_the_jobs_own_key(cli):
    shown = cli("run-job", "snapshot", extra_env={"RUNNER_PARAMS_SNAPSHOT": "roles"})
    assert (shown.returncode, shown.stderr.strip()) == (
        2, 'runner: RUNNER_PARAMS_SNAPSHOT: \'roles\' is no KEY=VALUE pair; give e.g. RUNNER_PARAMS_SNAPSHOT="resources=roles"')

"""A per-job variable that names no registered job is a setting error for run-job too (README,
"Configuration"): in a cron environment file a typo left a job without its limit or its pings."""

import pytest

from conftest import QUIET

NAMED = ("RUNNER_SCHEDULE_", "RUNNER_TIMEOUT_", "RUNNER_PING_URL_", "RUNNER_PARAMS_")
VALUES = {"RUNNER_SCHEDULE_": "off", "RUNNER_TIMEOUT_": "600", "RUNNER_PING_URL_": "https://hc-ping.com/x",
          "RUNNER_PARAMS_": "name=x"}


@pytest.mark.parametrize("prefix", NAMED)
def test_run_job_refuses_a_per_job_variable_naming_no_job_before_recording_a_run(local_runner, prefix):
    typo = f"{prefix}HELO"  # meant: {prefix}HELLO
    result = local_runner("run-job", "hello", extra_env={**QUIET, typo: VALUES[prefix]})
    assert (result.returncode, result.stdout) == (2, "")
    line = result.stderr.splitlines()[-1]
    assert line.startswith(f"runner: {typo}: names no registered job; the variables of the registered jobs are ")
    assert f"{prefix}HELLO, " in line
    assert local_runner("history", "--json", extra_env=QUIET).stdout.strip() == "[]"


def test_run_job_takes_per_job_variables_of_registered_jobs(local_runner):
    settings = {**QUIET, "RUNNER_TIMEOUT_HELLO": "600", "RUNNER_PARAMS_HELLO": "name=x", "RUNNER_TIMEOUT_SLEEPY": "5"}
    assert local_runner("run-job", "hello", extra_env=settings).returncode == 0


def test_serve_refuses_a_ping_variable_naming_no_job(local_runner):
    result = local_runner("serve", extra_env={**QUIET, "RUNNER_PING_URL_HELO": "https://hc-ping.com/x"})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1].startswith("runner: RUNNER_PING_URL_HELO: names no registered job; ")


def test_the_names_checked_are_those_the_runner_reads():
    from batchrunner.operating import pings
    from batchrunner.runs import job_variables, params, schedules, timeouts

    namers = (schedules.override_variable, timeouts.variable, pings.variable, params.variable)
    job_variables.check({namer("export-clients"): "x" for namer in namers}, ["export-clients"])  # none refused

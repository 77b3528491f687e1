"""What a new user meets at the command line: where the database is, settings that are wrong, a
job's result, killed runs (issue 9)."""

from __future__ import annotations

import json
import signal
import time

import pytest
from sqlalchemy.engine import make_url

from conftest import JOBS, SQLITE_ONLY, _runner, start_runner, wait_for

HOW = "to read another, set RUNNER_DATABASE_URL (or STATE_DIRECTORY, whose runner.db is the default)"


@pytest.fixture
def cli(clean_env, tmp_path):
    """`runner` in this test's folder, with the default database (./var/runner.db) and the test jobs."""
    return _runner({**clean_env, "RUNNER_JOBS": JOBS}, tmp_path)


@pytest.mark.parametrize("args, nothing", [
    (("history",), "No runs recorded yet"),
    (("jobs",), "No job has run yet"),
    (("token", "status"), "No cached token"),
    (("token", "issuances"), "No token issued yet"),
])
def test_reading_commands_create_no_database_and_say_where_they_looked(cli, tmp_path, args, nothing):
    line = f"{nothing}: no database at {tmp_path / 'var' / 'runner.db'}; {HOW}"
    shown = cli(*args)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-1] == line and shown.stderr == ""
    as_json = cli(*args, "--json")
    assert as_json.returncode == 0
    assert as_json.stderr == line + "\n"  # the JSON on stdout stays what scripts expect
    assert json.loads(as_json.stdout) == [] or args == ("jobs",)
    assert not (tmp_path / "var").exists()


def test_the_state_directory_is_where_they_look(cli, tmp_path):
    shown = cli("history", extra_env={"STATE_DIRECTORY": str(tmp_path / "state")})
    assert shown.stdout == f"No runs recorded yet: no database at {tmp_path / 'state' / 'runner.db'}; {HOW}\n"


def test_history_and_jobs_name_the_database_they_read(local_runner, database_url):
    assert local_runner("run-job", "hello", extra_env={"RUNNER_JOBS": JOBS}).returncode == 0
    shown = make_url(database_url).render_as_string(hide_password=True)
    for args in (("history",), ("jobs",)):
        out = local_runner(*args, extra_env={"RUNNER_JOBS": JOBS}).stdout
        assert out.splitlines()[-1] == f"database: {shown}"
    [run] = json.loads(local_runner("history", "--json").stdout)  # JSON unchanged: no footer
    assert run["status"] == "succeeded"


@pytest.mark.parametrize("variable, value, message", [
    ("RUNNER_STOP_TIMEOUT", "abc", "runner: RUNNER_STOP_TIMEOUT: 'abc' is not a number of seconds; e.g. 60"),
    ("RUNNER_LOG_FORMAT", "xml", "runner: RUNNER_LOG_FORMAT: 'xml' is not a log format; use text or json"),
    ("RUNNER_SCHEDUEL_EXPORT_CLIENTS", "off",
     "runner: RUNNER_SCHEDUEL_EXPORT_CLIENTS: not a setting of the runner; did you mean RUNNER_SCHEDULE_EXPORT_CLIENTS?"),
    ("RUNNER_JOBS", "/etc/no-such/jobs", "runner: RUNNER_JOBS: no such file or folder: /etc/no-such/jobs"),
    ("RUNNER_JOBS", "no_such_jobs", "runner: RUNNER_JOBS: no such file or folder: no_such_jobs (nor a module of that name)"),
])
def test_a_bad_setting_is_one_line_naming_it(cli, tmp_path, variable, value, message):
    for command in (("serve",), ("run-job", "hello")):
        result = cli(*command, extra_env={variable: value})
        assert (result.returncode, result.stderr) == (2, message + "\n")
    assert not (tmp_path / "var").exists()  # refused before anything is recorded


def test_a_job_module_that_imports_a_missing_module_says_so(cli, tmp_path):
    (tmp_path / "broken.py").write_text("import no_such_dependency\n")
    result = cli("jobs", extra_env={"RUNNER_JOBS": str(tmp_path / "broken.py")})
    assert result.stderr == (f"runner: RUNNER_JOBS: cannot load {tmp_path / 'broken.py'}: "
                             "ModuleNotFoundError: No module named 'no_such_dependency'\n")


def test_a_runner_variable_that_is_no_setting_is_named_not_fatal(cli):
    result = cli("run-job", "hello", extra_env={"RUNNER_COLOUR": "blue"})
    assert result.returncode == 0
    assert result.stderr.splitlines()[0] == "runner: warning: RUNNER_COLOUR is not a setting of the runner; ignored (see README, Configuration)"


def test_run_job_honours_runner_log_format(cli):
    result = cli("run-job", "hello", extra_env={"RUNNER_LOG_FORMAT": "json"})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["message"] for line in lines] == ["started (manual)", "succeeded"]
    assert {line["job"] for line in lines} == {"hello"}


def test_a_job_that_returns_no_dict_fails_naming_the_type(cli, tmp_path):
    (tmp_path / "listy.py").write_text(
        "from batchrunner.runs.registry import job\n\n"
        "@job('listy', schedule='0 1 * * *', description='Returns a list.', needs_api=False)\n"
        "def listy(ctx):\n    return [1, 2]\n")
    extra = {"RUNNER_JOBS": str(tmp_path / "listy.py")}
    result = cli("run-job", "listy", extra_env=extra)
    assert result.returncode == 1
    reason = "job listy returned a list; a job returns a dict (its result, a JSON object) or None"
    assert result.stderr.splitlines()[-1] == f"runner: listy failed (run 1): {reason}"
    [run] = json.loads(cli("history", "--json", extra_env=extra).stdout)
    assert (run["status"], run["error"], run["result"]) == ("failed", reason, None)


def test_run_job_ends_with_its_database_closed_and_its_output_whole(cli, tmp_path):
    # The process ends without the interpreter's teardown (batchrunner/cli/ending.py), yet SQLite's
    # WAL is folded into the file as at a normal exit, and stdout and the log are complete.
    result = cli("run-job", "hello", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"]["greeting"] == "hello world"
    assert result.stderr.splitlines()[-1].endswith("succeeded")
    assert sorted(p.name for p in (tmp_path / "var").iterdir()) == ["runner.db"]


def test_a_thread_a_job_leaves_running_is_still_waited_for(cli, tmp_path):
    marker = tmp_path / "late.txt"
    (tmp_path / "late.py").write_text(
        "import threading, time\n"
        "from batchrunner.runs.registry import job\n\n"
        "def finish(path):\n    time.sleep(0.3)\n    open(path, 'w').write('done')\n\n"
        "@job('late', schedule='0 1 * * *', description='Leaves a thread writing a file.', needs_api=False)\n"
        f"def late(ctx):\n    threading.Thread(target=finish, args=({str(marker)!r},)).start()\n")
    result = cli("run-job", "late", extra_env={"RUNNER_JOBS": str(tmp_path / "late.py")})
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "done"


def test_an_exit_code_survives_the_quick_ending(cli):
    result = cli("run-job", "failing")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "runner: failing failed (run 1): RuntimeError: this job always fails"


def test_json_logs_are_json_to_the_last_line(cli):
    """A log shipper reading run-job's stderr gets JSON records only: warnings, the verdict, a bad setting."""
    as_json = {"RUNNER_LOG_FORMAT": "json", "RUNNER_SOMETHING_ELSE": "1"}
    failed = cli("run-job", "failing", extra_env=as_json)
    assert failed.returncode == 1
    records = [json.loads(line) for line in failed.stderr.splitlines()]
    assert (records[0]["level"], records[0]["message"]) == (
        "WARNING", "RUNNER_SOMETHING_ELSE is not a setting of the runner; ignored (see README, Configuration)")
    assert (records[-1]["level"], records[-1]["message"]) == ("ERROR", "failing failed (run 1): RuntimeError: this job always fails")
    refused = cli("run-job", "hello", extra_env={**as_json, "RUNNER_STOP_TIMEOUT": "abc"})
    assert refused.returncode == 2
    [record] = [json.loads(line) for line in refused.stderr.splitlines()]
    assert record["message"] == "RUNNER_STOP_TIMEOUT: 'abc' is not a number of seconds; e.g. 60"
    unknown = cli("run-job", "no-such-job", extra_env=as_json)
    assert unknown.returncode == 2 and all(json.loads(line) for line in unknown.stderr.splitlines())


def test_a_secret_given_twice_is_warned_about_on_stderr(cli, tmp_path):
    both = {"AUTH0_CLIENT_SECRET": "s3cret-value", "AUTH0_CLIENT_SECRET_FILE": str(tmp_path / "secret")}
    result = cli("history", extra_env=both)
    assert result.returncode == 0
    assert result.stderr == ("runner: warning: AUTH0_CLIENT_SECRET and AUTH0_CLIENT_SECRET_FILE are both set; "
                             "AUTH0_CLIENT_SECRET is used and the file is not read: unset one\n")
    assert "s3cret" not in result.stdout + result.stderr


@SQLITE_ONLY
def test_a_bad_metrics_address_stops_serve_before_it_asks_for_a_token(runner, tenant, tmp_path):
    result = runner("serve", extra_env={"RUNNER_METRICS_ADDRESS": "9464"})
    assert (result.returncode, result.stderr) == (2, "runner: RUNNER_METRICS_ADDRESS: '9464' is not HOST:PORT; give e.g. "
                                                     "127.0.0.1:9464 (0.0.0.0:9464 to listen on every interface)\n")
    assert tenant.tenant.token_requests == 0


@SQLITE_ONLY
def test_a_relative_export_dir_gives_absolute_paths_in_the_run_result(runner, tenant, tmp_path):
    result = runner("run-job", "export-clients", "--json", extra_env={"RUNNER_EXPORT_DIR": "out"})
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["result"]["path"].startswith(f"{tmp_path}/out/clients-") and run["result"]["latest"] == f"{tmp_path}/out/clients-latest.csv"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_runs_api_calls_before_the_job_has_unwound(local_env, lone_tenant, tmp_path, signum):
    """The run's page threads were stopped only once the job had unwound: a snapshot's list threads
    asked six more pages while its cleanup and heartbeat ended on PostgreSQL."""
    app = lone_tenant.tenant
    app.latency = 0.02
    env = {**local_env, **lone_tenant.settings(), "RUNNER_JOBS": JOBS}
    victim = start_runner(env, tmp_path, "run-job", "slow-to-end")
    wait_for(lambda: app.api_requests >= 3)
    signalled = time.time()
    victim.send_signal(signum)
    _, err = victim.communicate(timeout=20)
    assert victim.returncode == 1, err
    assert "runner: slow-to-end was interrupted; the run is recorded as failed" in err
    asked_after = [r["path"] for r in app.received if r["at"] > signalled + 0.05]
    assert asked_after == [], asked_after  # its cleanup took 1 s: dozens of requests without the fix

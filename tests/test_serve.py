"""`runner serve` as systemd runs it: real processes, real signals, a seconds-level schedule."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert

from batchrunner.runs import records as runs_module
from batchrunner.store.database import open_database
from batchrunner.store.schema import runs as runs_table
from conftest import QUIET, ROOT, SQLITE_ONLY, start_runner, stop, wait_for

@pytest.fixture
def serve_env(local_env):
    return {**local_env, **QUIET}


@pytest.fixture
def runner(local_runner):
    return local_runner


def history(runner, serve_env, job):
    out = runner("history", "--job", job, "--json", "--limit", "100", extra_env=serve_env)
    return json.loads(out.stdout)


def recorded(serve_env, job):
    """The job's runs read in this process: waiting on them costs no `runner history` process a poll."""
    return runs_module.history(open_database(serve_env["RUNNER_DATABASE_URL"]), job, limit=100)


def test_serve_fires_on_schedule_and_stops_cleanly(runner, serve_env, tmp_path):
    env = {**serve_env, "RUNNER_SCHEDULE_HELLO": "*/2 * * * * *"}
    proc = start_runner(env, tmp_path, "serve")
    wait_for(lambda: len([r for r in recorded(env, "hello") if r["status"] == "succeeded"]) >= 3)
    code, err = stop(proc)
    assert code == 0, err
    runs = history(runner, env, "hello")
    assert {r["trigger"] for r in runs} == {"schedule"}
    assert {r["status"] for r in runs} == {"succeeded"}
    fired = [datetime.fromisoformat(r["scheduled_for"].replace("Z", "+00:00")) for r in runs]
    assert len(set(fired)) == len(fired) and all(t.second % 2 == 0 for t in fired)
    assert "received SIGTERM; starting no new runs" in err and "stopped cleanly" in err
    assert " job=hello run=" in err  # log lines carry job and run id


@SQLITE_ONLY
def test_sigterm_waits_for_a_running_job(runner, serve_env, tmp_path):
    env = {**serve_env, "RUNNER_SCHEDULE_SLEEPY": "* * * * * *", "SLEEPY_SECONDS": "2"}
    proc = start_runner(env, tmp_path, "serve", "--stop-timeout", "20")
    wait_for(lambda: any(r["status"] == "running" for r in recorded(env, "sleepy")))
    code, err = stop(proc)
    assert code == 0, err
    # It finished; nothing new ran (a fire time that came while it ran, on a loaded machine, is recorded skipped).
    runs = [r for r in history(runner, env, "sleepy") if r["status"] != "skipped"]
    assert [r["status"] for r in runs] == ["succeeded"]


def test_a_job_that_outlives_the_stop_timeout_is_recorded_failed(runner, serve_env, tmp_path):
    env = {**serve_env, "RUNNER_SCHEDULE_SLEEPY": "* * * * * *", "SLEEPY_SECONDS": "60"}
    proc = start_runner(env, tmp_path, "serve", "--stop-timeout", "0.5")
    wait_for(lambda: any(r["status"] == "running" for r in recorded(env, "sleepy")))
    code, _ = stop(proc)
    assert code == 0
    [run] = [r for r in history(runner, env, "sleepy") if r["status"] != "skipped"]  # see above
    assert run["status"] == "failed"
    assert run["error"] == "interrupted: the scheduler was stopped and the run did not finish within 0.5 s"


def test_a_missed_run_is_caught_up_once(runner, serve_env, tmp_path, database_url):
    env = {**serve_env, "RUNNER_SCHEDULE_HELLO": "0 * * * *"}
    now = datetime.now(timezone.utc)
    long_ago = now - timedelta(hours=5)
    with open_database(database_url).write() as conn:
        conn.execute(insert(runs_table).values(
            job="hello", trigger="schedule", scheduled_for=long_ago.replace(minute=0, second=0, microsecond=0),
            status="succeeded", started_at=long_ago, finished_at=long_ago, host="old-host", pid=1))
    proc = start_runner(env, tmp_path, "serve")
    wait_for(lambda: len(recorded(env, "hello")) == 2)
    assert stop(proc)[0] == 0
    newest = history(runner, env, "hello")[0]
    assert newest["trigger"] == "catch-up" and newest["status"] == "succeeded"
    hours = {t.replace(minute=0, second=0, microsecond=0) for t in (now, datetime.now(timezone.utc))}  # across the hour too
    assert newest["scheduled_for"] in {h.isoformat().replace("+00:00", "Z") for h in hours}

    # A second start finds the catch-up run after the missed time: nothing more to do.
    again = start_runner(env, tmp_path, "serve")
    assert stop_after_ready(again)[0] == 0
    assert len(history(runner, env, "hello")) == 2


def test_a_job_that_never_ran_is_not_caught_up(runner, serve_env, tmp_path):
    env = {**serve_env, "RUNNER_SCHEDULE_HELLO": "0 * * * *"}
    proc = start_runner(env, tmp_path, "serve")
    code, err = stop_after_ready(proc)
    assert code == 0, err
    assert history(runner, env, "hello") == []


def read_until(proc, fragment):
    """Lines of the process's stderr up to the first that holds `fragment`."""
    lines = [proc.stderr.readline()]
    while lines[-1] and fragment not in lines[-1]:
        lines.append(proc.stderr.readline())
    assert fragment in lines[-1], "".join(lines)
    return lines


def stop_after_ready(proc):
    read_until(proc, "scheduling")
    return stop(proc)


@SQLITE_ONLY
def test_an_invalid_schedule_exits_2_naming_the_variable(runner, serve_env):
    result = runner("serve", extra_env={**serve_env, "RUNNER_SCHEDULE_HELLO": "0 2 * *"})
    assert result.returncode == 2
    assert result.stderr.strip() == "runner: RUNNER_SCHEDULE_HELLO: '0 2 * *' has 4 fields; give 5 (minute hour day month weekday), 6 (seconds first) or 'off'"


@SQLITE_ONLY
def test_a_schedule_variable_that_names_no_job_exits_2(runner, serve_env):
    for command in ("serve", "jobs"):
        result = runner(command, extra_env={**serve_env, "RUNNER_SCHEDULE_EXPORT_CLIENT": "off"})
        assert result.returncode == 2
        assert result.stderr.startswith("runner: RUNNER_SCHEDULE_EXPORT_CLIENT: names no registered job; ")
        assert "RUNNER_SCHEDULE_EXPORT_CLIENTS" in result.stderr


@SQLITE_ONLY
def test_a_second_sigint_ends_the_grace_time(runner, serve_env, tmp_path):
    env = {**serve_env, "RUNNER_SCHEDULE_SLEEPY": "* * * * * *", "SLEEPY_SECONDS": "60"}
    proc = start_runner(env, tmp_path, "serve", "--stop-timeout", "60")
    read_until(proc, "started (schedule)")
    proc.send_signal(signal.SIGINT)
    read_until(proc, "received SIGINT; starting no new runs")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    [run] = history(runner, env, "sleepy")
    assert run["status"] == "failed" and run["error"].startswith("interrupted: ")


@SQLITE_ONLY
def test_json_log_lines_carry_job_and_run(runner, serve_env, tmp_path):
    env = {**serve_env, "RUNNER_SCHEDULE_HELLO": "* * * * * *"}
    proc = start_runner(env, tmp_path, "serve", "--log-format", "json")
    seen = read_until(proc, '"succeeded"')
    code, err = stop(proc)
    assert code == 0
    lines = [json.loads(line) for line in "".join(seen).splitlines() + err.splitlines()]
    assert {"time", "level", "job", "run", "message"} <= set(lines[0])
    assert any(line["job"] == "hello" and isinstance(line["run"], int) for line in lines)
    assert lines[-1]["message"] == "stopped cleanly" and lines[-1]["job"] is None


@SQLITE_ONLY
def test_jobs_shows_the_schedule_in_force(runner, serve_env):
    env = {**serve_env, "RUNNER_SCHEDULE_HELLO": "0 2 * * 0"}
    listed = {j["name"]: j for j in json.loads(runner("jobs", "--json", extra_env=env).stdout)}
    assert listed["hello"]["schedule"] == "0 2 * * 0"
    assert datetime.fromisoformat(listed["hello"]["next_run"].replace("Z", "+00:00")).strftime("%A %H:%M") == "Sunday 02:00"
    assert listed["sleepy"]["schedule"] == "off" and listed["sleepy"]["next_run"] is None


@SQLITE_ONLY
def test_sd_notify_ready_and_stopping(runner, serve_env, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    proc = start_runner({**serve_env, "NOTIFY_SOCKET": path}, tmp_path, "serve")
    ready = sock.recv(4096).decode()
    assert "READY=1" in ready.splitlines() and f"MAINPID={proc.pid}" in ready
    assert stop(proc)[0] == 0
    assert "STOPPING=1" in sock.recv(4096).decode().splitlines()
    sock.close()


@SQLITE_ONLY
def test_sd_notify_on_an_abstract_socket_with_the_watchdog(runner, serve_env, tmp_path):
    name = f"runner-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(20)
    proc = start_runner({**serve_env, "NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "400000"}, tmp_path, "serve", "--stop-timeout", "7")
    assert "READY=1" in sock.recv(4096).decode().splitlines()
    assert sock.recv(4096).decode() == "WATCHDOG=1"
    assert sock.recv(4096).decode() == "WATCHDOG=1"  # again, within WATCHDOG_USEC
    assert stop(proc)[0] == 0
    while "STOPPING=1" not in (message := sock.recv(4096).decode()).splitlines():
        pass
    assert "EXTEND_TIMEOUT_USEC=22000000" in message.splitlines()  # the grace time and a little more
    sock.close()


def test_the_systemd_unit_verifies(tmp_path):
    unit = (ROOT / "deploy" / "auth0-runner.service").read_text()
    parsed = configparser.ConfigParser(strict=False, interpolation=None)
    parsed.optionxform = str
    parsed.read_string(unit)
    service = parsed["Service"]
    assert service["Type"] == "notify" and service["LoadCredential"].startswith("auth0_client_secret:")
    assert service["StateDirectory"] and service["RestartPreventExitStatus"] == "2"
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed; the unit was only parsed")
    local = tmp_path / "auth0-runner.service"
    local.write_text(unit.replace("/opt/auth0-runner/.venv/bin/runner", shutil.which("true")))
    check = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True)
    problems = [l for l in check.stderr.splitlines() if "auth0-runner" in l]
    assert problems == [], check.stderr


def test_a_late_tick_warns_and_runs_the_missed_fire_times_as_one(serve_env, caplog):
    from batchrunner.config import load_settings
    from batchrunner.runs.registry import discover
    from batchrunner.runs.serve import build

    settings = load_settings({**serve_env, "RUNNER_SCHEDULE_HELLO": "*/5 * * * * *"})
    scheduler = build(settings, open_database(settings.database_url), discover(settings.job_paths))
    due = datetime(2026, 11, 23, 12, 0, 5, tzinfo=timezone.utc)
    [entry] = scheduler.entries
    entry.next_at = due
    submitted = []
    scheduler.submit = lambda job, trigger, scheduled_for, tenant=None: submitted.append((job.name, trigger.value, scheduled_for))
    scheduler._last_sweep = due + timedelta(seconds=31)  # no sweep in this tick
    with caplog.at_level("WARNING", logger="runner.serve"):
        wait = scheduler.tick(due + timedelta(seconds=31))  # suspended for half a minute
    assert submitted == [("hello", "schedule", due)]
    assert entry.next_at == due + timedelta(seconds=35) and wait == 4.0
    assert "firing 31 s late (due 2026-11-23T12:00:05+00:00); fire times passed meanwhile run as this one" in caplog.text


@SQLITE_ONLY
def test_a_rejected_secret_stops_serve_at_start_with_exit_2(serve_env, tenant, tmp_path):
    env = {**serve_env, **tenant.settings(), "AUTH0_CLIENT_SECRET": "not-the-secret", "RUNNER_SCHEDULE_PING": "0 7 * * *"}
    proc = start_runner(env, tmp_path, "serve")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.splitlines()[-1] == (
        "runner: Auth0 refused the token request (HTTP 401 access_denied: Unauthorized); "
        "check AUTH0_CLIENT_ID and the client secret (were they rotated?) and AUTH0_DOMAIN")
    assert "scheduling" not in err  # never reported ready


@SQLITE_ONLY
def test_serve_gets_its_token_before_it_is_ready(runner, serve_env, tenant, tmp_path):
    env = {**serve_env, **tenant.settings(), "RUNNER_SCHEDULE_PING": "0 7 * * *"}
    proc = start_runner(env, tmp_path, "serve")
    lines = read_until(proc, "scheduling")
    assert any(line.rstrip().endswith(f" Auth0 issued a token for {tenant.client_id}: the credentials work") for line in lines), lines
    assert stop(proc)[0] == 0
    [issued] = json.loads(runner("token", "issuances", "--json", extra_env=env).stdout)
    assert issued["requested_by"] == "serve (start)"

    again = start_runner(env, tmp_path, "serve")  # says the token was cached: Auth0 did not check the secret
    lines = read_until(again, "scheduling")
    assert any(f" a token for {tenant.client_id} is cached, issued with this client secret at {issued['issued_at'][:19]}" in line
               and line.rstrip().endswith("; Auth0 was not asked (runner token check asks it now)") for line in lines), lines
    assert stop(again)[0] == 0
    assert tenant.tenant.token_requests == 1


@SQLITE_ONLY
def test_an_unreachable_tenant_is_logged_and_serve_goes_on(serve_env, tmp_path):
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**serve_env, "AUTH0_DOMAIN": f"http://127.0.0.1:{port}", "AUTH0_CLIENT_ID": "an-id",
           "AUTH0_CLIENT_SECRET": "a-secret", "RUNNER_SCHEDULE_PING": "0 7 * * *"}
    proc = start_runner(env, tmp_path, "serve")
    lines = read_until(proc, "scheduling")
    warning = next(line for line in lines if " WARNING " in line)
    assert "serve goes on" in warning and f"127.0.0.1:{port}" in warning, lines
    code, err = stop(proc)
    assert code == 0, err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # files, not the database
def test_an_export_that_outlives_the_stop_timeout_leaves_no_partial_file(runner, serve_env, tmp_path, tenant):
    app = tenant.tenant
    app.set_clients(3000)
    app.latency = 1.0  # 30 pages at one second each (16 at a time): well past the stop timeout
    env = {**serve_env, **tenant.settings(), "RUNNER_SCHEDULE_EXPORT_CLIENTS": "* * * * * *"}
    proc = start_runner(env, tmp_path, "serve", "--stop-timeout", "0.5")
    exports = tmp_path / "exports"
    wait_for(lambda: exports.exists() and any(p.name.endswith(".partial") for p in exports.iterdir()))
    wait_for(lambda: app.api_requests >= 2)  # pages are being written
    code, err = stop(proc)
    assert code == 0, err
    [run] = [r for r in history(runner, env, "export-clients") if r["status"] != "skipped"]  # later fire times found it running
    assert (run["status"], run["error"]) == ("failed", "interrupted: the scheduler was stopped and the run did not finish within 0.5 s")
    assert os.listdir(exports) == []
    assert "removed " in err and ".partial, left by the interrupted run" in err


@SQLITE_ONLY
def test_a_changed_schedule_does_not_run_an_abandoned_fire_time_of_the_old_one(serve_env, database_url, caplog):
    from batchrunner.config import load_settings
    from batchrunner.runs.registry import discover
    from batchrunner.runs.serve import build

    old_fire = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # the old schedule, 0 2 * * *
    with open_database(database_url).write() as conn:
        conn.execute(insert(runs_table).values(
            job="hello", trigger="schedule", scheduled_for=old_fire, status="abandoned",
            started_at=old_fire, finished_at=old_fire, host="old-host", pid=1))

    def started(schedule):
        settings = load_settings({**serve_env, "RUNNER_SCHEDULE_HELLO": schedule})
        scheduler = build(settings, open_database(settings.database_url), discover(settings.job_paths))
        submitted = []
        scheduler.submit = lambda job, trigger, scheduled_for, tenant=None: submitted.append((job.name, trigger.value, scheduled_for))
        scheduler.start(old_fire + timedelta(minutes=30))
        return submitted

    assert started("0 2 * * *") == [("hello", "catch-up", old_fire)]  # unchanged: the fire time runs once more
    with caplog.at_level("INFO", logger="runner.serve"):
        assert started("0 3 * * *") == []  # 03:00 never fired since the run; 02:00 is no fire time of the new schedule
    assert ("the run for 2026-11-23T02:00:00+00:00 was abandoned; not running it again: "
            "the schedule in force (0 3 * * *) has no such fire time") in caplog.text

"""`runner serve` as systemd runs it: real processes, real signals, a seconds-level schedule."""

from __future__ import annotations

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

from batchrunner.db import open_database
from batchrunner.models import runs as runs_table
from conftest import ROOT, start_runner

JOBS = str(Path(__file__).parent / "fixture_jobs")
QUIET = {  # every job off unless a test turns it on
    "RUNNER_JOBS": JOBS,
    "RUNNER_SCHEDULE_EXPORT_CLIENTS": "off",
    "RUNNER_SCHEDULE_HELLO": "off",
    "RUNNER_SCHEDULE_SLEEPY": "off",
    "RUNNER_SCHEDULE_FAILING": "off",
    "RUNNER_SCHEDULE_LEAKY": "off",
}


@pytest.fixture
def serve_env(local_env):
    return {**local_env, **QUIET}


@pytest.fixture
def runner(local_runner):
    return local_runner


def history(runner, serve_env, job):
    out = runner("history", "--job", job, "--json", "--limit", "100", extra_env=serve_env)
    return json.loads(out.stdout)


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def stop(proc, timeout=30):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def test_serve_fires_on_schedule_and_stops_cleanly(runner, serve_env, tmp_path):
    env = {**serve_env, "RUNNER_SCHEDULE_HELLO": "*/2 * * * * *"}
    proc = start_runner(env, tmp_path, "serve")
    wait_for(lambda: len([r for r in history(runner, env, "hello") if r["status"] == "succeeded"]) >= 3)
    code, err = stop(proc)
    assert code == 0, err
    runs = history(runner, env, "hello")
    assert {r["trigger"] for r in runs} == {"schedule"}
    assert {r["status"] for r in runs} == {"succeeded"}
    fired = [datetime.fromisoformat(r["scheduled_for"].replace("Z", "+00:00")) for r in runs]
    assert len(set(fired)) == len(fired) and all(t.second % 2 == 0 for t in fired)
    assert "received SIGTERM; starting no new runs" in err and "stopped cleanly" in err
    assert " job=hello run=" in err  # log lines carry job and run id


def test_sigterm_waits_for_a_running_job(runner, serve_env, tmp_path):
    env = {**serve_env, "RUNNER_SCHEDULE_SLEEPY": "* * * * * *", "SLEEPY_SECONDS": "2"}
    proc = start_runner(env, tmp_path, "serve", "--stop-timeout", "20")
    wait_for(lambda: any(r["status"] == "running" for r in history(runner, env, "sleepy")))
    code, err = stop(proc)
    assert code == 0, err
    runs = history(runner, env, "sleepy")
    assert [r["status"] for r in runs] == ["succeeded"]  # it finished; nothing new started


def test_a_job_that_outlives_the_stop_timeout_is_recorded_failed(runner, serve_env, tmp_path):
    env = {**serve_env, "RUNNER_SCHEDULE_SLEEPY": "* * * * * *", "SLEEPY_SECONDS": "60"}
    proc = start_runner(env, tmp_path, "serve", "--stop-timeout", "0.5")
    wait_for(lambda: any(r["status"] == "running" for r in history(runner, env, "sleepy")))
    code, _ = stop(proc)
    assert code == 0
    [run] = history(runner, env, "sleepy")
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
    wait_for(lambda: len(history(runner, env, "hello")) == 2)
    assert stop(proc)[0] == 0
    newest = history(runner, env, "hello")[0]
    assert newest["trigger"] == "catch-up" and newest["status"] == "succeeded"
    assert newest["scheduled_for"] == now.replace(minute=0, second=0, microsecond=0).isoformat().replace("+00:00", "Z")

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


def stop_after_ready(proc):
    line = proc.stderr.readline()
    while line and "scheduling" not in line:
        line = proc.stderr.readline()
    return stop(proc)


def test_an_invalid_schedule_exits_2_naming_the_variable(runner, serve_env):
    result = runner("serve", extra_env={**serve_env, "RUNNER_SCHEDULE_HELLO": "0 2 * *"})
    assert result.returncode == 2
    assert result.stderr.strip() == "runner: RUNNER_SCHEDULE_HELLO: '0 2 * *' has 4 fields; give 5 (minute hour day month weekday), 6 (seconds first) or 'off'"


def test_jobs_shows_the_schedule_in_force(runner, serve_env):
    env = {**serve_env, "RUNNER_SCHEDULE_HELLO": "0 2 * * 0"}
    listed = {j["name"]: j for j in json.loads(runner("jobs", "--json", extra_env=env).stdout)}
    assert listed["hello"]["schedule"] == "0 2 * * 0"
    assert datetime.fromisoformat(listed["hello"]["next_run"].replace("Z", "+00:00")).strftime("%A %H:%M") == "Sunday 02:00"
    assert listed["sleepy"]["schedule"] == "off" and listed["sleepy"]["next_run"] is None


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


def test_the_systemd_unit_verifies(tmp_path):
    unit = (ROOT / "deploy" / "auth0-runner.service").read_text()
    assert "Type=notify" in unit and "LoadCredential=auth0_client_secret:" in unit and "StateDirectory=" in unit
    assert "RestartPreventExitStatus=2" in unit and "ProtectSystem=strict" in unit and "NoNewPrivileges=yes" in unit
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed; the unit was only parsed")
    local = tmp_path / "auth0-runner.service"
    local.write_text(unit.replace("/opt/auth0-runner/.venv/bin/runner", shutil.which("true")))
    check = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True)
    problems = [l for l in check.stderr.splitlines() if "auth0-runner" in l]
    assert problems == [], check.stderr

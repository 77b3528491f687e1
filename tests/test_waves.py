"""Many tenants on one `serve` (README, "How many run at once"): at most RUNNER_MAX_RUNS runs in
progress, the rest waiting for a slot, none skipped; a tenant that does not answer holds back neither
readiness nor the other tenants."""

from __future__ import annotations

import os
import socket
import time

import pytest

from batchrunner.runs import records
from batchrunner.sandbox import Sandbox
from batchrunner.store.database import open_database
from conftest import QUIET, SQLITE_ONLY, start_runner, stop, wait_for


def tenants_toml(tmp_path, tenants: dict, schedule: str) -> dict:
    """A tenants file: name -> (domain, client id, secret), each running export-clients on `schedule`."""
    parts = []
    for name, (domain, client_id, secret) in tenants.items():
        path = tmp_path / f"{name}.secret"
        path.write_text(secret + "\n")
        os.chmod(path, 0o600)
        parts.append(f'[tenants.{name}]\ndomain = "{domain}"\nclient_id = "{client_id}"\nclient_secret_file = "{path}"\n'
                     f'[tenants.{name}.jobs.export-clients]\nschedule = "{schedule}"\n'
                     f'[tenants.{name}.jobs.export-logs]\nschedule = "off"\n')  # it fires every quarter hour
    (tmp_path / "tenants.toml").write_text("\n".join(parts))
    return {"RUNNER_TENANTS_FILE": str(tmp_path / "tenants.toml")}


def stand_ins(count: int, latency: float = 0.0, token_latency: float = 0.0) -> list[Sandbox]:
    sandboxes = [Sandbox(clients=3, seed=20 + i).start() for i in range(count)]
    for sandbox in sandboxes:
        sandbox.tenant.latency, sandbox.tenant.token_latency = latency, token_latency
    return sandboxes


def of(sandbox: Sandbox) -> tuple[str, str, str]:
    return sandbox.base_url, sandbox.client_id, sandbox.client_secret


def most_at_once(runs: list[dict]) -> int:
    """The most runs in progress at one time, from their recorded start and end."""
    events = sorted([(r["started_at"], 1) for r in runs] + [(r["finished_at"], -1) for r in runs])
    now = most = 0
    for _, step in events:  # at one instant an end sorts before a start: back to back is not at once
        now += step
        most = max(most, now)
    return most


@pytest.fixture
def sandboxes():
    started = []
    yield lambda *args, **kwargs: started.extend(stand_ins(*args, **kwargs)) or started[-args[0]:]
    for sandbox in started:
        sandbox.stop()


def test_six_tenants_at_one_fire_time_run_in_waves_of_max_runs(local_env, sandboxes, tmp_path, database_url):
    six = sandboxes(6, latency=0.5)
    env = {**local_env, **QUIET, "RUNNER_MAX_RUNS": "2",
           **tenants_toml(tmp_path, {f"t{i}": of(s) for i, s in enumerate(six)}, "*/10 * * * * *")}
    proc = start_runner(env, tmp_path, "serve")
    db = open_database(database_url)
    finished = lambda: [r for r in records.history(db, "export-clients", limit=100) if r["finished_at"]]  # noqa: E731
    first = lambda: [r for r in finished() if r["scheduled_for"] == min(f["scheduled_for"] for f in finished())]  # noqa: E731
    wait_for(lambda: len(first()) >= 6, timeout=60)
    code, err = stop(proc)
    assert code == 0, err
    runs = first()
    assert sorted(r["tenant"] for r in runs) == [f"t{i}" for i in range(6)]  # every tenant's, none skipped
    assert {r["status"] for r in runs} == {"succeeded"} and {r["trigger"] for r in runs} == {"schedule"}
    assert len({r["scheduled_for"] for r in runs}) == 1  # one fire time
    assert most_at_once(runs) == 2
    delays = sorted((r["started_at"] - r["scheduled_for"]).total_seconds() for r in runs)
    shortest = min((r["finished_at"] - r["started_at"]).total_seconds() for r in runs)
    assert delays[-1] >= 2 * shortest  # the last wave started after two before it had ended
    assert "waited " in err and " s for a free slot (RUNNER_MAX_RUNS=2)" in err


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_a_bad_max_runs_is_exit_2_naming_it(local_runner, value):
    result = local_runner("serve", extra_env={**QUIET, "RUNNER_MAX_RUNS": value})
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"runner: RUNNER_MAX_RUNS: {value!r} is not a number of runs; give how many runs one `runner serve` "
        "has in progress at once, a whole number of 1 or more (default 4)")


@SQLITE_ONLY
def test_tenants_that_do_not_answer_hold_back_neither_readiness_nor_the_others(local_env, sandboxes, tmp_path, database_url):
    [good] = sandboxes(1)
    silent = sandboxes(4, token_latency=60)  # each would hold a start-up check for its whole wait
    with socket.socket() as probe:  # a domain where nothing listens
        probe.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{probe.getsockname()[1]}"
    tenants = {"good": of(good), "gone": (gone, "an-id", "a-secret"), **{f"silent{i}": of(s) for i, s in enumerate(silent)}}
    env = {**local_env, **QUIET, "RUNNER_STOP_TIMEOUT": "0", **tenants_toml(tmp_path, tenants, "0 7 * * *")}
    toml = tmp_path / "tenants.toml"  # only good and gone fire now
    toml.write_text(toml.read_text().replace('schedule = "0 7 * * *"', 'schedule = "*/2 * * * * *"', 2))
    started = time.monotonic()
    proc = start_runner(env, tmp_path, "serve")
    line = proc.stderr.readline()
    while line and "scheduling" not in line:
        line = proc.stderr.readline()
    ready = time.monotonic() - started
    db = open_database(database_url)
    ended = lambda name: [r for r in records.history(db, "export-clients", tenant=name)  # noqa: E731
                          if r["status"] != "skipped" and r["finished_at"]  # skipped: the last still retried
                          and not (r["error"] or "").startswith("interrupted")]  # interrupted: cut short by the stop
    wait_for(lambda: ended("good") and ended("gone"), timeout=60)
    code, err = stop(proc)
    assert code == 0, err
    assert "scheduling" in line and ready < 12, (ready, err)  # one after another: 4 x 5 s before ready
    assert ended("good")[-1]["status"] == "succeeded"
    failed = ended("gone")[-1]
    assert failed["status"] == "failed"
    assert failed["error"] == (f"could not get a token from {gone}/oauth/token after retrying: connection failed: {gone}/oauth/token; "
                               "check the domain of tenant gone in RUNNER_TENANTS_FILE and the network, then run again")


def test_a_fire_that_comes_while_its_last_waits_for_a_slot_runs_as_that_one(local_env, caplog, database_url):
    import threading
    from datetime import datetime, timezone

    from batchrunner.config import load_settings
    from batchrunner.runs.registry import discover
    from batchrunner.runs.serve import build
    from batchrunner.store.schema import Trigger

    settings = load_settings({**local_env, **QUIET, "RUNNER_MAX_RUNS": "1", "RUNNER_SCHEDULE_HELLO": "* * * * *"})
    scheduler = build(settings, open_database(database_url), discover(settings.job_paths))
    [entry] = scheduler.entries
    busy = threading.Event()
    scheduler.pool.submit(busy.wait)  # the one slot, taken
    due = [datetime(2026, 12, 7, 2, minute, tzinfo=timezone.utc) for minute in (0, 1)]
    with caplog.at_level("WARNING", logger="runner.serve"):
        waiting = scheduler.submit(entry.job, Trigger.SCHEDULE, due[0])
        assert scheduler.submit(entry.job, Trigger.SCHEDULE, due[1]) is None
    busy.set()
    waiting.result(timeout=30)
    scheduler.pool.shutdown()
    assert [r["scheduled_for"] for r in records.history(scheduler.db, "hello")] == [due[0]]
    assert ("the fire for 2026-12-07T02:01:00+00:00 runs as the one still waiting for a free slot (RUNNER_MAX_RUNS=1)"
            in caplog.text)

"""Several `runner serve` replicas on one PostgreSQL database (README, "Running on several hosts"): real processes,
real signals, real connections cut by the server.

The replicas share this machine's host name, so a killed replica's run is recognised by its gone
pid; the heartbeat bound that applies across hosts is tested with an injected clock in test_runs.
"""

from __future__ import annotations

import signal
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

from batchrunner.runs import records as runs
from batchrunner.store.database import open_database
from conftest import QUIET, empty_database, start_runner, stop, wait_for
from test_serve import read_until

pytestmark = pytest.mark.waits  # for seconds-level schedules, 10 to 20 s each


@pytest.fixture
def pg_env(clean_env, postgres_url, tenant):
    empty_database(postgres_url)
    return {**clean_env, **QUIET, **tenant.settings(), "RUNNER_DATABASE_URL": postgres_url}


def recorded(env, job):
    return runs.history(open_database(env["RUNNER_DATABASE_URL"]), job, limit=1000)


def succeeded(env, job):
    return [r for r in recorded(env, job) if r["status"] == "succeeded"]


def stop_all(replicas):
    results = [stop(proc) for proc in replicas]
    assert [code for code, _ in results] == [0] * len(replicas), [err[-2000:] for _, err in results]
    return [err for _, err in results]


def test_three_replicas_run_each_fire_time_once_with_one_token(pg_env, tenant, tmp_path):
    env = {**pg_env, "RUNNER_SCHEDULE_PING": "*/2 * * * * *"}
    replicas = [start_runner(env, tmp_path, "serve") for _ in range(3)]
    wait_for(lambda: len(succeeded(env, "ping")) >= 9, timeout=60)
    stop_all(replicas)

    done = recorded(env, "ping")
    assert {r["status"] for r in done} == {"succeeded"}, [(r["status"], r["error"]) for r in done]
    fired = sorted(r["scheduled_for"] for r in done)
    assert len(fired) == len(set(fired)), "a fire time ran twice"
    gaps = {(later - earlier).total_seconds() for earlier, later in zip(fired, fired[1:])}
    assert gaps == {2.0}, f"a fire time was missed: {fired}"
    assert tenant.tenant.token_requests == 1


def test_the_run_of_a_killed_replica_is_run_again_by_another(pg_env, tmp_path):
    # Once a minute, a few seconds from now: the next fire is far off when the replica dies.
    for attempt in range(3):  # replicas ready only after that second would wait a minute: start them again
        fire = datetime.now(timezone.utc) + timedelta(seconds=5)
        env = {**pg_env, "RUNNER_SCHEDULE_SLEEPY": f"{fire.second} * * * * *", "SLEEPY_SECONDS": "3"}
        replicas = {proc.pid: proc for proc in (start_runner(env, tmp_path, "serve") for _ in range(3))}
        for proc in replicas.values():
            read_until(proc, "scheduling")
        if datetime.now(timezone.utc) < fire - timedelta(seconds=0.5) or attempt == 2:
            break
        stop_all(replicas.values())
        empty_database(env["RUNNER_DATABASE_URL"])  # a replica that was ready may have fired
    wait_for(lambda: any(r["status"] == "running" for r in recorded(env, "sleepy")), timeout=75)  # 75: late thrice
    [victim] = [r for r in recorded(env, "sleepy") if r["status"] == "running"]
    replicas.pop(victim["pid"]).send_signal(signal.SIGKILL)

    wait_for(lambda: any(r["status"] == "succeeded" for r in recorded(env, "sleepy")), timeout=40)
    stop_all(replicas.values())
    rerun, abandoned = recorded(env, "sleepy")
    assert abandoned["id"] == victim["id"] and abandoned["status"] == "abandoned"
    assert rerun["trigger"] == "catch-up" and rerun["status"] == "succeeded"
    assert rerun["scheduled_for"] == victim["scheduled_for"] and rerun["pid"] != victim["pid"]


def test_replicas_survive_connections_terminated_by_the_server(pg_env, tmp_path):
    env = {**pg_env, "RUNNER_SCHEDULE_HELLO": "* * * * * *"}
    replicas = [start_runner(env, tmp_path, "serve") for _ in range(2)]
    admin = create_engine(env["RUNNER_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    try:
        wait_for(lambda: len(succeeded(env, "hello")) >= 2)
        for _ in range(3):
            before = len(succeeded(env, "hello"))
            with admin.connect() as conn:
                cut = conn.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )).scalar()
            assert cut >= 2  # each replica had a connection open
            wait_for(lambda: len(succeeded(env, "hello")) >= before + 2)
        assert all(proc.poll() is None for proc in replicas), "a replica died"
    finally:
        admin.dispose()
    stop_all(replicas)

    done = recorded(env, "hello")
    fired = [r["scheduled_for"] for r in done]
    assert len(fired) == len(set(fired)), "a fire time ran twice"
    assert {r["status"] for r in done} == {"succeeded"}, [(r["status"], r["error"]) for r in done]

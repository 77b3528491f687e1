"""Metrics and health (README, "Operating it unattended"): /metrics from the database, whoever ran the jobs; /healthz."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select

from batchrunner.auth0 import tokencache
from batchrunner.operating import health, metrics, retention as prune
from batchrunner.runs import records as runs
from batchrunner.store.database import Database, open_database
from batchrunner.store.schema import RunStatus, runs as runs_table, token_cache
from conftest import QUIET, SQLITE_ONLY, start_runner, stop, wait_for
from test_serve import read_until

NOW = datetime.now(timezone.utc)


def samples(text: str) -> dict:
    """{(sample name, ((label, value), ...)): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def expected(db, jobs) -> dict:
    """What the metrics must say, worked out from `runner history`'s records."""
    rows = runs.history(db, limit=100000)
    want = {}
    for job in jobs:
        mine = [r for r in rows if r["job"] == job]
        for status in ("succeeded", "failed", "skipped", "abandoned"):
            want[("runner_job_runs_total", (("job_name", job), ("status", status), ("tenant", "default")))] = float(sum(r["status"] == status for r in mine))
        label = (("job_name", job), ("tenant", "default"))
        want[("runner_job_running", label)] = float(sum(r["status"] == "running" for r in mine))
        ok = [r for r in mine if r["status"] == "succeeded"]
        if ok:
            want[("runner_job_last_success_timestamp_seconds", label)] = max(r["finished_at"] for r in ok).timestamp()
        ran = [r for r in mine if r["status"] != "skipped"]
        if ran:
            want[("runner_job_last_run_timestamp_seconds", label)] = max(r["started_at"] for r in ran).timestamp()
        done = [r for r in mine if r["status"] in ("succeeded", "failed", "abandoned")]
        if done:
            newest = max(done, key=lambda r: r["id"])
            want[("runner_job_last_run_succeeded", label)] = 1.0 if newest["status"] == "succeeded" else 0.0
            want[("runner_job_last_run_duration_seconds", label)] = (newest["finished_at"] - newest["started_at"]).total_seconds()
    return want


def _insert_result(db, job, result):
    with db.write() as conn:
        conn.execute(insert(runs_table).values(job=job, trigger="manual", status="succeeded", started_at=NOW,
                                               finished_at=NOW, host="elsewhere", pid=1, result=json.dumps(result)))


def test_metrics_served_by_serve_count_runs_of_other_processes(runner, env, tmp_path, database_url):
    serve_env = {**env, **QUIET, "RUNNER_SCHEDULE_HELLO": "*/2 * * * * *", "RUNNER_METRICS_ADDRESS": "127.0.0.1:0"}
    proc = start_runner(serve_env, tmp_path, "serve")
    line = read_until(proc, "metrics on http://")[-1]
    base = line.split("metrics on ")[1].split("/metrics")[0]
    assert runner("run-job", "failing", extra_env=QUIET).returncode == 1  # separate processes, as cron runs them
    assert runner("run-job", "ping", extra_env=QUIET).returncode == 0
    db = open_database(database_url)
    wait_for(lambda: sum(r["status"] == "succeeded" for r in runs.history(db, "hello")) >= 2)
    _insert_result(db, "export-logs", {"events": 3, "newest_event_at": "2026-11-20T10:00:00.000Z"})
    _insert_result(db, "snapshot", {"path": str(tmp_path / "nowhere"), "changes": {"added": 2, "removed": 0, "changed": 1},
                                    "changes_by_resource": {"roles": {"added": 2, "removed": 0, "changed": 0},
                                                            "client_grants": {"added": 0, "removed": 0, "changed": 1}}})

    for _ in range(20):  # hello fires every 2 s: compare a scrape with the history around it
        before = runs.history(db, limit=100000)
        scraped_at = datetime.now(timezone.utc).timestamp()
        code, text = get(f"{base}/metrics")
        if runs.history(db, limit=100000) == before:
            break
    assert code == 200
    got = samples(text)
    for key, value in expected(db, ["hello", "failing", "ping", "export-clients"]).items():
        assert got.get(key) == pytest.approx(value, abs=1e-3), key
    assert got[("runner_job_last_run_succeeded", (("job_name", "failing"), ("tenant", "default")))] == 0
    [token] = tokencache.status(db, NOW)
    assert got[("runner_token_expiry_timestamp_seconds", (("audience", token["audience"]), ("client_id", token["client_id"])))] == token["expires_at"].timestamp()
    assert got[("runner_token_issuances_total", ())] == len(tokencache.issuances(db)) == 1
    assert got[("runner_logs_newest_event_timestamp_seconds", (("tenant", "default"),))] == datetime(2026, 11, 20, 10, tzinfo=timezone.utc).timestamp()
    assert got[("runner_snapshot_changes", (("kind", "added"), ("resource", "roles"), ("tenant", "default")))] == 2
    assert got[("runner_snapshot_changes", (("kind", "changed"), ("resource", "client_grants"), ("tenant", "default")))] == 1
    upcoming = got[("runner_job_next_run_timestamp_seconds", (("job_name", "hello"), ("tenant", "default")))]
    # hello's next fire time on its 2 s grid, at the scrape; on a busy machine its tick may run late.
    assert upcoming % 2 == 0 and -2 < upcoming - scraped_at <= 2.5
    assert ("runner_job_next_run_timestamp_seconds", (("job_name", "failing"), ("tenant", "default"))) not in got  # its schedule is off

    code, body = get(f"{base}/healthz")
    assert code == 200 and json.loads(body)["status"] == "ok"
    assert get(f"{base}/nothing")[0] == 404
    assert stop(proc)[0] == 0


def test_healthz_is_503_when_the_database_does_not_answer():
    unreachable = Database("postgresql+psycopg://runner@127.0.0.1:1/runner")
    code, body = health.Health(unreachable, lambda: health.clock.monotonic()).report()
    assert code == 503
    assert body["status"] == "unhealthy" and body["scheduler"]["ok"] is True
    assert body["database"]["ok"] is False and "127.0.0.1" in body["database"]["error"]
    # The same over HTTP, and with a stuck scheduler loop.
    server = health.start(health.Address("127.0.0.1", 0), health.app(health.Health(unreachable, lambda: None), lambda: b""), 0.1)
    try:
        code, text = get(f"http://127.0.0.1:{server.server_port}/healthz")
        assert code == 503 and json.loads(text)["scheduler"] == {"ok": False, "last_tick_seconds_ago": None}
    finally:
        server.shutdown()
        server.server_close()


def test_healthz_is_503_when_the_loop_stopped_ticking(database_url):
    stuck = health.clock.monotonic() - health.TICK_STALE_SECONDS - 1
    code, body = health.Health(open_database(database_url), lambda: stuck).report()
    assert code == 503 and body["scheduler"]["ok"] is False and body["database"] == {"ok": True, "error": None}


@SQLITE_ONLY
def test_metrics_textfile_is_the_same_exposition(local_runner, local_env, tmp_path):
    assert local_runner("run-job", "hello", extra_env=QUIET).returncode == 0
    printed = local_runner("metrics", extra_env=QUIET)
    assert printed.returncode == 0, printed.stderr
    target = tmp_path / "textfile" / "runner.prom"
    target.parent.mkdir()
    written = local_runner("metrics", "--textfile", str(target), extra_env=QUIET)
    assert written.returncode == 0 and written.stdout == ""
    assert samples(target.read_text()) == samples(printed.stdout)
    assert samples(printed.stdout)[("runner_job_runs_total", (("job_name", "hello"), ("status", "succeeded"), ("tenant", "default")))] == 1
    assert [p.name for p in target.parent.iterdir()] == ["runner.prom"]  # no temporary file left
    wrong = local_runner("metrics", "--textfile", str(tmp_path / "runner.txt"), extra_env=QUIET)
    assert wrong.returncode == 2 and "must end in .prom" in wrong.stderr


def test_pruning_never_lowers_runs_total(database_url, tmp_path):
    db = open_database(database_url)
    old = NOW - timedelta(days=400)
    with db.write() as conn:
        for status in ("failed", "succeeded", "failed", "succeeded"):
            conn.execute(insert(runs_table).values(job="hello", trigger="manual", status=status, started_at=old,
                                                   finished_at=old, host="h", pid=1))
    before = metrics.read(db).counts
    done = prune.apply(db, prune.plan(db, tmp_path, NOW, prune.Retention(90, None)))
    assert done.run_count == 3  # all but the latest run, which is also the latest success
    assert metrics.read(db).counts == before == {("hello", "default", "failed"): 2, ("hello", "default", "succeeded"): 2}


@SQLITE_ONLY
def test_metrics_textfile_says_the_database_is_down_when_its_header_is_damaged(local_runner, local_env, tmp_path):
    assert local_runner("run-job", "hello", extra_env=QUIET).returncode == 0
    target = tmp_path / "textfile" / "runner.prom"
    target.parent.mkdir()
    assert local_runner("metrics", "--textfile", str(target), extra_env=QUIET).returncode == 0
    assert samples(target.read_text())[("runner_database_up", ())] == 1
    path = tmp_path / "state" / "runner.db"
    with open(path, "r+b") as f:
        f.write(b"\xff" * 16)  # the header: "SQLite format 3\0"
    result = local_runner("metrics", "--textfile", str(target), extra_env=QUIET)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"runner: cannot use the database sqlite:///{path}: file is not a database; check RUNNER_DATABASE_URL\n"
    assert samples(target.read_text()) == {("runner_database_up", ()): 0}  # the alert fires
    assert [p.name for p in target.parent.iterdir()] == ["runner.prom"]


def test_idle_connections_hold_no_thread_and_are_closed_while_the_endpoint_answers():
    """500 connections that send nothing (or half a request) once held 500 threads, for ever."""
    import socket
    import threading

    server = health.start(health.Address("127.0.0.1", 0), health.app(None, lambda: b"runner_database_up 1\n"), 0.1,
                          timeout_seconds=1.0)
    try:
        threads = threading.active_count()
        idle = [socket.create_connection(("127.0.0.1", server.server_port)) for _ in range(500)]
        idle[-1].sendall(b"GET /metr")  # half a request line, and no more
        code, text = get(f"http://127.0.0.1:{server.server_port}/metrics")
        assert (code, text) == (200, "runner_database_up 1\n")
        assert threading.active_count() <= threads
        for conn in (idle[0], idle[-1]):  # the oldest beyond MAX_WAITING at once; the rest after the timeout
            conn.settimeout(5)
            assert conn.recv(1) == b""
    finally:
        for conn in idle:
            conn.close()
        server.shutdown()
        server.server_close()


def test_serve_on_a_metrics_address_in_use_says_so_in_one_line(runner):
    """A port already taken was a traceback and exit 1 (the server's clean-up ran before it had started)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner("serve", extra_env={**QUIET, "RUNNER_METRICS_ADDRESS": f"127.0.0.1:{port}"})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == (f"runner: RUNNER_METRICS_ADDRESS: cannot listen on 127.0.0.1:{port}: "
                                              "Address already in use; choose another address")
    assert "Traceback" not in result.stderr

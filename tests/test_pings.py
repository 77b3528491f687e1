"""Pings (Healthchecks.io protocol) and notifications (README, "Operating it unattended"), received by a sink on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import QUIET, _runner


class Sink:
    """A real HTTP server on loopback that records every request: (path with query, body)."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    server = Sink()
    yield server
    server.close()


@pytest.fixture
def run(clean_env, tenant, tmp_path):
    """`runner` on SQLite with the stand-in tenant and the tiny jobs (nothing here is about the database)."""
    env = {**clean_env, **tenant.settings(), **QUIET, "RUNNER_DATABASE_URL": f"sqlite:///{tmp_path / 'runner.db'}"}
    return _runner(env, tmp_path)


def _rid(path):
    rid = path.split("rid=")[1]
    uuid.UUID(rid)
    return rid


def test_pings_in_order_with_one_run_id(run, sink, tenant):
    env = {"RUNNER_PING_URL": sink.url + "/ping/{job}"}
    assert run("run-job", "hello", extra_env=env).returncode == 0
    (start, _), (done, body) = sink.received
    assert start.startswith("/ping/hello/start?rid=") and done.startswith("/ping/hello?rid=")
    assert _rid(start) == _rid(done) and body == b""

    sink.received.clear()
    secret = tenant.settings()["AUTH0_CLIENT_SECRET"]
    own = {"RUNNER_PING_URL_LEAKY": sink.url + "/own-check"}  # one job's own URL wins over the template
    assert run("run-job", "leaky", extra_env={**env, **own}).returncode == 1
    (start, _), (fail, body) = sink.received
    assert start.startswith("/own-check/start?rid=") and fail.startswith("/own-check/fail?rid=") and _rid(start) == _rid(fail)
    text = body.decode()
    assert text.startswith("RuntimeError: oops, the secret is [redacted]\n\n")
    assert "INFO started (manual)" in text and "ERROR failed: RuntimeError" in text
    assert secret not in text


def test_a_failure_body_keeps_the_last_10000_bytes(run, sink):
    env = {"RUNNER_PING_URL": sink.url + "/{job}", "RUNNER_TIMEOUT_STUBBORN": "0.2"}
    assert run("run-job", "stubborn", extra_env=env).returncode == 1
    _, body = sink.received[-1]
    assert body.startswith(b"timed out after 0.2 s\n\n") and len(body) <= 10_000 + 100


@pytest.mark.waits  # the documented 10 s
def test_a_dead_ping_url_costs_the_run_a_bounded_time(run):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections and never answers
    try:
        started = time.monotonic()
        result = run("run-job", "hello", extra_env={"RUNNER_PING_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/{{job}}"})
        took = time.monotonic() - started
    finally:
        silent.close()
    assert result.returncode == 0 and "hello succeeded" in result.stdout
    assert took < 10 + 5  # the documented 10 s wait, and the process's start
    assert "gave up waiting for pings or notifications after 10 s" in result.stderr
    history = json.loads(run("history", "--json").stdout)
    assert history[0]["status"] == "succeeded"


def test_a_ping_url_in_clear_text_is_refused(run):
    result = run("run-job", "hello", extra_env={"RUNNER_PING_URL": "http://hc.example.com/{job}"})
    assert result.returncode == 2
    assert result.stderr == "runner: RUNNER_PING_URL: refusing plain http to hc.example.com: use https:// (http only to loopback)\n"
    assert json.loads(run("history", "--json").stdout) == []


def test_notifications_for_failed_then_recovered(run, sink):
    env = {"RUNNER_NOTIFY_URL": sink.url + "/hook", "RUNNER_TIMEOUT_SLEEPY": "0.3"}
    assert run("run-job", "sleepy", extra_env={**env, "SLEEPY_SECONDS": "5"}).returncode == 1
    assert run("run-job", "sleepy", extra_env={**env, "SLEEPY_SECONDS": "0"}).returncode == 0
    assert run("run-job", "sleepy", extra_env={**env, "SLEEPY_SECONDS": "0"}).returncode == 0  # no news: no message
    messages = [json.loads(body) for path, body in sink.received]
    assert [path for path, _ in sink.received] == ["/hook", "/hook"]
    failed, recovered = messages
    assert set(failed) == {"text", "event", "job", "tenant", "run", "error", "changes"}
    assert failed["tenant"] == "default"
    assert (failed["event"], failed["job"], failed["run"], failed["error"]) == ("failed", "sleepy", 1, "timed out after 0.3 s")
    assert failed["text"].startswith("sleepy failed (run 1 on ") and failed["text"].endswith("): timed out after 0.3 s")
    assert (recovered["event"], recovered["run"], recovered["error"]) == ("recovered", 2, None)
    assert recovered["text"].startswith("sleepy recovered: run 2 on ")


def test_a_job_sends_drift(run, sink):
    assert run("run-job", "drifty", extra_env={"RUNNER_NOTIFY_URL": sink.url + "/hook"}).returncode == 0
    [(_, body)] = sink.received
    assert json.loads(body) == {"text": "drifty: 1 role added", "event": "drift", "job": "drifty", "tenant": "default", "run": 1, "error": None,
                                "changes": {"roles": {"added": 1, "removed": 0, "changed": 0}}}


def test_a_ping_thread_that_cannot_start_neither_fails_the_run_nor_leaves_it_running(local_env, sink, monkeypatch, caplog):
    """The process is out of threads as a run starts its pings: under `serve` the run used to stay
    `running` for the life of the process, and every later fire of its job was `skipped`."""
    from datetime import datetime, timezone

    from batchrunner.config import load_settings
    from batchrunner.runs.records import history
    from batchrunner.runs.registry import discover
    from batchrunner.runs.serve import build
    from batchrunner.store.database import open_database
    from batchrunner.store.schema import Trigger

    settings = load_settings({**local_env, **QUIET, "RUNNER_PING_URL": sink.url + "/ping/{job}"})
    jobs = discover(settings.job_paths)
    scheduler = build(settings, open_database(settings.database_url), jobs)
    start = threading.Thread.start

    def refused(thread):
        if thread.name.startswith("webhooks-"):
            raise RuntimeError("can't start new thread")
        return start(thread)

    monkeypatch.setattr(threading.Thread, "start", refused)
    hello = jobs["hello"]
    first, second = (datetime(2026, 11, 23, 3, minute, tzinfo=timezone.utc) for minute in (0, 1))
    with caplog.at_level("WARNING"):
        scheduler._fire(hello, Trigger.SCHEDULE, first)
        scheduler._fire(hello, Trigger.SCHEDULE, second)
    assert [r["status"] for r in history(scheduler.db, "hello")] == ["succeeded", "succeeded"]
    assert "cannot send this run's pings or notifications (can't start new thread); the run goes on without them" in caplog.text
    assert sink.received == []

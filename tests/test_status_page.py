"""The status page (README, "Status page"): `/` and `/runs/{id}` on RUNNER_METRICS_ADDRESS, from the
database, escaped, no scripts; looked at in a real headless Chromium at desktop and phone widths."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert

from batchrunner.operating import health
from batchrunner.operating.status_page import StatusPage
from batchrunner.store.database import open_database
from batchrunner.store.schema import runs
from conftest import QUIET, RUNNER, start_runner, stop
from test_serve import read_until

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
HOSTILE = "<script>alert(1)</script>"


def record(db, job, tenant="default", status="succeeded", minutes_ago=0, seconds=5, error=None, result=None, params=None) -> int:
    started = NOW - timedelta(minutes=minutes_ago)
    row = dict(job=job, tenant=tenant, trigger="schedule", status=status, started_at=started,
               finished_at=None if status == "running" else started + timedelta(seconds=seconds), host="elsewhere", pid=1,
               error=error, result=None if result is None else json.dumps(result), params=None if params is None else json.dumps(params))
    with db.write() as conn:
        return conn.execute(insert(runs).values(**row)).inserted_primary_key[0]


def get(url: str) -> tuple[int, dict, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.fixture
def served(database_url):
    """(database, base URL) of a status page whose plan has hello at NOW + 3 min, and export-clients off."""
    db = open_database(database_url)
    plan = {("export-logs", "prod"): NOW + timedelta(minutes=3), ("export-clients", "default"): None}
    server = health.start(health.Address("127.0.0.1", 0),
                          health.app(health.Health(db, lambda: None), lambda: b"", StatusPage(db, lambda: plan, lambda: NOW)), 0.1)
    yield db, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def filled(db) -> dict:
    """A tenant `prod` with 40 export-logs runs (every 7th failed), a snapshot and a tenant-checks run."""
    ids = {}
    for n in range(40):
        failed = n % 7 == 0
        ids[n] = record(db, "export-logs", "prod", "failed" if failed else "succeeded", minutes_ago=40 - n, seconds=5 + n % 5,
                        error="HTTP 500 <b>boom</b>\nthe second line" if failed else None,
                        result=None if failed else {"events": n, "newest_event_at": "2026-12-07T11:50:00.000Z"})
    ids["snapshot"] = record(db, "snapshot", "prod", minutes_ago=2, result={"changes": {"added": 2, "removed": 0, "changed": 1}})
    ids["checks"] = record(db, "tenant-checks", "prod", minutes_ago=1, result={"findings": {"high": 1, "critical": 2}, "new": 1, "resolved": 0})
    return ids


def test_page_shows_grid_failures_reach_drift_and_findings(served):
    db, base = served
    ids = filled(db)
    code, headers, page = get(base + "/")
    assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<meta http-equiv="refresh" content="30">' in page
    assert f'<a href="/runs/{ids[39]}"><span class="st succeeded">succeeded</span></a>' in page  # the latest run of (export-logs, prod)
    assert "<title>last 30 runs: 26 succeeded, 4 failed; longest 9 s</title>" in page  # 30 of the 40, from run 10 on
    assert page.count("h3V24h-3z") == 30 + 1 + 1  # a bar each, and one each for snapshot and tenant-checks
    assert f'<a href="/runs/{ids[35]}">run {ids[35]}</a> export-logs for prod' in page
    assert '<span class="err">HTTP 500 &lt;b&gt;boom&lt;/b&gt;</span>' in page  # its first line only
    assert "the second line" not in page
    assert 'title="2026-12-07 11:50:00 UTC">10 min ago</time>' in page  # the archive's reach
    assert f'added 2, removed 0, changed 1 <a class="small" href="/runs/{ids["snapshot"]}">' in page
    assert f'critical 2, high 1; new 1; resolved 0 <a class="small" href="/runs/{ids["checks"]}">' in page
    assert 'next <time datetime="2026-12-07T12:03:00+00:00"' in page and ">off</span>" in page  # the scheduler's plan
    assert "no job&#39;s latest run failed" in page
    failing = record(db, "snapshot", "prod", "failed", error="no")
    assert f'1 failing now:</span> <a href="/runs/{failing}">snapshot for prod</a>' in get(base + "/")[2]


def test_page_without_tenant_checks_runs_has_no_findings_column(served):
    db, base = served
    record(db, "snapshot", result={"changes": {"added": 0}})
    assert "findings" not in get(base + "/")[2]


def test_every_value_is_text_and_no_script_may_run(served):
    db, base = served
    run_id = record(db, "export-clients", HOSTILE, "failed", error=f"client {HOSTILE} refused", params={"name": HOSTILE},
                    result={"newest_event_at": HOSTILE})
    for path in ("/", f"/runs/{run_id}"):
        code, headers, page = get(base + path)
        assert code == 200 and "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        csp = headers["Content-Security-Policy"]
        assert csp.startswith("default-src 'none'; style-src 'sha256-") and "script-src" not in csp


def test_run_page_shows_params_result_error_and_timings(served):
    db, base = served
    run_id = record(db, "export-users", "prod", "failed", seconds=75, error="the export job failed", params={"connection": "db"},
                    result={"rows": 3})
    code, _, page = get(f"{base}/runs/{run_id}")
    assert code == 200 and f"<h1>run {run_id}: export-users</h1>" in page
    assert "<th>duration</th><td>75 s</td>" in page and "<th>started</th><td>2026-12-07 12:00:00 UTC (<time" in page and "<pre>the export job failed</pre>" in page
    assert '&quot;connection&quot;: &quot;db&quot;' in page and "&quot;rows&quot;: 3" in page
    assert "http-equiv" not in page  # a finished run does not change


@pytest.mark.parametrize("path", ["/runs/999999", "/runs/abc", "/runs/", "/runs/99999999999999999999999"])
def test_unknown_run_is_404(served, path):
    code, headers, page = get(served[1] + path)
    assert code == 404 and "not found" in page and "Content-Security-Policy" in headers


def test_serve_shows_runs_of_other_processes(runner, env, tmp_path):
    proc = start_runner({**env, **QUIET, "RUNNER_METRICS_ADDRESS": "127.0.0.1:0"}, tmp_path, "serve")
    line = read_until(proc, "status page on /")[-1]
    base = line.split("metrics on ")[1].split("/metrics")[0]
    assert runner("run-job", "failing", extra_env=QUIET).returncode == 1  # as cron runs it
    code, _, page = get(base + "/")
    assert code == 200 and '<th>failing</th>' in page and '<span class="st failed">failed</span>' in page
    assert stop(proc)[0] == 0


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("no chromium here: scripts/setup test installs Debian's package when run as root with apt-get")
    return found


def browse(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                           "--user-data-dir=" + str(args[-1]) + ".profile", *args[:-1], url],
                          capture_output=True, text=True, timeout=90)


OUTPUT = Path(__file__).parent / "output"  # gitignored: the screenshots of the last run, to look at


def test_chromium_shows_the_page_at_desktop_and_phone_widths(served, tmp_path, database_url):
    db, base = served
    filled(db)
    record(db, "export-clients", HOSTILE, "failed", minutes_ago=3, error=f"client {HOSTILE} refused")
    dom = browse(base + "/", "--dump-dom", tmp_path / "dom")
    assert dom.returncode == 0, dom.stderr
    assert "<h1>runner status</h1>" in dom.stdout and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout
    assert "<script" not in dom.stdout  # nothing became an element
    assert 'aria-label="last 30 runs: ' in dom.stdout
    for name, size in (("desktop", "1280,900"), ("phone", "390,844")):
        shot = tmp_path / f"status-{name}.png"
        done = browse(base + "/", f"--screenshot={shot}", f"--window-size={size}", tmp_path / name)
        assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr
        OUTPUT.mkdir(exist_ok=True)
        shutil.copyfile(shot, OUTPUT / f"status-{name}-{database_url.split(':')[0].split('+')[0]}.png")


@pytest.mark.parametrize("address", ["", "127.0.0.1:0"])
def test_serve_loads_the_page_only_with_a_metrics_address(local_env, tmp_path, database_url, address):
    if database_url.startswith("postgresql"):
        pytest.skip("the same imports on either database")
    env = {**local_env, **QUIET, "RUNNER_METRICS_ADDRESS": address}
    proc = subprocess.Popen([sys.executable, "-X", "importtime", str(RUNNER), "serve"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = read_until(proc, "scheduling")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    loaded = any(line.rstrip().endswith("batchrunner.operating.status_page") for line in lines)
    assert loaded == bool(address)


def test_page_says_in_one_line_when_the_database_does_not_answer():
    from batchrunner.store.database import Database

    unreachable = Database("postgresql+psycopg://runner@127.0.0.1:1/runner")
    page = StatusPage(unreachable, lambda: {}, lambda: NOW)
    server = health.start(health.Address("127.0.0.1", 0), health.app(health.Health(unreachable, lambda: None), lambda: b"", page), 0.1)
    try:
        code, headers, text = get(f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 503 and "<p>the database did not answer: " in text and "127.0.0.1" in text and "Traceback" not in text

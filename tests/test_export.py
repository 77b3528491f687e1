"""export-clients through the stand-in tenant: complete or absent, no secrets, the exit codes."""

from __future__ import annotations

import csv
import io
import json
import signal
import time
from pathlib import Path

import pytest
import requests

from batchrunner.auth0.pacing import FIRST_WAVE
from batchrunner.outputs.atomic import neutralise
from batchrunner.runs.records import history
from batchrunner.store.database import open_database
from batchrunner.store.schema import rate_limit_buckets
from conftest import SQLITE_ONLY, run_runner, start_runner, wait_for

KEYS_APP = ("keys-app", "keys-app-secret-9f8e7d")


def read_export(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark, for spreadsheets
    text = raw[3:].decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    # Every record ends in CRLF; a bare LF stands only inside a quoted cell (RFC 4180).
    assert text.endswith("\r\n") and text.count("\r\n") == len(rows) + sum(cell.count("\r\n") for row in rows for cell in row)
    return list(csv.DictReader(io.StringIO(text, newline="")))


def exports(tmp_path) -> dict[str, bytes]:
    directory = tmp_path / "exports"
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


@SQLITE_ONLY
def test_every_application_exactly_once_without_secrets(runner, tenant, tmp_path):
    app = tenant.tenant
    app.set_clients(2500)
    app.add_m2m(*KEYS_APP, ["read:clients", "read:client_keys"])  # the API would return secrets
    result = runner("run-job", "export-clients", extra_env={"AUTH0_CLIENT_ID": KEYS_APP[0], "AUTH0_CLIENT_SECRET": KEYS_APP[1]})
    assert result.returncode == 0, result.stderr
    latest = tmp_path / "exports" / "clients-latest.csv"
    assert result.stdout.startswith("export-clients succeeded (run 1): 2500 rows written to ")
    rows = read_export(latest)
    assert list(rows[0])[:3] == ["client_id", "name", "app_type"]
    expected = [app.application(i) for i in range(2500)]
    assert [r["client_id"] for r in rows] == [a["client_id"] for a in expected]
    assert [r["name"] for r in rows] == [neutralise(a["name"]) for a in expected]
    assert any("," in r["name"] for r in rows) and any('"' in r["name"] for r in rows)
    assert any("\n" in r["name"] for r in rows) and any("Ø" in r["name"] for r in rows)
    assert any(r["name"].startswith("'=") for r in rows)
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r.values())
    for name, data in exports(tmp_path).items():
        assert b"SANDBOXSECRET" not in data and b"SANDBOXKEY" not in data, name
    assert not {"client_secret", "signing_keys", "encryption_key", "client_authentication_methods"} & set(rows[0])


def pages_asked(tenant) -> list[int]:
    return sorted(int(r["query"]["page"]) for r in tenant.tenant.received if r["path"] == "/api/v2/clients")


@SQLITE_ONLY
@pytest.mark.parametrize("clients, pages", [(30, [0, 1]), (1150, list(range(12)))])
def test_page_1_is_asked_beside_page_0_and_every_page_once(runner, tenant, tmp_path, clients, pages):
    # Page 1 goes out with page 0, before `total` says whether there is one (batchrunner/auth0/api.py):
    # a tenant of one page spends one request more, a larger one none, and no row comes twice.
    tenant.tenant.set_clients(clients)
    tenant.tenant.latency = 0.05  # page 1 is sent before page 0's answer arrives
    result = runner("run-job", "export-clients")
    assert result.returncode == 0, result.stderr
    assert pages_asked(tenant) == pages
    rows = read_export(tmp_path / "exports" / "clients-latest.csv")
    assert [r["client_id"] for r in rows] == [tenant.tenant.application(i)["client_id"] for i in range(clients)]


def test_the_next_export_starts_from_the_bucket_the_last_one_learned(runner, tenant, database_url):
    # A new process knows nothing of the tenant's rate limit but what earlier runs left in the
    # database (batchrunner/auth0/ratelimits.py): with it, more than the blind first wave goes out before
    # the first answer, and still no request meets an empty bucket.
    app = tenant.tenant
    app.set_clients(3000)  # 30 pages, past the burst: the refill rate shows
    app.rate, app.burst, app.latency = 20, 10, 0.3
    assert runner("run-job", "export-clients").returncode == 0
    with open_database(database_url).read() as conn:
        [row] = conn.execute(rate_limit_buckets.select()).all()
    assert row.tenant == tenant.base_url and row.bucket == "global"
    assert row.size == 10 and 10 < row.rate <= 20 and 0.3 <= row.round_trip < 1

    tenant.reset()  # a full bucket again, as by the next night
    app.set_clients(3000)
    app.rate, app.burst, app.latency = 20, 10, 0.3
    assert runner("run-job", "export-clients").returncode == 0
    sent = sorted(r["at"] for r in app.received if r["path"] == "/api/v2/clients")
    before_first_answer = [at for at in sent if at < sent[0] + 0.2]
    assert len(before_first_answer) > FIRST_WAVE  # page 0, and the pages the bucket refills in a round trip
    assert app.responses_429 == 0 and len(sent) == 30


@SQLITE_ONLY
def test_a_damaged_rate_limit_row_is_passed_over_and_replaced(runner, tenant, database_url):
    app = tenant.tenant
    app.set_clients(3000)
    app.rate, app.burst = 20, 10
    db = open_database(database_url)
    with db.write() as conn:
        conn.execute(rate_limit_buckets.insert().values(tenant=tenant.base_url, bucket="global", size=10, rate=float("inf"),
                                                        round_trip=0.1, remaining=10.0, seen_at=0.0))
    result = runner("run-job", "export-clients")
    assert result.returncode == 0, result.stderr
    assert "the rate limit earlier runs saw of bucket 'global' is not believable (size 10, rate inf," in result.stderr
    assert "Traceback" not in result.stderr and app.responses_429 == 0
    with db.read() as conn:
        [row] = conn.execute(rate_limit_buckets.select()).all()
    assert 0 < row.rate <= 20


def test_the_file_is_rfc4180_and_the_result_is_recorded(runner, tenant, tmp_path):
    tenant.tenant.set_clients(30)
    assert runner("run-job", "export-clients").returncode == 0
    data = (tmp_path / "exports" / "clients-latest.csv").read_bytes()
    assert data.count(b"\r\n") >= 31 and b"\r\r" not in data
    [run] = json.loads(runner("history", "--json").stdout)
    assert run["status"] == "succeeded" and run["trigger"] == "manual" and run["scheduled_for"] is None
    assert run["result"]["rows"] == 30 and Path(run["result"]["path"]).name.startswith("clients-2")
    assert set(run["result"]) >= {"rows", "path", "pages", "requests", "retries", "seconds"}
    asked = [r for r in tenant.tenant.received if r["path"] == "/api/v2/clients"]
    assert asked[0]["query"]["per_page"] == "100" and asked[0]["query"]["include_totals"] == "true"
    assert asked[0]["query"]["is_global"] == "false"
    # The secrets are left out by name: Auth0's `fields` pattern lists two of the columns nowhere.
    assert asked[0]["query"]["include_fields"] == "false"
    assert asked[0]["query"]["fields"] == "client_secret,signing_keys,encryption_key,client_authentication_methods"
    assert asked[0]["headers"]["User-Agent"].startswith("auth0-runner/")


@SQLITE_ONLY
def test_the_export_survives_5xx_429_and_a_token_expiring_mid_run(runner, tenant, tmp_path):
    app = tenant.tenant
    app.set_clients(1000)
    app.fail_next("/api/v2/clients", [503, 502, 429], retry_after=1)
    app.expire_tokens_after(4)
    result = runner("run-job", "export-clients")
    assert result.returncode == 0, result.stderr
    assert len(read_export(tmp_path / "exports" / "clients-latest.csv")) == 1000
    [run] = json.loads(runner("history", "--json").stdout)
    assert run["result"]["retries"] >= 3
    assert app.token_requests == 2  # one more after the expiry, not one per page


@SQLITE_ONLY
def test_a_rate_limit_used_up_by_another_client_is_waited_out_not_forever(runner, tenant, tmp_path):
    app = tenant.tenant
    app.set_clients(400)
    app.rate, app.burst = 5, 10
    token = runner("token", "print").stdout.strip()
    with requests.Session() as other:  # another client of the tenant takes the whole allowance
        for _ in range(12):
            other.get(f"{tenant.base_url}/api/v2/clients", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    result = runner("run-job", "export-clients", timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(read_export(tmp_path / "exports" / "clients-latest.csv")) == 400


def export_then_start_another(env, runner, tenant, tmp_path, clients, after_requests, **switches):
    """A good export of 300 applications; then a slower one of `clients`, started and under way.

    Returns the files of the first and the process of the second.
    """
    app = tenant.tenant
    app.set_clients(300)
    assert runner("run-job", "export-clients").returncode == 0
    before = exports(tmp_path)
    app.set_clients(clients)
    app.latency = 0.3
    for name, value in switches.items():
        setattr(app, name, value)
    victim = start_runner(env, tmp_path, "run-job", "export-clients")
    wait_for(lambda: app.api_requests >= after_requests)
    return before, victim


@SQLITE_ONLY
def test_pages_that_shift_during_the_export_fail_it_and_keep_the_old_files(env, runner, tenant, tmp_path):
    app = tenant.tenant
    before, victim = export_then_start_another(env, runner, tenant, tmp_path, clients=5000, after_requests=12)
    app.prepend_application()  # one created at the front of the list, one deleted at the end:
    app.set_clients(4999)       # the total stays, later pages start one item later
    out, err = victim.communicate(timeout=60)
    assert victim.returncode == 1
    assert err.strip().splitlines()[-1] == (
        "runner: export-clients failed (run 2): the pages of clients shifted: they changed during the export; run again"
    )
    assert exports(tmp_path) == before


@SQLITE_ONLY
def test_an_export_directory_that_is_a_file_is_one_line(runner, tenant, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    result = runner("run-job", "export-clients", extra_env={"RUNNER_EXPORT_DIR": str(blocker)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"runner: export-clients failed (run 1): RUNNER_EXPORT_DIR: cannot write exports to {blocker}: File exists; "
        "make it a folder the runner's user can write, or set RUNNER_EXPORT_DIR to one"
    )
    assert "Traceback" not in result.stderr


def test_a_revoked_cached_token_is_replaced_once(runner, tenant, tmp_path):
    tenant.tenant.set_clients(150)
    assert runner("token", "print").returncode == 0
    tenant.tenant.revoke_all_tokens()
    assert runner("run-job", "export-clients").returncode == 0
    assert tenant.tenant.token_requests == 2


@SQLITE_ONLY
def test_insufficient_scope_exits_1_naming_the_scope(runner, tenant):
    tenant.tenant.add_m2m("users-app", "users-app-secret-1234", ["read:users"])
    result = runner("run-job", "export-clients", extra_env={"AUTH0_CLIENT_ID": "users-app", "AUTH0_CLIENT_SECRET": "users-app-secret-1234"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "runner: export-clients failed (run 1): the token lacks the scope read:clients for GET /api/v2/clients; grant read:clients to application users-app "
        "(Dashboard > Applications > APIs > Auth0 Management API > Machine To Machine Applications), then run again"
    )


def test_wrong_credentials_exit_1_and_the_failed_run_is_recorded(runner, tenant, tmp_path):
    result = runner("run-job", "export-clients", extra_env={"AUTH0_CLIENT_SECRET": "not-the-secret-77"})
    assert result.returncode == 1
    assert "runner: export-clients failed (run 1): Auth0 refused the token request (HTTP 401 access_denied: Unauthorized)" in result.stderr
    [run] = json.loads(runner("history", "--json").stdout)
    assert run["status"] == "failed" and "Auth0 refused" in run["error"]
    assert "not-the-secret-77" not in result.stderr + json.dumps(run)
    assert exports(tmp_path) == {}


def test_an_error_that_quotes_the_secret_is_recorded_redacted(runner, tenant, tmp_path, env):
    job_dir = Path(__file__).parent / "fixture_jobs"
    result = runner("run-job", "leaky", extra_env={"RUNNER_JOBS": str(job_dir)})
    assert result.returncode == 1
    assert tenant.client_secret not in result.stdout + result.stderr
    [run] = json.loads(runner("history", "--json", extra_env={"RUNNER_JOBS": str(job_dir)}).stdout)
    assert run["error"] == "RuntimeError: oops, the secret is [redacted]"


def test_a_killed_export_leaves_the_previous_files_and_the_next_run_succeeds(env, runner, tenant, tmp_path):
    app = tenant.tenant
    before, victim = export_then_start_another(env, runner, tenant, tmp_path, clients=4000, after_requests=8, rate=5, burst=2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    visible = {k: v for k, v in exports(tmp_path).items() if not k.startswith(".")}
    assert visible == before
    app.latency, app.rate = 0, None
    app.set_clients(300)
    after = runner("run-job", "export-clients")
    assert after.returncode == 0, after.stderr
    assert not [name for name in exports(tmp_path) if name.startswith(".")]  # the leftover is gone
    statuses = [r["status"] for r in json.loads(runner("history", "--json").stdout)]
    assert statuses == ["succeeded", "abandoned", "succeeded"]


def test_a_second_run_during_a_run_exits_75_and_is_recorded_skipped(env, runner, tenant, tmp_path, database_url):
    app = tenant.tenant
    app.set_clients(500)
    app.latency = 2.0  # from its run's row on, the first export takes 6 s at least: token, page 0, pages 1-4
    first = start_runner(env, tmp_path, "run-job", "export-clients")
    db = open_database(database_url)
    wait_for(lambda: [r["status"] for r in history(db)] == ["running"])
    second = runner("run-job", "export-clients")
    app.latency = 0  # the first may end now
    assert second.returncode == 75, second.stderr
    last = second.stderr.strip().splitlines()[-1]  # log lines first, then the one-line verdict
    assert last.startswith("runner: another run of export-clients is in progress (run 1 on ")
    assert last.endswith("this run is recorded as skipped (run 2)")
    assert first.wait(timeout=60) == 0
    runs = json.loads(runner("history", "--json").stdout)
    assert sorted((r["id"], r["status"]) for r in runs) == [(1, "succeeded"), (2, "skipped")]


@pytest.mark.parametrize("args, message", [
    (("run-job", "no-such-job"), "runner: unknown job 'no-such-job'; registered jobs: export-clients, export-logs, export-users, snapshot, tenant-checks, users-cleanup (see `runner jobs`)"),
    (("run-job", "export-clients", "--param", "oops"), "runner: --param 'oops': expected KEY=VALUE"),
])
@SQLITE_ONLY
def test_usage_errors_exit_2(runner, args, message):
    result = runner(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == message


@SQLITE_ONLY
def test_a_job_of_ones_own_with_params(runner, tmp_path):
    job_file = tmp_path / "my_jobs.py"
    job_file.write_text(
        "from batchrunner.runs.registry import job\n\n"
        "@job('count-to', schedule='*/5 * * * *', description='Counts.', needs_api=False, params=('n',))\n"
        "def count_to(ctx):\n    return {'numbers': list(range(int(ctx.params['n'])))}\n"
    )
    extra = {"RUNNER_JOBS": str(job_file)}
    result = runner("run-job", "count-to", "--param", "n=3", extra_env=extra)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "count-to succeeded (run 1): numbers=[0, 1, 2]"
    listed = json.loads(runner("jobs", "--json", extra_env=extra).stdout)
    mine = next(j for j in listed if j["name"] == "count-to")
    assert mine["schedule"] == "*/5 * * * *" and mine["last_run"]["status"] == "succeeded" and mine["next_run"].endswith("Z")
    assert {j["name"] for j in listed} == {"count-to", "export-clients", "export-logs", "export-users", "snapshot", "tenant-checks", "users-cleanup"}
    typo = runner("run-job", "count-to", "--param", "m=3", extra_env=extra)
    assert (typo.returncode, typo.stderr) == (2, "runner: count-to takes no --param m; its parameters: n\n")


@SQLITE_ONLY
@pytest.mark.parametrize("pages", ["in flight", "waiting out 429s", "answering in 25 s"])
def test_sigterm_ends_a_run_job_at_once_and_records_it(local_env, lone_tenant, tmp_path, pages):
    env = {**local_env, **lone_tenant.settings()}  # pages of 25 s are still asked when the test ends
    app = lone_tenant.tenant
    app.set_clients(5000)
    app.latency = 0.2 if pages == "answering in 25 s" else 0.5
    victim = start_runner(env, tmp_path, "run-job", "export-clients")
    wait_for(lambda: app.api_requests >= 1)
    if pages == "waiting out 429s":
        app.fail_next("/api/v2/clients", [429] * 20, retry_after=30)  # the page threads are told to wait 30 s
        wait_for(lambda: app.responses_429 >= 2)
    elif pages == "answering in 25 s":
        wait_for(lambda: app.api_requests >= 3)  # the page threads are at work
        app.latency = 25  # every page asked from now on takes 25 s (the stand-in sleeps half before counting it)
        time.sleep(0.6)  # the pages in flight before the change are answered, slow ones take their place
    else:
        wait_for(lambda: app.api_requests >= 3)
    started = time.monotonic()
    victim.send_signal(signal.SIGTERM)
    out, err = victim.communicate(timeout=40)
    assert time.monotonic() - started < 3  # not after the pages in flight and their retries
    assert victim.returncode == 1
    # The verdict; a page thread answered in that instant may still log a line after it.
    assert [line for line in err.splitlines() if line.startswith("runner: ")] == [
        "runner: export-clients was interrupted; the run is recorded as failed"]
    [run] = json.loads(run_runner(env, tmp_path, "history", "--json").stdout)
    assert (run["status"], run["error"]) == ("failed", "interrupted (Terminated)")
    assert exports(tmp_path) == {}


def test_a_killed_run_shows_abandoned_in_history_and_jobs_at_once(env, runner, tenant, tmp_path):
    app = tenant.tenant
    app.set_clients(2000)
    app.latency = 0.3
    victim = start_runner(env, tmp_path, "run-job", "export-clients")
    db = open_database(env["RUNNER_DATABASE_URL"])
    wait_for(lambda: [r["status"] for r in history(db)] == ["running"] and app.api_requests >= 2)  # mid-export
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    [run] = json.loads(runner("history", "--json").stdout)  # no other run or serve has swept meanwhile
    assert run["status"] == "abandoned"
    assert run["error"] == f"the process running it ({run['host']}, pid {victim.pid}) died or stopped sending heartbeats"
    [job] = [j for j in json.loads(runner("jobs", "--json").stdout) if j["name"] == "export-clients"]
    assert job["last_run"]["status"] == "abandoned"

"""The token cache: one issuance per lifetime however many processes ask, retries, clear refusals."""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

from batchrunner import clock
from batchrunner.auth0.tokencache import LEASE_SECONDS, CacheKey, CachedTokenSource, cached_source
from batchrunner.auth0.tokens import ClientCredentialsSource, Token
from batchrunner.config import load_credentials
from batchrunner.errors import TokenError
from batchrunner.store.database import database_time, open_database
from batchrunner.store.schema import metadata, token_cache

from conftest import SQLITE_ONLY, run_skewed, start_runner, stop, wait_for

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def test_ten_processes_on_an_empty_cache_cause_one_request(env, tenant, tmp_path, database_url):
    tenant.tenant.token_latency = 0.5  # keep the first request open while the others arrive
    procs = [start_runner(env, tmp_path, "token", "print") for _ in range(10)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, [err for _, err in outs]
    tokens = {out.strip() for out, _ in outs}
    assert len(tokens) == 1 and tokens.pop().count(".") == 2  # one JWT for all
    assert tenant.tenant.token_requests == 1

    later = start_runner(env, tmp_path, "token", "print")
    assert later.communicate(timeout=30)[0].strip() in {out.strip() for out, _ in outs}
    assert tenant.tenant.token_requests == 1


def test_the_ledger_records_each_issuance_and_counts_per_month(runner, tenant):
    assert runner("token", "print").returncode == 0
    ledger = runner("token", "issuances")
    assert ledger.returncode == 0
    assert "token print" in ledger.stdout
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    assert any(line.split() == [month, "1"] for line in ledger.stdout.splitlines())
    status = runner("token", "status", "--json")
    import json

    [entry] = json.loads(status.stdout)
    assert entry["client_id"] == tenant.client_id and entry["scope"] == "read:clients"
    assert set(entry) >= {"audience", "client_id", "scope", "issued_at", "expires_at"}
    token = runner("token", "print").stdout.strip()
    assert token not in status.stdout and token not in ledger.stdout


def test_margin_is_five_minutes_or_a_tenth_of_the_lifetime():
    day = Token.from_response({"access_token": "x", "expires_in": 86400}, T0)
    assert day.margin == timedelta(minutes=5)
    assert day.valid(T0 + timedelta(hours=23, minutes=54))
    assert not day.valid(T0 + timedelta(hours=23, minutes=55))
    short = Token.from_response({"access_token": "x", "expires_in": 600}, T0)
    assert short.margin == timedelta(seconds=60)


@pytest.mark.parametrize("body, fragment", [
    ({"expires_in": 86400}, "has no access_token"),
    ({"access_token": "x"}, "unusable expires_in (None)"),
    ({"access_token": "x", "expires_in": -5}, "unusable expires_in (-5)"),
    ({"access_token": "x", "expires_in": 0.5}, "unusable expires_in (0.5); expected 1 to "),
    ({"access_token": "x", "expires_in": 10**9}, "unusable expires_in"),
    ({"access_token": "x", "expires_in": "86400"}, "unusable expires_in"),
    ({"access_token": "x", "expires_in": 60, "token_type": "MAC"}, "'MAC' token"),
    (["not", "an", "object"], "not a JSON object"),
])
def test_unusable_token_responses_are_clear_errors(body, fragment):
    with pytest.raises(TokenError) as err:
        Token.from_response(body, T0)
    assert fragment in str(err.value)


def _source(tenant, database_url, clock, sleep=lambda s: None):
    creds = load_credentials(tenant.settings())
    db = open_database(database_url)
    key = CacheKey(creds.base_url, creds.client_id, creds.audience, creds.client_secret)
    return CachedTokenSource(db, key, ClientCredentialsSource(creds, now=clock, sleep=sleep), "test", now=clock, sleep=sleep)


def test_a_token_is_reused_until_the_margin_then_renewed(tenant, database_url):
    clock = Clock()
    first = _source(tenant, database_url, clock).token()
    clock.now = T0 + timedelta(hours=23, minutes=54)
    assert _source(tenant, database_url, clock).token().access_token == first.access_token
    assert tenant.tenant.token_requests == 1
    clock.now = T0 + timedelta(hours=23, minutes=56)
    assert _source(tenant, database_url, clock).token().access_token != first.access_token
    assert tenant.tenant.token_requests == 2


def test_5xx_and_429_are_retried_honouring_retry_after(tenant, database_url):
    tenant.tenant.fail_next("/oauth/token", [503, 503])
    waits = []
    assert _source(tenant, database_url, Clock(), waits.append).token().access_token
    assert tenant.tenant.token_requests == 3
    assert len(waits) == 2

    tenant.tenant.fail_next("/oauth/token", [429], retry_after=7)
    waits.clear()
    clock = Clock(T0 + timedelta(days=2))  # the cached token has expired by then
    assert _source(tenant, database_url, clock, waits.append).token().access_token
    assert 7 <= waits[0] < 8


@SQLITE_ONLY
def test_a_wrong_secret_fails_at_once_with_one_line_and_no_secret(runner, tenant, tmp_path, database_url):
    wrong = "wrong-secret-Zq81x"
    result = runner("token", "print", extra_env={"AUTH0_CLIENT_SECRET": wrong})
    assert result.returncode == 1
    assert result.stderr == (
        "runner: Auth0 refused the token request (HTTP 401 access_denied: Unauthorized); "
        "check AUTH0_CLIENT_ID and the client secret (were they rotated?) and AUTH0_DOMAIN\n"
    )
    assert tenant.tenant.token_requests == 1  # not retried
    assert wrong not in result.stdout + result.stderr
    assert tenant.client_secret not in result.stdout + result.stderr
    for file in (tmp_path / "state").glob("*"):
        assert wrong.encode() not in file.read_bytes()


@SQLITE_ONLY
def test_a_missing_client_grant_names_the_fix(runner, tenant):
    tenant.tenant.add_m2m("no-grant-app", "no-grant-secret-1234", ["read:clients"], authorised=False)
    result = runner("token", "print", extra_env={"AUTH0_CLIENT_ID": "no-grant-app", "AUTH0_CLIENT_SECRET": "no-grant-secret-1234"})
    assert result.returncode == 1
    assert result.stderr.startswith("runner: Auth0 refused the token request (HTTP 403 access_denied: Client is not authorized to access")
    assert f"authorise application no-grant-app for the API {tenant.audience}" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "no-grant-secret-1234" not in result.stderr


def test_a_killed_issuer_does_not_block_the_next_process(local_env, lone_tenant, tmp_path):
    tenant = lone_tenant  # its first token request is still answered, 30 s on, when the test ends
    env = {**local_env, **tenant.settings()}
    tenant.tenant.token_latency = 30
    issuer = start_runner(env, tmp_path, "token", "print")
    deadline = time.monotonic() + 20
    while tenant.tenant.token_requests == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert tenant.tenant.token_requests == 1
    issuer.send_signal(signal.SIGKILL)
    issuer.wait()
    tenant.tenant.token_latency = 0
    started = time.monotonic()
    follower = start_runner(env, tmp_path, "token", "print")
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert time.monotonic() - started < 10  # its pid is gone: the lease lapses at once on this host
    assert tenant.tenant.token_requests == 2


def test_a_lease_held_on_another_host_lapses_after_the_bound_by_the_database_clock(tenant, database_url):
    ahead = Clock(datetime.now(timezone.utc) + timedelta(days=1))  # this process's clock does not judge leases
    source = _source(tenant, database_url, ahead)
    db = source.db

    def lease_taken(seconds_ago):
        with db.write() as conn:
            db.insert_ignore(conn, token_cache, source._key_values())
            taken = database_time(conn) - timedelta(seconds=seconds_ago)
            conn.execute(update(token_cache).where(source.key.where()).values(
                lease_owner="elsewhere", lease_host="other-host", lease_node="another-node", lease_pid=1,
                lease_expires_at=taken + timedelta(seconds=LEASE_SECONDS)))

    lease_taken(LEASE_SECONDS - 5)
    assert source._claim(ahead()) is False
    lease_taken(LEASE_SECONDS + 1)
    assert source._claim(ahead()) is True


@pytest.mark.parametrize("other_node", [False, True], ids=["same-node", "other-node"])
def test_a_host_61_s_ahead_does_not_take_over_a_live_lease(env, tenant, tmp_path, other_node):
    tenant.tenant.token_latency = 2.5  # the issuer holds its lease while the other arrives
    issuer = start_runner(env, tmp_path, "token", "print")
    wait_for(lambda: tenant.tenant.token_requests == 1)
    ahead = run_skewed(env, tmp_path, 61, "token", "print", other_node=other_node)
    out, err = issuer.communicate(timeout=30)
    assert (issuer.returncode, ahead.returncode) == (0, 0), err + ahead.stderr
    assert ahead.stdout == out  # the issuer's token, waited for
    assert tenant.tenant.token_requests == 1


def _dump(database_url) -> str:
    with open_database(database_url).read() as conn:
        return repr([conn.execute(select(table)).all() for table in metadata.sorted_tables])


def test_a_token_that_cannot_be_cached_is_used_recorded_and_shown_nowhere(runner, tenant, database_url, refusals):
    refusals.refuse("token_cache", "NEW.access_token IS NOT NULL")  # the cache write fails after issuance
    result = runner("run-job", "export-clients")
    assert result.returncode == 0, result.stderr
    assert tenant.tenant.token_requests == 1
    calls = [e for e in tenant.tenant.received if e["path"] == "/api/v2/clients"]
    token = calls[0]["headers"]["Authorization"].removeprefix("Bearer ")
    assert len(token) > 100
    [warning] = [line for line in result.stderr.splitlines() if "could not be cached" in line]
    assert "this process uses it, others ask for their own" in warning
    ledger = json.loads(runner("token", "issuances", "--json").stdout)
    assert [row["requested_by"] for row in ledger] == ["run 1 (export-clients)"]
    pieces = {token[i:i + 40] for i in range(len(token) - 39)}
    for name, text in {"stdout": result.stdout, "stderr": result.stderr, "database": _dump(database_url)}.items():
        assert not any(piece in text for piece in pieces), f"a piece of the token is in {name}"


def test_every_engine_hides_statement_parameters(database_url):
    assert open_database(database_url).engine.hide_parameters


def test_the_database_files_are_private(runner, tmp_path, database_url):
    os.umask(0o022)  # what a login shell usually has
    assert runner("token", "print").returncode == 0
    with open_database(database_url).write() as conn:  # an open writer keeps -wal and -shm in place
        conn.execute(update(token_cache).values(scope="read:clients"))
        files = sorted((tmp_path / "state").glob("runner.db*"))
        assert [f.name for f in files] == ["runner.db", "runner.db-shm", "runner.db-wal"]
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


@pytest.fixture
def sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("file permissions concern the SQLite file only")


test_the_database_files_are_private = pytest.mark.usefixtures("sqlite_only")(test_the_database_files_are_private)


def test_the_secret_is_nowhere_in_the_database(runner, tenant, database_url):
    assert runner("token", "print").returncode == 0
    assert runner("run-job", "export-clients").returncode == 0
    db = open_database(database_url)
    with db.read() as conn:
        dump = repr([conn.execute(select(table)).all() for table in metadata.sorted_tables])
    assert "token print" in dump and "export-clients" in dump  # the dump holds what was recorded
    assert tenant.client_secret not in dump


@SQLITE_ONLY
def test_a_wait_the_server_asks_for_past_the_bound_is_not_waited(runner, tenant):
    tenant.tenant.fail_next("/oauth/token", [429], retry_after=120)
    started = time.monotonic()
    result = runner("token", "print")
    assert result.returncode == 1
    assert time.monotonic() - started < 20  # not 120 s, and not past the issuer's lease
    assert result.stderr.startswith("runner: could not get a token from ")
    assert "HTTP 429" in result.stderr and result.stderr.count("\n") == 1
    assert runner("token", "issuances", "--json").stdout.strip() == "[]"


@SQLITE_ONLY
def test_a_redirect_is_not_followed_so_the_secret_stays_put(runner, tenant):
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(307)
            self.send_header("Location", f"{tenant.base_url}/oauth/token")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = runner("token", "print", extra_env={"AUTH0_DOMAIN": f"http://127.0.0.1:{server.server_port}"})
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert result.stderr == (
        f"runner: POST http://127.0.0.1:{server.server_port}/oauth/token answered HTTP 307, redirecting to "
        f"{tenant.base_url}/oauth/token; set AUTH0_DOMAIN to the tenant's own domain (redirects are not followed)\n"
    )
    assert tenant.tenant.token_requests == 0


def test_waiters_take_no_write_lock_while_another_process_issues(tenant, database_url):
    tenant.tenant.token_latency = 1.0
    issuer = _source(tenant, database_url, clock.utcnow)
    waiter = _source(tenant, database_url, clock.utcnow, time.sleep)
    writes = []

    def count_writes(conn):
        if conn.get_execution_options().get("runner_write"):
            writes.append(threading.current_thread().name)

    event.listen(issuer.db.engine, "begin", count_writes)
    try:
        first = threading.Thread(target=issuer.token, name="issuer")
        first.start()
        while tenant.tenant.token_requests == 0:
            time.sleep(0.01)
        second = threading.Thread(target=waiter.token, name="waiter")
        second.start()
        first.join()
        second.join()
    finally:
        event.remove(issuer.db.engine, "begin", count_writes)
    assert tenant.tenant.token_requests == 1
    assert writes.count("waiter") == 0, "the waiter polled with write transactions"
    assert writes.count("issuer") == 3  # the lease; then the ledger and the cache, each on its own


@SQLITE_ONLY
def test_plain_http_to_another_host_is_refused_before_any_request(runner, tenant):
    result = runner("token", "print", extra_env={"AUTH0_DOMAIN": "http://auth.example.com"})
    assert result.returncode == 2
    assert result.stderr == "runner: AUTH0_DOMAIN: refusing plain http to auth.example.com: the client secret would travel in clear; use https://\n"
    assert tenant.tenant.token_requests == 0


@SQLITE_ONLY
def test_a_failed_tls_handshake_is_final_not_retried(runner, tenant):
    # The stand-in speaks plain HTTP: an https:// client fails its handshake, as with an untrusted certificate.
    result = runner("token", "print", extra_env={"AUTH0_DOMAIN": tenant.base_url.replace("http://", "https://")})
    assert result.returncode == 1
    assert result.stderr == (
        f"runner: TLS with {tenant.base_url.replace('http://', 'https://')}/oauth/token failed; "
        "check AUTH0_DOMAIN, and that this machine trusts the tenant's certificate (RUNNER_CA_BUNDLE)\n"
    )


@SQLITE_ONLY
def test_sandbox_on_a_busy_port_is_one_line(local_runner, tenant):
    result = local_runner("sandbox", "--port", str(tenant.port))
    assert result.returncode == 2
    assert result.stderr == f"runner: cannot listen on 127.0.0.1:{tenant.port}: Address already in use; choose another --port, or 0 for any free one\n"


@SQLITE_ONLY
@pytest.mark.parametrize("variable", ["AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"])
def test_each_missing_setting_is_one_line_and_exit_2(runner, variable):
    result = runner("token", "print", extra_env={variable: ""})
    assert result.returncode == 2
    assert result.stderr.startswith(f"runner: {variable}: not set")
    assert result.stderr.count("\n") == 1


def test_the_sandbox_says_nothing_when_a_client_goes_away_mid_answer(tmp_path):
    import socket
    import struct

    sandbox = start_runner({**os.environ}, tmp_path, "sandbox", "--port", "0", "--latency", "0.3")
    base = next(line for line in iter(sandbox.stdout.readline, "") if line.startswith("export AUTH0_DOMAIN="))
    host, port = base.strip().split("=", 1)[1].removeprefix("http://").split(":")
    for _ in range(3):  # clients killed while their answers are on the way
        client = socket.create_connection((host, int(port)))
        client.sendall(b"GET /api/v2/clients HTTP/1.1\r\nHost: x\r\n\r\n")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        client.close()
    time.sleep(0.6)  # the answers are written after the stand-in's latency
    _, err = stop(sandbox)
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err


@SQLITE_ONLY
def test_a_rejected_secret_is_one_token_request_for_every_page_waiting(runner, tenant):
    # Page 0 and the speculative page 1 ask at once; the second waits for the first's answer.
    tenant.tenant.token_latency = 0.3
    result = runner("run-job", "export-clients", extra_env={"AUTH0_CLIENT_SECRET": "wrong-secret-Zq81x"})
    assert result.returncode == 1
    assert "Auth0 refused the token request (HTTP 401 access_denied: Unauthorized)" in result.stderr
    assert tenant.tenant.token_requests == 1


@SQLITE_ONLY
def test_an_exhausted_retry_is_the_answer_for_every_page_waiting(runner, tenant):
    tenant.tenant.fail_next("/oauth/token", [503] * 12, retry_after=0)
    result = runner("run-job", "export-clients")
    assert result.returncode == 1
    assert "could not get a token from " in result.stderr and "after retrying: HTTP 503" in result.stderr
    assert tenant.tenant.token_requests == 5  # TOKEN_ATTEMPTS, once for the process


REFUSED = ("runner: Auth0 refused the token request (HTTP 401 access_denied: Unauthorized); "
           "check AUTH0_CLIENT_ID and the client secret (were they rotated?) and AUTH0_DOMAIN\n")


@SQLITE_ONLY
def test_a_cached_token_is_used_only_with_the_secret_it_was_issued_for(runner, tenant, database_url):
    first = runner("token", "print")
    assert first.returncode == 0 and tenant.tenant.token_requests == 1

    # A mistyped secret is refused now, not served from the cache until the renewal, at night.
    mistyped = runner("token", "print", extra_env={"AUTH0_CLIENT_SECRET": tenant.client_secret + "x"})
    assert (mistyped.returncode, mistyped.stderr) == (1, REFUSED)
    assert tenant.tenant.token_requests == 2
    assert runner("token", "print").stdout == first.stdout  # the right secret's token is still cached
    assert tenant.tenant.token_requests == 2

    rotated = "rotated-secret-Lk20p"
    tenant.tenant.add_m2m(tenant.client_id, rotated, ["read:clients"])  # rotated in the dashboard
    new = runner("token", "print", extra_env={"AUTH0_CLIENT_SECRET": rotated})
    assert new.returncode == 0 and new.stdout != first.stdout
    assert runner("token", "print", extra_env={"AUTH0_CLIENT_SECRET": rotated}).stdout == new.stdout
    assert tenant.tenant.token_requests == 3
    old = runner("token", "print")  # a host still set to the old secret hears of it at once
    assert (old.returncode, old.stderr) == (1, REFUSED)

    with open_database(database_url).read() as conn:
        [stored] = conn.execute(select(token_cache.c.secret_hash)).scalars().all()
    assert stored.startswith("scrypt$4096$8$1$") and rotated not in stored and tenant.client_secret not in stored


def test_a_token_cached_before_secrets_were_fingerprinted_is_renewed_once(tenant, database_url):
    clock = Clock()
    first = _source(tenant, database_url, clock).token()
    with open_database(database_url).write() as conn:
        conn.execute(update(token_cache).values(secret_hash=None))  # as revision 0006 left it
    assert _source(tenant, database_url, clock).token().access_token != first.access_token
    assert _source(tenant, database_url, clock).token().access_token != first.access_token
    assert tenant.tenant.token_requests == 2


@SQLITE_ONLY
def test_token_check_asks_auth0_whatever_is_cached(runner, tenant):
    cached = runner("token", "print").stdout
    check = runner("token", "check")
    assert (check.returncode, check.stderr) == (0, "")
    [line] = check.stdout.splitlines()
    assert line.startswith(f"The credentials work: Auth0 issued a token for {tenant.client_id} ({tenant.audience}), "
                           "scope read:clients, valid until ")
    assert tenant.tenant.token_requests == 2
    assert runner("token", "print").stdout not in (cached, "")  # the checked token is the one cached now
    assert tenant.tenant.token_requests == 2
    ledger = json.loads(runner("token", "issuances", "--json").stdout)
    assert [row["requested_by"] for row in ledger] == ["token check", "token print"]

    tenant.tenant.add_m2m(tenant.client_id, "rotated-secret-Lk20p", ["read:clients"])  # rotated, not yet in the runner
    assert runner("token", "print").returncode == 0  # the cached token still works...
    refused = runner("token", "check")  # ...but the secret does not
    assert (refused.returncode, refused.stdout, refused.stderr) == (1, "", REFUSED)


@SQLITE_ONLY
def test_a_token_holding_read_client_keys_is_warned_of(runner, tenant):
    tenant.tenant.add_m2m("keys-app", "keys-app-secret-9f8e7d", ["read:clients", "read:client_keys"])
    keys = {"AUTH0_CLIENT_ID": "keys-app", "AUTH0_CLIENT_SECRET": "keys-app-secret-9f8e7d"}
    warning = ("the token holds read:client_keys, with which the Management API returns every application's secret "
               "and keys; no job needs it: remove it from application keys-app (Dashboard > Applications > APIs > "
               "Auth0 Management API > Machine To Machine Applications)")
    run = runner("run-job", "export-clients", extra_env=keys)
    assert run.returncode == 0, run.stderr
    assert [line for line in run.stderr.splitlines() if "read:client_keys" in line] == [
        next(line for line in run.stderr.splitlines() if line.endswith(warning))]
    check = runner("token", "check", extra_env=keys)
    assert check.returncode == 0 and check.stderr.rstrip().endswith(f" WARNING job=- run=- {warning}")
    assert "read:client_keys" not in runner("token", "check").stderr


@SQLITE_ONLY
def test_read_logs_or_read_logs_users_is_either_one_not_both(runner, tenant):
    tenant.set_scopes(["read:clients"])
    result = runner("run-job", "export-logs")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "runner: export-logs failed (run 1): the token lacks the scope read:logs or read:logs_users for GET /api/v2/logs; "
        "grant one of them to application sandboxM2MClient0000000000000001 (Dashboard > Applications > APIs > "
        "Auth0 Management API > Machine To Machine Applications), then run again")
    tenant.set_scopes(["read:logs_users"])  # the token without it was dropped: the next run has the new scope
    result = runner("run-job", "export-logs")
    assert result.returncode == 0, result.stderr


def test_a_process_hashes_each_secret_fingerprint_once_however_many_tenants(monkeypatch):
    """serve of 100 tenants checked each row again at every run (16 remembered): 12-24 ms of CPU a run."""
    from batchrunner.auth0 import fingerprint

    hashed = []
    real = fingerprint._derive
    monkeypatch.setattr(fingerprint, "_derive", lambda *args: hashed.append(args[0]) or real(*args))
    secrets = [f"secret-of-tenant-{i:03d}" for i in range(100)]
    stored = [fingerprint.fingerprint(secret) for secret in secrets]
    assert len(hashed) == 100
    for _ in range(2):  # the row this process wrote, read back at each run: no second hash
        assert all(fingerprint.matches(secret, row) for secret, row in zip(secrets, stored))
    assert len(hashed) == 100

    written_elsewhere = [fingerprint.fingerprint(secret) for secret in secrets]  # as another host would
    fingerprint._known.clear()
    hashed.clear()
    for _ in range(2):
        assert all(fingerprint.matches(secret, row) for secret, row in zip(secrets, written_elsewhere))
        assert not fingerprint.matches(secrets[0], written_elsewhere[1])
    assert len(hashed) == 101  # each row once, and the mismatch once

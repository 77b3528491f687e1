"""The log archive through the stand-in tenant (README, "The log archive: `export-logs`"): every event the tenant held at a
run's time in exactly one file, whatever is killed when."""

from __future__ import annotations

import gzip
import json
import random
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import make_url

from conftest import SQLITE_ONLY, run_skewed, start_runner, wait_for

HOOK = str(Path(__file__).parent / "fixture_hooks" / "kill_during_publish.py")
PAUSE = str(Path(__file__).parent / "fixture_hooks" / "pause_between_files.py")


@pytest.fixture
def logs_tenant(tenant):
    tenant.set_scopes(["read:logs"])
    return tenant


def archived(tmp_path) -> list[dict]:
    """Every archived event in the order of the files' names (log_id order)."""
    events = []
    for file in sorted((tmp_path / "exports" / "logs").rglob("*.jsonl.gz"), key=lambda p: p.name):
        events += [json.loads(line) for line in gzip.decompress(file.read_bytes()).decode().splitlines()]
    return events


def exactly_once(tmp_path, tenant, held: list[str]) -> None:
    events = archived(tmp_path)
    assert [e["log_id"] for e in events] == held  # each once, in order, none missing
    assert events[len(events) // 2] == tenant.logs.get(held[len(held) // 2])  # as the API returned it


def test_runs_with_events_between_them_archive_each_event_once(runner, logs_tenant, tmp_path):
    logs = logs_tenant.logs
    extra = {"RUNNER_LOGS_FILE_EVENTS": "70"}
    first = runner("run-job", "export-logs", "--json", extra_env=extra)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)["result"]
    assert result["events"] == 200 and result["files"] == 3 and result["checkpoint"] == logs.held()[-1]
    logs.add(150)
    logs.max_take = 30  # a tenant that caps take lower: short batches are not the end
    assert runner("run-job", "export-logs", extra_env=extra).returncode == 0
    quiet = runner("run-job", "export-logs", "--json", extra_env=extra)
    assert json.loads(quiet.stdout)["result"]["events"] == 0
    files = sorted(p.name for p in (tmp_path / "exports" / "logs").rglob("*"))
    assert len([f for f in files if f.endswith(".jsonl.gz")]) == 6  # the quiet run wrote no empty file
    exactly_once(tmp_path, logs_tenant, logs.held())
    newest = json.loads(quiet.stdout)["result"]["newest_event_at"]
    assert newest == logs.get(logs.held()[-1])["date"]
    asked = [r for r in logs_tenant.tenant.received if r["path"] == "/api/v2/logs"]
    assert asked[0]["query"] == {"take": "100"} and all(set(r["query"]) <= {"from", "take"} for r in asked)


@SQLITE_ONLY
def test_an_archive_file_holds_its_events_as_write_jsonl_gz_writes_them(runner, logs_tenant, tmp_path):
    # One gzip JSON Lines writer for a job's author and the archive: the same events, the same bytes.
    from batchrunner.jobkit import write_jsonl_gz

    assert runner("run-job", "export-logs", extra_env={"RUNNER_LOGS_FILE_EVENTS": "70"}).returncode == 0
    files = sorted((tmp_path / "exports" / "logs").rglob("*.jsonl.gz"), key=lambda p: p.name)
    assert len(files) == 3
    for file in files:
        events = [json.loads(line) for line in gzip.decompress(file.read_bytes()).decode().splitlines()]
        assert write_jsonl_gz(tmp_path / "again.jsonl.gz", events) == len(events)
        assert (tmp_path / "again.jsonl.gz").read_bytes() == file.read_bytes()


# The steps on SQLite: test_toolkit cuts a publish at each step on both databases, and the kills at
# random moments below run on both.
@SQLITE_ONLY
@pytest.mark.parametrize("step", ["intent", "rename", "commit"])
@pytest.mark.parametrize("after", [1, 2])
def test_a_sigkill_at_any_step_of_a_publish_loses_and_doubles_nothing(runner, logs_tenant, tmp_path, step, after):
    hooked = {"RUNNER_JOBS": HOOK, "RUNNER_LOGS_FILE_EVENTS": "60", "KILL_AT": step, "KILL_AFTER": str(after)}
    killed = runner("run-job", "export-logs", extra_env=hooked)
    assert killed.returncode == -signal.SIGKILL
    logs_tenant.logs.add(25)
    clean = runner("run-job", "export-logs", "--json", extra_env={"RUNNER_LOGS_FILE_EVENTS": "60"})
    assert clean.returncode == 0, clean.stderr
    exactly_once(tmp_path, logs_tenant, logs_tenant.logs.held())
    assert [p.name for p in (tmp_path / "exports" / "logs").rglob(".*")] == [".archive.json"]


def test_sigkill_at_random_moments_then_a_clean_run_keeps_every_event_once(env, runner, logs_tenant, tmp_path):
    logs = logs_tenant.logs
    logs.add(600)
    logs_tenant.tenant.latency = 0.02
    chance = random.Random(7)
    env = {**env, "RUNNER_LOGS_FILE_EVENTS": "50"}
    for _ in range(6):
        victim = start_runner(env, tmp_path, "run-job", "export-logs")
        requests_before = len(logs_tenant.tenant.received)
        wait_for(lambda: len(logs_tenant.tenant.received) >= requests_before + chance.randint(1, 6) or victim.poll() is not None)
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        logs.add(chance.randint(0, 40))
    logs_tenant.tenant.latency = 0
    clean = runner("run-job", "export-logs", extra_env={"RUNNER_LOGS_FILE_EVENTS": "50"})
    assert clean.returncode == 0, clean.stderr
    exactly_once(tmp_path, logs_tenant, logs.held())


@SQLITE_ONLY
def test_a_gap_is_archived_from_the_oldest_held_reported_and_the_next_run_succeeds(runner, logs_tenant, tmp_path):
    logs = logs_tenant.logs
    assert runner("run-job", "export-logs").returncode == 0
    checkpoint = logs.held()[-1]
    logs.add(50)
    lost = logs.held()[200:210]
    logs.drop_oldest(210)  # retention passed over the checkpoint and ten events after it
    from test_pings import Sink

    sink = Sink()
    try:
        gap = runner("run-job", "export-logs", "--json", extra_env={"RUNNER_NOTIFY_URL": sink.url})
    finally:
        sink.close()
    events = [json.loads(body)["event"] for _, body in sink.received]
    assert events == ["logs_gap", "failed"]
    assert gap.returncode == 1
    run = json.loads(gap.stdout)
    assert run["status"] == "failed" and run["result"]["gap"] == {"after": checkpoint, "resumed_at": logs.held()[0]}
    assert run["error"].startswith(f"the tenant no longer holds event {checkpoint}: events after it and before {logs.held()[0]} were lost")
    assert run["result"]["events"] == 40
    assert not set(lost) & {e["log_id"] for e in archived(tmp_path)}
    logs.add(5)
    assert runner("run-job", "export-logs").returncode == 0
    assert [e["log_id"] for e in archived(tmp_path)][-45:] == logs.held()


@SQLITE_ONLY
def test_start_now_archives_only_later_events_and_a_stale_archive_warns(runner, logs_tenant, tmp_path):
    now = {"RUNNER_LOGS_START": "now"}
    first = runner("run-job", "export-logs", "--json", extra_env=now)
    assert first.returncode == 0 and json.loads(first.stdout)["result"]["events"] == 0
    new = logs_tenant.logs.add(3)
    second = runner("run-job", "export-logs", "--json", extra_env={**now, "RUNNER_LOGS_TENANT_RETENTION_DAYS": "0.00000001"})
    assert [e["log_id"] for e in archived(tmp_path)] == new
    assert "more than half the tenant's retention" in json.loads(second.stdout)["result"]["warning"]
    bad = runner("run-job", "export-logs", extra_env={"RUNNER_LOGS_START": "yesterday"})
    assert (bad.returncode, bad.stderr) == (2, "runner: RUNNER_LOGS_START: 'yesterday' is neither oldest nor now\n")


def test_a_domain_spelled_in_capitals_follows_the_tenants_own_links(runner, logs_tenant, tmp_path):
    # The stand-in names itself in its links as the request named it: in lower case, as clients send it.
    domain = logs_tenant.base_url.replace("127.0.0.1", "LOCALHOST")
    spelled = {"AUTH0_DOMAIN": domain, "AUTH0_AUDIENCE": logs_tenant.audience}
    run = runner("run-job", "export-logs", "--json", extra_env=spelled)
    assert run.returncode == 0, run.stderr
    exactly_once(tmp_path, logs_tenant, logs_tenant.logs.held())


@pytest.mark.parametrize("given, named", [
    ("https://Acme.eu.auth0.com", "https://acme.eu.auth0.com/api/v2/logs?take=100"),
    ("https://acme.eu.auth0.com:443", "https://acme.eu.auth0.com/api/v2/logs?take=100"),
    ("https://acme.eu.auth0.com", "https://ACME.EU.AUTH0.COM:443/api/v2/logs?take=100"),
    ("http://LOCALHOST:8080", "http://localhost:8080/api/v2/logs?take=100"),
])
def test_a_tenant_is_its_scheme_host_and_port_however_spelled(given, named):
    from batchrunner.config import origin, parse_domain

    assert origin(parse_domain(given)) == origin(named)
    assert origin("https://acme.eu.auth0.com") not in {origin("http://acme.eu.auth0.com"), origin("https://acme.eu.auth0.com:8443"),
                                                       origin("https://acme.us.auth0.com")}


def stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def test_a_run_taken_over_while_paused_publishes_nothing_when_it_wakes(env, runner, logs_tenant, tmp_path):
    from batchrunner.store.database import database_time, open_database
    from batchrunner.store.schema import runs

    stale = start_runner({**env, "RUNNER_JOBS": PAUSE, "RUNNER_LOGS_FILE_EVENTS": "50"}, tmp_path, "run-job", "export-logs")
    wait_for(lambda: stopped(stale.pid))  # paused with its first 50 events published
    db = open_database(env["RUNNER_DATABASE_URL"])
    with db.write() as conn:  # a pause of over 90 s, as another host sees it
        conn.execute(update(runs).values(heartbeat_at=database_time(conn) - timedelta(seconds=120)))
    live = run_skewed({**env, "RUNNER_LOGS_FILE_EVENTS": "60"}, tmp_path, 0, "run-job", "export-logs", other_node=True)
    assert live.returncode == 0, live.stderr
    stale.send_signal(signal.SIGCONT)
    _, err = stale.communicate(timeout=30)
    assert err.splitlines()[-1] == (
        "runner: export-logs failed (run 1): run 1 of export-logs was marked abandoned while it worked (no heartbeat "
        "for 90 s: paused, or cut off from the database); it publishes nothing, the run in progress goes on")
    logs_tenant.logs.add(10)
    assert runner("run-job", "export-logs").returncode == 0
    exactly_once(tmp_path, logs_tenant, logs_tenant.logs.held())


# --- the archive's state and its files (README, "The log archive"): whatever the database lost ---

def job_state_rows(url: str) -> list[dict]:
    from batchrunner.store.database import open_database
    from batchrunner.store.schema import job_state

    with open_database(url).read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(job_state))]


def put_back(url: str, rows: list[dict]) -> None:
    from batchrunner.store.database import open_database
    from batchrunner.store.schema import job_state

    with open_database(url).write() as conn:
        conn.execute(delete(job_state))
        conn.execute(insert(job_state), rows)


@SQLITE_ONLY
@pytest.mark.parametrize("start", ["oldest", "now"])
def test_a_database_moved_aside_goes_on_from_the_archives_own_files(runner, logs_tenant, tmp_path, database_url, start):
    settings = {"RUNNER_LOGS_FILE_EVENTS": "70", "RUNNER_LOGS_START": start}
    assert runner("run-job", "export-logs", extra_env={**settings, "RUNNER_LOGS_START": "oldest"}).returncode == 0
    database = Path(make_url(database_url).database)
    for file in database.parent.glob(f"{database.name}*"):  # the README's advice for a damaged database
        file.rename(file.with_name(f"{file.name}.damaged"))
    logs_tenant.logs.add(50)
    again = runner("run-job", "export-logs", "--json", extra_env=settings)
    assert again.returncode == 0, again.stderr
    assert (f"the database holds no checkpoint, but the archive in {tmp_path / 'exports' / 'logs'} reaches "
            in again.stderr), again.stderr  # not "the checkpoint in the database was None"
    result = json.loads(again.stdout)["result"]
    assert (result["events"], result["newest_event_at"]) == (50, logs_tenant.logs.get(logs_tenant.logs.held()[-1])["date"])
    exactly_once(tmp_path, logs_tenant, logs_tenant.logs.held())


def test_a_database_restored_from_an_older_copy_archives_no_event_twice(env, runner, logs_tenant, tmp_path):
    url = env["RUNNER_DATABASE_URL"]
    assert runner("run-job", "export-logs").returncode == 0
    backup = job_state_rows(url)
    logs_tenant.logs.add(50)
    assert runner("run-job", "export-logs").returncode == 0
    put_back(url, backup)  # the checkpoint of the first run, the files of the second
    logs_tenant.logs.add(10)
    third = runner("run-job", "export-logs", "--json")
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["result"]["events"] == 10
    exactly_once(tmp_path, logs_tenant, logs_tenant.logs.held())


def test_a_host_with_its_own_export_folder_refuses_the_shared_checkpoint(runner, logs_tenant, tmp_path):
    assert runner("run-job", "export-logs").returncode == 0  # the first host
    logs_tenant.logs.add(30)
    own = tmp_path / "host-b"
    second = runner("run-job", "export-logs", extra_env={"RUNNER_EXPORT_DIR": str(own)})
    storage = json.loads((tmp_path / "exports" / "logs" / ".archive.json").read_text())["storage"]
    assert (second.returncode, second.stderr.splitlines()[-1]) == (1, (
        f"runner: export-logs failed (run 2): RUNNER_EXPORT_DIR: {own}/logs holds no log archive (no .archive.json), but "
        f"the checkpoint in the database is of the archive {storage}; point RUNNER_EXPORT_DIR at the folder that holds it, "
        "shared by every host"))
    (own / "logs").mkdir(parents=True)
    (own / "logs" / ".archive.json").write_text(json.dumps({"storage": "b0b0b0b0", "tenant": logs_tenant.base_url}))
    third = runner("run-job", "export-logs", extra_env={"RUNNER_EXPORT_DIR": str(own)})
    assert third.stderr.splitlines()[-1].startswith(
        f"runner: export-logs failed (run 3): RUNNER_EXPORT_DIR: {own}/logs holds the log archive b0b0b0b0, but the checkpoint")
    assert not list(own.rglob("*.jsonl.gz"))
    assert runner("run-job", "export-logs").returncode == 0
    exactly_once(tmp_path, logs_tenant, logs_tenant.logs.held())


def test_start_now_on_an_empty_log_archives_every_event_that_comes_next(runner, logs_tenant, tmp_path):
    logs_tenant.logs.drop_oldest(200)
    now = {"RUNNER_LOGS_START": "now"}
    first = runner("run-job", "export-logs", "--json", extra_env=now)
    assert first.returncode == 0 and json.loads(first.stdout)["result"]["events"] == 0
    new = logs_tenant.logs.add(3)
    assert runner("run-job", "export-logs", extra_env=now).returncode == 0
    assert [e["log_id"] for e in archived(tmp_path)] == new


def test_a_changed_auth0_domain_is_refused_not_mixed_into_the_archive(runner, logs_tenant, lone_tenant, tmp_path):
    assert runner("run-job", "export-logs").returncode == 0
    lone_tenant.set_scopes(["read:logs"])
    other = runner("run-job", "export-logs", extra_env=lone_tenant.settings())
    assert (other.returncode, other.stderr.splitlines()[-1]) == (1, (
        f"runner: export-logs failed (run 2): AUTH0_DOMAIN: the log archive in the database is of the tenant "
        f"{logs_tenant.base_url}, not of {lone_tenant.base_url}; set AUTH0_DOMAIN back, or give this tenant its own "
        "RUNNER_DATABASE_URL and RUNNER_EXPORT_DIR"))
    exactly_once(tmp_path, logs_tenant, logs_tenant.logs.held())


@SQLITE_ONLY
def test_a_host_with_its_own_folder_leaves_another_hosts_publish_to_it(env, runner, logs_tenant, tmp_path):
    url = env["RUNNER_DATABASE_URL"]
    assert runner("run-job", "export-logs").returncode == 0
    logs_tenant.logs.add(30)
    killed = runner("run-job", "export-logs", extra_env={"RUNNER_JOBS": HOOK, "KILL_AT": "rename"})
    assert killed.returncode == -signal.SIGKILL  # the first host's file in place, its checkpoint not yet committed
    own = runner("run-job", "export-logs", extra_env={"RUNNER_EXPORT_DIR": str(tmp_path / "host-b")})
    assert own.returncode == 1 and "holds no log archive" in own.stderr
    assert "_publishing" in {row["name"] for row in job_state_rows(url)}  # not settled against the wrong disk
    back = runner("run-job", "export-logs", "--json")
    assert back.returncode == 0 and "recorded" in back.stderr and json.loads(back.stdout)["result"]["events"] == 0
    exactly_once(tmp_path, logs_tenant, logs_tenant.logs.held())

"""Retention (README, "Operating it unattended"): `runner prune` and serve's daily prune remove old runs and dated
files, never a job's latest run or success, a `latest` file, the ledger, or (by default) the log archive."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select

from batchrunner.operating import retention as prune
from batchrunner.store.database import open_database
from batchrunner.store.schema import pruned_runs, runs, token_issuances
from conftest import SQLITE_ONLY

NOW = datetime.now(timezone.utc).replace(microsecond=0)
OLD = NOW - timedelta(days=200)


def _run(db, job, status, started):
    with db.write() as conn:
        return conn.execute(insert(runs).values(job=job, trigger="manual", status=status, started_at=started,
                                                finished_at=started, host="h", pid=1)).inserted_primary_key[0]


def _stamp(when):
    return when.strftime("%Y%m%dT%H%M%SZ")


@pytest.fixture
def history(database_url):
    """Old and new runs of two jobs; returns (db, ids that must stay, ids that must go)."""
    db = open_database(database_url)
    gone = [_run(db, "export-clients", "failed", OLD), _run(db, "export-clients", "succeeded", OLD + timedelta(hours=1)),
            _run(db, "hello", "skipped", OLD)]
    last_success = _run(db, "export-clients", "succeeded", OLD + timedelta(days=1))  # old, but its latest success
    gone.append(_run(db, "export-clients", "failed", OLD + timedelta(days=2)))
    hello_latest = _run(db, "hello", "failed", OLD)  # old, but the latest run of its job
    recent = _run(db, "export-clients", "failed", NOW - timedelta(days=3))
    with db.write() as conn:
        conn.execute(insert(token_issuances).values(issued_at=OLD, expires_at=OLD + timedelta(days=1), tenant="t",
                                                    client_id="c", audience="a", requested_by="x", host="h", pid=1))
    return db, {last_success, hello_latest, recent}, set(gone)


@pytest.fixture
def exports(tmp_path):
    folder = tmp_path / "exports"
    (folder / "snapshots").mkdir(parents=True)
    names = {
        "old": [f"clients-{_stamp(OLD)}.csv", f"users-{_stamp(OLD)}.csv"],
        "keep": ["clients-latest.csv", "users-latest.csv", f"clients-{_stamp(NOW - timedelta(days=1))}.csv",
                 f"users-{_stamp(OLD + timedelta(days=1))}.csv",  # old, but the newest of its kind
                 "notes-old.txt"],
    }
    for name in names["old"] + names["keep"]:
        (folder / name).write_text("x")
        os.utime(folder / name, (OLD.timestamp(), OLD.timestamp()))
    for when in (OLD, OLD + timedelta(days=1), NOW - timedelta(days=1)):
        (folder / "snapshots" / _stamp(when)).mkdir()
        (folder / "snapshots" / _stamp(when) / "clients.csv").write_text("x")
    (folder / "snapshots" / "latest").symlink_to(_stamp(OLD + timedelta(days=1)))  # latest points at an old one
    archive = folder / "logs" / "2025" / "01" / "02"
    archive.mkdir(parents=True)
    (archive / "0001.jsonl.gz").write_bytes(b"x")
    os.utime(archive / "0001.jsonl.gz", (OLD.timestamp(), OLD.timestamp()))
    return folder


def _ids(db):
    with db.read() as conn:
        return set(conn.execute(select(runs.c.id)).scalars())


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_prune_dry_run_then_for_real(local_runner, history, exports):
    db, keep, gone = history
    before_ids, before_files = _ids(db), _files(exports)

    dry = local_runner("prune", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    listed = json.loads(dry.stdout)
    assert listed["dry_run"] is True and listed["runs"] == len(gone)
    assert listed["runs_by_job"] == {"export-clients/failed": 2, "export-clients/succeeded": 1, "hello/skipped": 1}
    assert not keep & gone
    assert sorted(listed["files"]) == sorted(str(exports / n) for n in
                                             (f"clients-{_stamp(OLD)}.csv", f"users-{_stamp(OLD)}.csv", f"snapshots/{_stamp(OLD)}"))
    assert _ids(db) == before_ids and _files(exports) == before_files  # nothing changed

    real = local_runner("prune")
    assert real.returncode == 0, real.stderr
    assert real.stdout.startswith(f"Removed {len(gone)} run records started before ")
    assert _ids(db) == before_ids - gone
    after = _files(exports)
    assert "clients-latest.csv" in after and "users-latest.csv" in after and "notes-old.txt" in after
    assert f"snapshots/{_stamp(OLD + timedelta(days=1))}/clients.csv" in after and "snapshots/latest" in after
    assert f"snapshots/{_stamp(OLD)}" not in after and f"clients-{_stamp(OLD)}.csv" not in after
    assert "logs/2025/01/02/0001.jsonl.gz" in after  # the log archive has its own setting
    with db.read() as conn:
        counted = {(r.job, r.status): r.count for r in conn.execute(select(pruned_runs))}
        assert conn.execute(select(func.count()).select_from(token_issuances)).scalar() == 1
    assert counted == {("export-clients", "failed"): 2, ("export-clients", "succeeded"): 1, ("hello", "skipped"): 1}

    again = local_runner("prune", "--json")
    assert json.loads(again.stdout)["runs"] == 0  # the latest run and success stay, however old


@SQLITE_ONLY
def test_the_log_archive_is_pruned_only_when_asked(local_runner, exports):
    result = local_runner("prune", "--json", extra_env={"RUNNER_LOGS_RETENTION_DAYS": "30", "RUNNER_RETENTION_DAYS": "never"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"] == [str(exports / "logs/2025/01/02/0001.jsonl.gz")]
    assert (exports / "logs").is_dir() and not (exports / "logs" / "2025").exists()
    assert (exports / f"clients-{_stamp(OLD)}.csv").exists()


@SQLITE_ONLY
@pytest.mark.parametrize("value, problem", [
    ("ninety", "'ninety' is not a number of days; give one above 0 and below 100,000 (e.g. 90, or 0.5), or 'never'"),
    ("-3", "'-3' is not a number of days; give one above 0 and below 100,000 (e.g. 90, or 0.5), or 'never'"),
    ("0", "'0' would prune everything each day; give a number of days above 0 and below 100,000 (fractions too, e.g. 0.5), "
          "or 'never'; for a one-off clean-up run `runner prune --older-than 0`"),
])
def test_a_bad_retention_is_a_setting_error_saying_what_is_allowed(local_runner, value, problem):
    for command in (("prune",), ("serve",), ("run-job", "hello")):  # run-job too: cron's runs never prune
        result = local_runner(*command, extra_env={"RUNNER_RETENTION_DAYS": value})
        assert (result.returncode, result.stderr) == (2, f"runner: RUNNER_RETENTION_DAYS: {problem}\n"), command


def test_prune_older_than_0_removes_all_but_what_always_stays(local_runner, history, exports):
    db, keep, gone = history
    result = local_runner("prune", "--older-than", "0", "--json")
    assert result.returncode == 0, result.stderr
    assert _ids(db) == keep  # each job's latest run and latest success
    after = _files(exports)
    assert f"clients-{_stamp(NOW - timedelta(days=1))}.csv" in after  # the newest of its kind
    assert f"snapshots/{_stamp(NOW - timedelta(days=1))}/clients.csv" in after and "snapshots/latest" in after
    assert f"snapshots/{_stamp(OLD + timedelta(days=1))}/clients.csv" in after  # the one latest points to
    assert sorted(json.loads(result.stdout)["files"]) == sorted(
        str(exports / n) for n in (f"clients-{_stamp(OLD)}.csv", f"users-{_stamp(OLD)}.csv", f"snapshots/{_stamp(OLD)}"))


def test_one_replica_prunes_once_a_day(history, tmp_path):
    db, keep, gone = history
    replicas = [prune.DailyPrune(db, tmp_path / "exports", prune.Retention(90, None)) for _ in range(2)]
    assert [r.take(NOW) for r in replicas] == [True, True]
    assert replicas[0].take(NOW) is False  # asked again the same day: no database work at all
    done = [r.run(NOW) for r in replicas]
    assert done[0].run_count == len(gone) and done[1] is None
    tomorrow = NOW + timedelta(days=1)
    assert replicas[1].take(tomorrow) and replicas[1].run(tomorrow).run_count == 0


def test_old_tenant_checks_reports_are_pruned_but_the_newest_and_the_csv(tmp_path):
    folder = tmp_path / "exports" / "checks"
    folder.mkdir(parents=True)
    old, older_same_second, newest = f"{_stamp(OLD)}.json", f"{_stamp(OLD)}-run7.json", f"{_stamp(OLD + timedelta(days=1))}.json"
    for name in (old, older_same_second, newest, "checks-latest.csv", "notes.json"):
        (folder / name).write_text("{}")
    planned = prune.plan(None, tmp_path / "exports", NOW, prune.Retention(90, None))
    assert sorted(p.name for p in planned.files) == sorted([old, older_same_second])  # the newest stays, though old

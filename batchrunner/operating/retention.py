"""Retention (README, "Operating it unattended"): old run records, dated export files and snapshots are pruned.

What stays, whatever its age: each (job, tenant)'s latest run and latest success, every `*-latest.*` file,
the newest dated file of each kind, the snapshot `snapshots/latest` points to (and the newest),
the token issuance ledger, and the log archive unless RUNNER_LOGS_RETENTION_DAYS says otherwise.
Pruned runs are counted per tenant, job and status in `pruned_runs`, in the same transaction as the
delete, so `runner_job_runs_total` never goes down. Each named tenant's folder
(`{export_dir}/{tenant}`, README "Several tenants") is pruned as the export folder is.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping

from sqlalchemy import delete, func, select, update

from collections import Counter

from batchrunner import process
from batchrunner.cli.render import plural
from batchrunner.errors import ConfigError, one_line
from batchrunner.store.database import Database
from batchrunner.store.schema import RunStatus, maintenance, pruned_runs, runs

log = logging.getLogger("runner.prune")

DEFAULT_DAYS = 90.0
MAX_DAYS = 100_000  # some 270 years: more would overflow a date
BATCH = 500  # rows per delete: short write transactions, so runs being recorded meanwhile wait little
DATED_FILE = re.compile(r"^(?P<stem>[a-z][a-z0-9_-]*)-(?P<at>\d{8}T\d{6}Z)\.(?P<ext>[a-z0-9.]+)$")
DATED_DIR = re.compile(r"^\d{8}T\d{6}Z$")
CHECKS_REPORT = re.compile(r"^(?P<at>\d{8}T\d{6}Z)(?:-run\d+)?\.json$")  # tenant-checks' reports: checks/{run start}.json
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Retention:
    days: float | None  # runs, dated exports and snapshots; None: keep for ever
    logs_days: float | None  # the log archive; None: keep for ever (the default)


def retention(env: Mapping[str, str]) -> Retention:
    return Retention(_days(env, "RUNNER_RETENTION_DAYS", DEFAULT_DAYS), _days(env, "RUNNER_LOGS_RETENTION_DAYS", None))


def _days(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text in ("off", "never"):
        return None
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if days == 0:
        # Every day, every run but each job's latest would go: a one-off is `runner prune --older-than 0`.
        raise ConfigError(name, f"{text!r} would prune everything each day; give a number of days above 0 and below "
                          f"{MAX_DAYS:,} (fractions too, e.g. 0.5), or 'never'; for a one-off clean-up run `runner prune --older-than 0`")
    if not 0 < days < MAX_DAYS:
        raise ConfigError(name, f"{text!r} is not a number of days; give one above 0 and below {MAX_DAYS:,} "
                          "(e.g. 90, or 0.5), or 'never'")
    return days


@dataclass
class Plan:
    cutoff: datetime | None
    runs: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (job, status) -> run ids
    files: list[Path] = field(default_factory=list)  # files and snapshot directories

    @property
    def run_count(self) -> int:
        return sum(len(ids) for ids in self.runs.values())

    def as_dict(self) -> dict:
        return {
            "cutoff": self.cutoff,
            "runs": self.run_count,
            "runs_by_job": {f"{job}/{status}": len(ids) for (job, status), ids in sorted(self.runs.items())},
            "files": [str(p) for p in self.files],
        }


def plan_all(db: Database | None, export_dirs: list[Path], now: datetime, keep: Retention) -> Plan:
    """`plan` of the runs and of the files of every tenant's folder (the export folder first)."""
    found = plan(db, export_dirs[0], now, keep)
    for folder in export_dirs[1:]:
        found.files += plan(None, folder, now, keep).files
    return found


def plan(db: Database | None, export_dir: Path, now: datetime, keep: Retention) -> Plan:
    """What a prune at `now` removes; nothing is changed. No database: files only."""
    cutoff = now - timedelta(days=keep.days) if keep.days is not None else None
    found = Plan(cutoff)
    if cutoff is not None:
        found.runs = _old_runs(db, cutoff) if db is not None else {}
        found.files = (_dated_files(export_dir, cutoff) + _snapshots(export_dir / "snapshots", cutoff)
                       + _checks_reports(export_dir / "checks", cutoff))
    if keep.logs_days is not None:
        found.files += _log_files(export_dir / "logs", now - timedelta(days=keep.logs_days))
    return found


def apply(db: Database | None, found: Plan) -> Plan:
    """Remove what the plan names; what was removed (runs already gone are not counted)."""
    done = Plan(found.cutoff)
    for (job, status), ids in found.runs.items():
        for start in range(0, len(ids), BATCH):
            batch = ids[start:start + BATCH]
            with db.write() as conn:
                deleted = delete(runs).where(runs.c.id.in_(batch), runs.c.job == job, runs.c.status == status)
                tenants = Counter(conn.execute(deleted.returning(runs.c.tenant)).scalars())
                gone = sum(tenants.values())
                for tenant, count in tenants.items():
                    key = (pruned_runs.c.tenant == tenant, pruned_runs.c.job == job, pruned_runs.c.status == status)
                    db.insert_ignore(conn, pruned_runs, {"tenant": tenant, "job": job, "status": status, "count": 0})
                    conn.execute(update(pruned_runs).where(*key).values(count=pruned_runs.c.count + count))
            done.runs.setdefault((job, status), []).extend(batch[:gone])
    for path in found.files:
        try:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            done.files.append(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove %s: %s", path, exc.strerror)
    _remove_empty_dirs(found.files)
    return done


def _old_runs(db: Database, cutoff: datetime) -> dict[tuple[str, str], list[int]]:
    latest = select(func.max(runs.c.id)).group_by(runs.c.job, runs.c.tenant)
    latest_success = select(func.max(runs.c.id)).where(runs.c.status == RunStatus.SUCCEEDED.value).group_by(runs.c.job, runs.c.tenant)
    query = (
        select(runs.c.id, runs.c.job, runs.c.status)
        .where(runs.c.started_at < cutoff, runs.c.status != RunStatus.RUNNING.value,
               runs.c.id.not_in(latest), runs.c.id.not_in(latest_success))
        .order_by(runs.c.id)
    )
    found: dict[tuple[str, str], list[int]] = {}
    with db.read() as conn:
        for row in conn.execute(query):
            found.setdefault((row.job, row.status), []).append(row.id)
    return found


def _stamp(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _dated_files(export_dir: Path, cutoff: datetime) -> list[Path]:
    """`NAME-YYYYMMDDTHHMMSSZ.EXT` files (clients-..., users-...) older than the cutoff, but the newest of each NAME.EXT."""
    if not export_dir.is_dir():
        return []
    kinds: dict[tuple[str, str], list[tuple[datetime, Path]]] = {}
    for path in export_dir.iterdir():
        match = DATED_FILE.match(path.name)
        at = _stamp(match["at"]) if match else None
        if at is not None and path.is_file() and not path.is_symlink():
            kinds.setdefault((match["stem"], match["ext"]), []).append((at, path))
    old = []
    for dated in kinds.values():
        dated.sort()
        old += [path for at, path in dated[:-1] if at < cutoff]
    return sorted(old)


def _snapshots(folder: Path, cutoff: datetime) -> list[Path]:
    """Snapshot directories older than the cutoff, but the one `latest` points to and the newest."""
    if not folder.is_dir():
        return []
    pointed = (folder / "latest").resolve() if (folder / "latest").exists() else None
    dated = sorted((_stamp(p.name), p) for p in folder.iterdir()
                   if DATED_DIR.match(p.name) and p.is_dir() and not p.is_symlink() and _stamp(p.name))
    return [path for at, path in dated[:-1] if at < cutoff and path.resolve() != pointed]


def _checks_reports(folder: Path, cutoff: datetime) -> list[Path]:
    """tenant-checks' reports older than the cutoff, but the newest (checks-latest.csv is never one)."""
    if not folder.is_dir():
        return []
    dated = sorted((at, p) for p in folder.iterdir()
                   if (m := CHECKS_REPORT.match(p.name)) and (at := _stamp(m["at"])) and p.is_file() and not p.is_symlink())
    return [path for at, path in dated[:-1] if at < cutoff]


def _log_files(folder: Path, cutoff: datetime) -> list[Path]:
    """Archive files (not hidden ones being written) last changed before the cutoff."""
    if not folder.is_dir():
        return []
    limit = cutoff.timestamp()
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime < limit)


def _remove_empty_dirs(removed: list[Path]) -> None:
    # Day folders of the log archive (logs/YYYY/MM/DD) left empty go too; `logs/` itself stays.
    for parent in sorted({p.parent for p in removed}, key=lambda p: len(p.parts), reverse=True):
        while parent.name != "logs" and "logs" in parent.parts:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


# --- the daily prune of `serve` ------------------------------------------------------------------


def claim_day(db: Database, task: str, now: datetime) -> bool:
    """True for the one process (of any replica) that gets to do `task` today (UTC)."""
    row = {"task": task, "day": now.strftime("%Y-%m-%d"), "host": process.HOST, "pid": process.pid(), "started_at": now}
    with db.write() as conn:
        return db.insert_ignore(conn, maintenance, row)


def record_day(db: Database, task: str, now: datetime, result: dict) -> None:
    with db.write() as conn:
        conn.execute(update(maintenance).where(maintenance.c.task == task, maintenance.c.day == now.strftime("%Y-%m-%d"))
                     .values(finished_at=now, result=json.dumps(result, default=str)))


class DailyPrune:
    """`serve`'s prune: at most once a day across every replica sharing the database."""

    TASK = "prune"

    def __init__(self, db: Database, export_dir: Path, keep: Retention, tenant_dirs: tuple[Path, ...] = ()):
        self.db, self.export_dir, self.keep = db, export_dir, keep
        self.tenant_dirs = tenant_dirs  # the named tenants' folders, pruned as the export folder is
        self._day: str | None = None  # the day this process last looked: one claim attempt a day

    def take(self, now: datetime) -> bool:
        """True once a day in this process (then `run` it); a read of nothing, so the scheduler's tick stays cheap."""
        today = now.strftime("%Y-%m-%d")
        if self._day == today or (self.keep.days is None and self.keep.logs_days is None):
            return False
        self._day = today
        return True

    def run(self, now: datetime) -> Plan | None:
        """Claim today's prune and do it; None when another process has it or it failed (logged)."""
        try:
            if not claim_day(self.db, self.TASK, now):
                return None
            done = apply(self.db, plan_all(self.db, [self.export_dir, *self.tenant_dirs], now, self.keep))
            record_day(self.db, self.TASK, now, {"runs": done.run_count, "files": len(done.files)})
        except Exception as exc:  # tomorrow's prune will do it; the scheduler goes on
            log.error("the daily prune failed: %s", one_line(exc))
            return None
        log.info("pruned %s and %s older than the retention", plural(done.run_count, "run"), plural(len(done.files), "file"))
        return done

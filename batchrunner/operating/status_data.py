"""What the status page shows (README, "Status page"), read from the database in a few queries.

Read-only and from the database, so the page shows the runs of every replica, of cron and of
`run-job` alike. Four queries: one window over `runs` for every (job, tenant)'s last runs (narrow
columns, durations computed by the database), the last successes, the recent failures, and the
newest result of the jobs the tenants' table shows. With 10,000 runs they take tens of ms on SQLite
with the indexes store/schema.py has: an index on (job, tenant, id) measured no faster, so none is added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import case, func, select

from batchrunner.store.database import Database
from batchrunner.store.schema import RunStatus, runs

CHART_RUNS = 30  # the runs a cell's chart shows
FAILURES = 15  # the recent failures listed
LOGS_JOB, SNAPSHOT_JOB, CHECKS_JOB = "export-logs", "snapshot", "tenant-checks"
FAILED = (RunStatus.FAILED.value, RunStatus.ABANDONED.value)


class Run(NamedTuple):  # a tuple: 10,000 of them are made for one page
    id: int
    job: str
    tenant: str
    status: str
    started_at: datetime | None  # read for the latest run of a (job, tenant) only: the charts need durations
    seconds: float | None  # None while it runs


@dataclass(frozen=True)
class Failure:
    run: Run
    error: str  # its first line


@dataclass(frozen=True)
class Latest:
    """A tenant's latest run of a job with a result, and that result."""

    run_id: int
    finished_at: datetime | None
    result: dict


@dataclass
class Reading:
    recent: dict[tuple[str, str], list[Run]] = field(default_factory=dict)  # (job, tenant) -> newest first
    last_success: dict[tuple[str, str], datetime] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    results: dict[tuple[str, str], Latest] = field(default_factory=dict)  # (job, tenant) for the three jobs above


def read(db: Database) -> Reading:
    reading = Reading()
    with db.read() as conn:
        recent = reading.recent
        for run_id, job, tenant, status, started, seconds in conn.execute(_recent(db)):
            recent.setdefault((job, tenant), []).append(Run(run_id, job, tenant, status, started, seconds))
        pairs = select(runs.c.job, runs.c.tenant, func.max(runs.c.finished_at)).where(
            runs.c.status == RunStatus.SUCCEEDED.value).group_by(runs.c.job, runs.c.tenant)
        reading.last_success = {(job, tenant): at for job, tenant, at in conn.execute(pairs)}
        failed = select(runs).where(runs.c.status.in_(FAILED)).order_by(runs.c.id.desc()).limit(FAILURES)
        reading.failures = [Failure(_run(row), first_line(row.error)) for row in conn.execute(failed)]
        newest = select(func.max(runs.c.id)).where(
            runs.c.job.in_((LOGS_JOB, SNAPSHOT_JOB, CHECKS_JOB)), runs.c.status.in_((RunStatus.SUCCEEDED.value, *FAILED)),
            runs.c.result.is_not(None)).group_by(runs.c.job, runs.c.tenant)
        for row in conn.execute(select(runs.c.id, runs.c.job, runs.c.tenant, runs.c.finished_at, runs.c.result)
                                .where(runs.c.id.in_(newest))):
            reading.results[(row.job, row.tenant)] = Latest(row.id, row.finished_at, _json(row.result))
    return reading


def run_row(db: Database, run_id: int):
    """One run's row, every column; None when there is none."""
    with db.read() as conn:
        return conn.execute(select(runs).where(runs.c.id == run_id)).first()


def _recent(db: Database):
    """The last CHART_RUNS runs of each (job, tenant), newest first; skipped runs (another was in
    progress) did nothing, so they are left out as the metrics leave them out."""
    rank = func.row_number().over(partition_by=(runs.c.job, runs.c.tenant), order_by=runs.c.id.desc()).label("rank")
    ranked = (select(runs.c.id, runs.c.job, runs.c.tenant, runs.c.status, runs.c.started_at, runs.c.finished_at, rank)
              .where(runs.c.status != RunStatus.SKIPPED.value).subquery())
    started = case((ranked.c.rank == 1, ranked.c.started_at)).label("started_at")
    seconds = db.seconds_between(ranked.c.started_at, ranked.c.finished_at).label("seconds")
    return (select(ranked.c.id, ranked.c.job, ranked.c.tenant, ranked.c.status, started, seconds)
            .where(ranked.c.rank <= CHART_RUNS).order_by(ranked.c.job, ranked.c.tenant, ranked.c.id.desc()))


def _run(row) -> Run:
    seconds = None if row.finished_at is None else max(0.0, (row.finished_at - row.started_at).total_seconds())
    return Run(row.id, row.job, row.tenant, row.status, row.started_at, seconds)


def first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

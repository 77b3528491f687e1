"""`runner check` (README, "Operating it unattended"): are the scheduled jobs healthy? For probes and Nagios-style checks.

A scheduled job is a problem when its latest finished run did not succeed, or when it is
overdue: one of its fire times passed more than `grace` ago and no run of it has succeeded since
(a manual success counts). A job that has never run is not judged: it has no history yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from batchrunner.cli.render import iso
from batchrunner.operating.metrics import Scheduled
from batchrunner.runs import schedules
from batchrunner.store.database import Database
from batchrunner.store.schema import FINISHED, RunStatus, runs

DEFAULT_GRACE_SECONDS = 3600  # a nightly export takes minutes; an hour late is worth a page


@dataclass(frozen=True)
class Problem:
    job: str
    kind: str  # "failed" (the latest run did not succeed) or "overdue"
    message: str


def problems(db: Database, jobs: list[Scheduled], now: datetime, grace: timedelta) -> list[Problem]:
    found = []
    for job in jobs:
        if job.trigger is None:
            continue  # schedule off: nothing is expected of it
        latest, success = _latest(db, job.name)
        if latest is not None and latest.status != RunStatus.SUCCEEDED.value:
            error = f": {latest.error}" if latest.error else ""
            found.append(Problem(job.name, "failed", f"{job.name}: the latest run ({latest.id}, started {iso(latest.started_at)}) {latest.status}{error}"))
        if success is not None:
            missed = schedules.previous_fire(job.trigger, now - grace, success.started_at)
            if missed is not None:
                found.append(Problem(job.name, "overdue", (
                    f"{job.name}: overdue: no success since its run due {iso(missed)} (grace {grace.total_seconds():g} s); "
                    f"last success {iso(success.finished_at)}")))
    return found


def _latest(db: Database, job: str):
    """The job's newest finished run and its newest success (None where there is none)."""
    with db.read() as conn:
        latest = conn.execute(select(runs).where(runs.c.job == job, runs.c.status.in_(FINISHED))
                              .order_by(runs.c.id.desc()).limit(1)).first()
        success = conn.execute(select(runs).where(runs.c.job == job, runs.c.status == RunStatus.SUCCEEDED.value)
                               .order_by(runs.c.id.desc()).limit(1)).first()
    return latest, success

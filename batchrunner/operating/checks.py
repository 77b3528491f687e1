"""`runner check` (README, "Operating it unattended"): are the scheduled jobs healthy? For probes and Nagios-style checks.

A scheduled job is a problem when its latest finished run did not succeed, or when it is
overdue: one of its fire times passed more than `grace` ago and no run of it has succeeded since
(a manual success counts). A job that has never run is not judged: it has no history yet.
With several tenants (README, "Several tenants") each (job, tenant) is judged on its own runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from batchrunner.cli.render import iso
from batchrunner.operating.metrics import Scheduled
from batchrunner.runs import schedules
from batchrunner.store.database import Database
from batchrunner.store.schema import DEFAULT_TENANT, FINISHED, RunStatus, runs

DEFAULT_GRACE_SECONDS = 3600  # a nightly export takes minutes; an hour late is worth a page


@dataclass(frozen=True)
class Problem:
    job: str
    kind: str  # "failed" (the latest run did not succeed) or "overdue"
    message: str
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True)
class Watched:
    """A (job, tenant) with its schedule in force: what `runner check` judges."""

    name: str
    trigger: object | None  # CronTrigger; None: the schedule is off
    tenant: str = DEFAULT_TENANT


def watched(settings, jobs: dict, tenants) -> list[Watched]:
    """Every (job, tenant) that runs, with the schedule in force for that tenant (schedules.for_tenant)."""
    found = []
    for tenant in tenants:
        for job in jobs.values():
            if tenant.runs(job.name):
                expression, label = schedules.for_tenant(job.name, job.schedule, settings.env, tenant)
                found.append(Watched(job.name, schedules.trigger(expression, settings.timezone, label), tenant.name))
    return found


def problems(db: Database, jobs: list[Scheduled | Watched], now: datetime, grace: timedelta) -> list[Problem]:
    found = []
    for job in jobs:
        if job.trigger is None:
            continue  # schedule off: nothing is expected of it
        tenant = getattr(job, "tenant", DEFAULT_TENANT)
        label = job.name if tenant == DEFAULT_TENANT else f"{job.name} for {tenant}"
        latest, success = _latest(db, job.name, tenant)
        if latest is not None and latest.status != RunStatus.SUCCEEDED.value:
            error = f": {latest.error}" if latest.error else ""
            found.append(Problem(job.name, "failed", f"{label}: the latest run ({latest.id}, started {iso(latest.started_at)}) {latest.status}{error}", tenant))
        if success is not None:
            missed = schedules.previous_fire(job.trigger, now - grace, success.started_at)
            if missed is not None:
                found.append(Problem(job.name, "overdue", (
                    f"{label}: overdue: no success since its run due {iso(missed)} (grace {grace.total_seconds():g} s); "
                    f"last success {iso(success.finished_at)}"), tenant))
    return found


def _latest(db: Database, job: str, tenant: str = DEFAULT_TENANT):
    """The (job, tenant)'s newest finished run and its newest success (None where there is none)."""
    mine = (runs.c.job == job, runs.c.tenant == tenant)
    with db.read() as conn:
        latest = conn.execute(select(runs).where(*mine, runs.c.status.in_(FINISHED))
                              .order_by(runs.c.id.desc()).limit(1)).first()
        success = conn.execute(select(runs).where(*mine, runs.c.status == RunStatus.SUCCEEDED.value)
                               .order_by(runs.c.id.desc()).limit(1)).first()
    return latest, success

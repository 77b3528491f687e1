"""What `runner jobs` and `runner history` show: jobs with their schedules and last runs, recorded runs.

Both first mark runs whose process died as abandoned, as the scheduler's sweep does, so a killed
run does not show as `running` until something else sweeps. Each row names its tenant (README,
"Several tenants"): `runner jobs` has a row per (job, tenant) that runs it.
"""

from __future__ import annotations

import logging


from batchrunner import clock
from batchrunner.config import Settings
from batchrunner.runs import records as runs, schedules
from batchrunner.runs.registry import discover
from batchrunner.store.database import Database, DatabaseError
from batchrunner.tenants import Tenant, default_tenant


def job_overview(settings: Settings, db: Database | None, now=None, tenants: list[Tenant] | None = None) -> list[dict]:
    """Every registered job of every tenant given (None: `default`); `db` None when there is no database yet (no job ran)."""
    now = now or clock.utcnow()
    if db is not None:
        sweep(db, now)
    jobs = discover(settings.job_paths)
    schedules.check_overrides(settings.env, jobs)
    rows = []
    for tenant in tenants or [default_tenant(settings.env)]:
        last = runs.last_runs(db, tenant.name) if db is not None else {}
        rows += [_row(job, tenant, settings, now, last.get(job.name)) for job in jobs.values() if tenant.runs(job.name)]
    return rows


def _row(job, tenant: Tenant, settings: Settings, now, previous: dict | None) -> dict:
    expression, label = schedules.for_tenant(job.name, job.schedule, settings.env, tenant)
    trig = schedules.trigger(expression, settings.timezone, label)
    return {
        "name": job.name,
        "tenant": tenant.name,
        "schedule": expression if trig else schedules.OFF,
        "description": job.description,
        "next_run": schedules.next_fire(trig, now),
        "last_run": {"status": previous["status"], "started_at": previous["started_at"]} if previous else None,
        "timezone": settings.timezone.key,
    }


def recent_runs(db: Database, job: str | None, limit: int, now=None, tenant: str | None = None) -> list[dict]:
    sweep(db, now or clock.utcnow())
    return runs.history(db, job, limit, tenant)


def sweep(db: Database, now) -> None:
    try:
        runs.sweep_dead(db, now)
    except DatabaseError as exc:  # a reader without write access (or a locked database) shows what is recorded
        logging.getLogger("runner.overview").debug("could not mark dead runs: %s", exc)

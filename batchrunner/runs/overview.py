"""What `runner jobs` and `runner history` show: jobs with their schedules and last runs, recorded runs.

Both first mark runs whose process died as abandoned, as the scheduler's sweep does, so a killed
run does not show as `running` until something else sweeps.
"""

from __future__ import annotations

import logging


from batchrunner import clock
from batchrunner.config import Settings
from batchrunner.runs import records as runs, schedules
from batchrunner.runs.registry import discover
from batchrunner.store.database import Database, DatabaseError


def job_overview(settings: Settings, db: Database | None, now=None) -> list[dict]:
    """Every registered job; `db` None when there is no database yet (no job ran)."""
    now = now or clock.utcnow()
    if db is not None:
        sweep(db, now)
    last = runs.last_runs(db) if db is not None else {}
    jobs = discover(settings.job_paths)
    schedules.check_overrides(settings.env, jobs)
    rows = []
    for job in jobs.values():
        expression, source = schedules.effective(job.name, job.schedule, settings.env)
        trig = schedules.trigger(expression, settings.timezone, source if source != "job" else f"schedule of job {job.name}")
        previous = last.get(job.name)
        rows.append({
            "name": job.name,
            "schedule": expression if trig else schedules.OFF,
            "description": job.description,
            "next_run": schedules.next_fire(trig, now),
            "last_run": {"status": previous["status"], "started_at": previous["started_at"]} if previous else None,
            "timezone": settings.timezone.key,
        })
    return rows


def recent_runs(db: Database, job: str | None, limit: int, now=None) -> list[dict]:
    sweep(db, now or clock.utcnow())
    return runs.history(db, job, limit)


def sweep(db: Database, now) -> None:
    try:
        runs.sweep_dead(db, now)
    except DatabaseError as exc:  # a reader without write access (or a locked database) shows what is recorded
        logging.getLogger("runner.overview").debug("could not mark dead runs: %s", exc)

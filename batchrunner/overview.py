"""What `runner jobs` shows: every registered job, its schedule in force, next and last run."""

from __future__ import annotations

from . import clock, runs, schedules
from .config import Settings
from .db import Database
from .registry import discover


def job_overview(settings: Settings, db: Database, now=None) -> list[dict]:
    now = now or clock.utcnow()
    last = runs.last_runs(db)
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

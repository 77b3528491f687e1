"""`runner serve`: fire every registered job on its cron schedule, catch up on missed runs, stop cleanly.

Deciding is apart from waiting: `Scheduler.tick(now)` starts what is due and returns how long
until something is due again; `serve()` only waits on an event that SIGTERM and SIGINT set.
The schedules are APScheduler 3.11 CronTriggers (schedules.py); each fire time is claimed in the
runs table, so replicas sharing a database run it once between them (SPEC sections 7 and 9).
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from . import clock, runs, schedules
from .config import Settings
from .db import Database
from .execute import RunRequest, execute
from .models import RunStatus, Trigger
from .models import runs as runs_table
from .notify import Notifier
from .registry import Job

log = logging.getLogger("runner.serve")

SWEEP_SECONDS = 30  # how often to look for runs of dead processes (SPEC section 9)
MAX_WAIT = 60.0  # wake at least this often, so a changed clock is noticed
MAX_RERUNS = 2  # an abandoned fire time is run again at most this often (a job that kills its process)
CLAIM_ATTEMPTS = 6  # a fire time survives a database restart of about a minute


@dataclass
class Entry:
    job: Job
    trigger: object  # CronTrigger
    expression: str
    next_at: datetime | None = None


@dataclass
class Scheduler:
    settings: Settings
    db: Database
    entries: list[Entry]
    now: Callable[[], datetime] = clock.utcnow
    stopping: threading.Event = field(default_factory=threading.Event)
    pool: ThreadPoolExecutor | None = None
    _last_sweep: datetime | None = None

    def __post_init__(self):
        self.pool = self.pool or ThreadPoolExecutor(max_workers=min(32, len(self.entries) + 2), thread_name_prefix="job")

    def start(self, now: datetime) -> None:
        """Plan the next fire of every job and start catch-up runs for fire times missed while down."""
        for entry in self.entries:
            entry.next_at = schedules.next_fire(entry.trigger, now)
            missed = self._missed(entry, now)
            if missed is not None:
                log.info("%s missed its run at %s; catching up once", entry.job.name, missed.isoformat())
                self.submit(entry.job, Trigger.CATCH_UP, missed)

    def tick(self, now: datetime) -> float:
        """Start every job that is due; seconds until the next is due."""
        if self.stopping.is_set():
            return MAX_WAIT
        for entry in self.entries:
            if entry.next_at is not None and entry.next_at <= now:
                self.submit(entry.job, Trigger.SCHEDULE, entry.next_at)
                # From `now`, not from the fire time: fire times passed while suspended coalesce.
                entry.next_at = schedules.next_fire(entry.trigger, max(now, entry.next_at))
        if self._last_sweep is None or now - self._last_sweep >= timedelta(seconds=SWEEP_SECONDS):
            self._last_sweep = now
            self.sweep(now)
        upcoming = [e.next_at for e in self.entries if e.next_at is not None]
        if not upcoming:
            return MAX_WAIT
        return max(0.0, min(MAX_WAIT, (min(upcoming) - now).total_seconds()))

    def submit(self, job: Job, trigger: Trigger, scheduled_for: datetime | None) -> Future:
        return self.pool.submit(self._fire, job, trigger, scheduled_for)

    def sweep(self, now: datetime) -> None:
        """Mark runs of dead processes abandoned and run their fire times once more (SPEC section 9)."""
        try:
            with self.db.write() as conn:
                dead = runs.abandon_dead(conn, now)
            for run in dead:
                log.warning("run %s of %s was abandoned by %s (pid %s)", run["id"], run["job"], run["host"], run["pid"])
                self._rerun(run)
        except DBAPIError as exc:
            log.error("cannot reach the database (%s); trying again in %s s", _short(exc), SWEEP_SECONDS)

    def _rerun(self, run: dict) -> None:
        entry = next((e for e in self.entries if e.job.name == run["job"]), None)
        if entry is None or run["scheduled_for"] is None:
            return
        with self.db.read() as conn:
            tries = conn.execute(
                select(func.count()).where(
                    runs_table.c.job == run["job"],
                    runs_table.c.scheduled_for == run["scheduled_for"],
                    runs_table.c.status == RunStatus.ABANDONED.value,
                )
            ).scalar()
        if tries > MAX_RERUNS:
            log.error("%s at %s was abandoned %d times; not running it again", run["job"], run["scheduled_for"], tries)
            return
        self.submit(entry.job, Trigger.CATCH_UP, run["scheduled_for"])

    def _missed(self, entry: Entry, now: datetime) -> datetime | None:
        last = runs.last_started(self.db, entry.job.name)
        if last is None or entry.trigger is None:
            return None  # a job that never ran has nothing to catch up on
        return schedules.previous_fire(entry.trigger, now, last)

    def _fire(self, job: Job, trigger: Trigger, scheduled_for: datetime | None):
        request = RunRequest(job, trigger, scheduled_for, stopping=self.stopping)
        for attempt in range(CLAIM_ATTEMPTS):
            if self.stopping.is_set():
                return None
            try:
                return execute(request, self.settings, self.db, self.now)
            except DBAPIError as exc:
                wait = min(2 ** attempt, 20)
                log.error("%s: database unavailable (%s); trying again in %s s", job.name, _short(exc), wait)
                self.stopping.wait(wait)
            except Exception:
                log.exception("%s could not be started", job.name)
                return None
        log.error("%s at %s was not run: the database stayed unavailable", job.name, scheduled_for)
        return None


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def build(settings: Settings, db: Database, jobs: dict[str, Job], now=clock.utcnow) -> Scheduler:
    """A Scheduler for every job whose schedule is not off; ConfigError names a bad override."""
    entries = []
    for job in jobs.values():
        expression, source = schedules.effective(job.name, job.schedule, settings.env)
        label = source if source != "job" else f"schedule of job {job.name}"
        trig = schedules.trigger(expression, settings.timezone, label)
        if trig is not None:
            entries.append(Entry(job, trig, expression))
    return Scheduler(settings, db, entries, now)


def serve(scheduler: Scheduler, stop_timeout: float, notifier: Notifier | None = None) -> int:
    """Run until SIGTERM or SIGINT; let running jobs finish for up to `stop_timeout` seconds."""
    notifier = notifier or Notifier()
    wake = threading.Event()

    def on_signal(signum, frame):
        log.info("received %s; starting no new runs", signal.Signals(signum).name)
        scheduler.stopping.set()
        wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler.start(scheduler.now())
    names = ", ".join(f"{e.job.name} ({e.expression})" for e in scheduler.entries) or "none"
    log.info("scheduling %s in %s", names, scheduler.settings.timezone.key)
    notifier.ready(f"scheduling {len(scheduler.entries)} jobs")
    _loop(scheduler, wake, notifier)
    notifier.stopping("stopping: waiting for running jobs")
    return _drain(scheduler, stop_timeout)


def _loop(scheduler: Scheduler, wake: threading.Event, notifier: Notifier) -> None:
    watchdog = notifier.watchdog_seconds
    while not scheduler.stopping.is_set():
        try:
            wait = scheduler.tick(scheduler.now())
        except Exception:
            log.exception("scheduler tick failed; going on")
            wait = 5.0
        if watchdog:
            notifier.watchdog()
            wait = min(wait, watchdog / 2)
        wake.wait(wait)
        wake.clear()


def _drain(scheduler: Scheduler, stop_timeout: float) -> int:
    pool = scheduler.pool
    pool.shutdown(wait=False, cancel_futures=True)
    done = threading.Event()
    threading.Thread(target=lambda: (pool.shutdown(wait=True), done.set()), daemon=True).start()
    if done.wait(stop_timeout):
        log.info("stopped cleanly")
        return 0
    _record_interrupted(scheduler, stop_timeout)
    return 0


def _record_interrupted(scheduler: Scheduler, stop_timeout: float) -> None:
    """Runs still going after the grace time are recorded failed, with the reason; then we exit."""
    now = scheduler.now()
    with scheduler.db.write() as conn:
        from sqlalchemy import update

        from . import process

        result = conn.execute(
            update(runs_table)
            .where(runs_table.c.status == RunStatus.RUNNING.value, runs_table.c.host == process.HOST, runs_table.c.pid == process.pid())
            .values(
                status=RunStatus.FAILED.value,
                finished_at=now,
                error=f"interrupted: the scheduler was stopped and the run did not finish within {stop_timeout:g} s",
            )
        )
    log.warning("stopped; %d run(s) did not finish in time and are recorded as failed", result.rowcount)

"""`runner serve`: fire every registered job on its cron schedule, catch up on missed runs, stop cleanly.

Deciding is apart from waiting: `Scheduler.tick(now)` starts what is due and returns how long
until something is due again; `serve()` only waits on an event that SIGTERM and SIGINT set.
The schedules are APScheduler 3.11 CronTriggers (schedules.py); each fire time is claimed in the
runs table, so replicas sharing a database run it once between them (README, "The scheduler: `runner serve`" and "Running on several hosts").
With several tenants (README, "Several tenants") there is one entry, one schedule and one claim per (job, tenant).

At most RUNNER_MAX_RUNS runs are in progress per process: a fire that finds every slot taken waits in
the pool's queue, and claims its fire time only once a slot is free, so replicas share a night's
waves through their claims (README, "How many run at once"). Only APScheduler's triggers are used,
not its scheduler: no misfire_grace_time can drop a waiting fire.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from batchrunner import clock, logs
from batchrunner.config import Settings
from batchrunner.errors import ConfigError, RunnerError
from batchrunner.operating import health, retention as prune
from batchrunner.operating.sdnotify import Notifier
from batchrunner.outputs import atomic as files
from batchrunner.runs import job_variables, params, records as runs, schedules, timeouts
from batchrunner.runs.execute import RunRequest, execute
from batchrunner.runs.registry import Job
from batchrunner.store.database import Database, DatabaseError
from batchrunner.store.schema import DEFAULT_TENANT, Trigger
from batchrunner.tenants import VARIABLE as TENANTS_FILE, Tenant, load_tenants

log = logging.getLogger("runner.serve")

SWEEP_SECONDS = 10  # how often to look for runs of dead processes (README, "Running on several hosts"); a read unless one is found
MAX_WAIT = 60.0  # wake at least this often, so a changed clock is noticed
LATE_SECONDS = 5.0  # a fire this late is worth a warning
MAX_RERUNS = 2  # an abandoned fire time is run again at most this often (a job that kills its process)
CLAIM_ATTEMPTS = 6  # a fire time survives a database restart of about a minute
MAX_RUNS = "RUNNER_MAX_RUNS"
DEFAULT_MAX_RUNS = 4  # runs in progress at once per `serve` (README, "How many run at once")
WAITED_SECONDS = 1.0  # a fire that waited this long for a slot says so when it starts


def max_runs(env) -> int:
    """RUNNER_MAX_RUNS: a whole number of 1 or more; ConfigError (exit 2) names it otherwise."""
    text = env.get(MAX_RUNS, "").strip()
    if not text:
        return DEFAULT_MAX_RUNS
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(MAX_RUNS, f"{text!r} is not a number of runs; give how many runs one `runner serve` "
                          f"has in progress at once, a whole number of 1 or more (default {DEFAULT_MAX_RUNS})")
    return count


@dataclass
class Entry:
    job: Job
    trigger: object  # CronTrigger
    expression: str
    next_at: datetime | None = None
    tenant: Tenant | None = None  # None: the tenant default

    @property
    def key(self) -> tuple[str, str]:
        return self.job.name, self.tenant.name if self.tenant else DEFAULT_TENANT

    @property
    def label(self) -> str:
        return self.job.name if self.tenant is None or self.tenant.is_default else f"{self.job.name} for {self.tenant.name}"


@dataclass
class Scheduler:
    settings: Settings
    db: Database
    entries: list[Entry]
    now: Callable[[], datetime] = clock.utcnow
    stopping: threading.Event = field(default_factory=threading.Event)
    pool: ThreadPoolExecutor | None = None
    _last_sweep: datetime | None = None
    _orphans_seen: set = field(default_factory=set)  # (job, tenant, fire time) already re-run or given up on here
    daily: prune.DailyPrune | None = None  # retention, once a day by one replica (README, "Operating it unattended")
    last_tick: float | None = None  # monotonic time of the last tick that worked, for /healthz
    max_runs: int = DEFAULT_MAX_RUNS
    _waiting: set = field(default_factory=set)  # (job, tenant) with a fire queued for a slot
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        # One thread per slot: a fire queued behind them claims its fire time only once it runs.
        self.pool = self.pool or ThreadPoolExecutor(max_workers=self.max_runs, thread_name_prefix="job")
        self.chores = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prune")  # takes no run's slot

    def start(self, now: datetime) -> None:
        """Plan the next fire of every job; run once what was abandoned or missed while down."""
        self._last_sweep = now
        rerun = self.sweep(now)
        for entry in self.entries:
            entry.next_at = schedules.next_fire(entry.trigger, now)
            missed = self._missed(entry, now) if entry.key not in rerun else None
            if missed is not None:
                log.info("missed its run at %s; catching up once", missed.isoformat(), extra=logs.about(entry.job.name))
                self.submit(entry.job, Trigger.CATCH_UP, missed, entry.tenant)

    def tick(self, now: datetime) -> float:
        """Start every job that is due; seconds until the next is due."""
        if self.stopping.is_set():
            return MAX_WAIT
        for entry in self.entries:
            if entry.next_at is not None and entry.next_at <= now:
                late = (now - entry.next_at).total_seconds()
                if late > LATE_SECONDS:  # suspended, or starved: say so, since fire times coalesce
                    log.warning("firing %.0f s late (due %s); fire times passed meanwhile run as this one",
                                late, entry.next_at.isoformat(), extra=logs.about(entry.job.name))
                self.submit(entry.job, Trigger.SCHEDULE, entry.next_at, entry.tenant)
                # From `now`, not from the fire time: fire times passed while suspended coalesce.
                entry.next_at = schedules.next_fire(entry.trigger, max(now, entry.next_at))
        if self._last_sweep is None or now - self._last_sweep >= timedelta(seconds=SWEEP_SECONDS):
            self._last_sweep = now
            self.sweep(now)
        if self.daily is not None and self.daily.take(now):
            self.chores.submit(self.daily.run, now)
        self.last_tick = clock.monotonic()
        upcoming = [e.next_at for e in self.entries if e.next_at is not None]
        upcoming.append(self._last_sweep + timedelta(seconds=SWEEP_SECONDS))
        return max(0.0, min(MAX_WAIT, (min(upcoming) - now).total_seconds()))

    def submit(self, job: Job, trigger: Trigger, scheduled_for: datetime | None, tenant: Tenant | None = None) -> Future | None:
        """Queue a fire for a free slot; one already waiting for this (job, tenant) stands for it too."""
        key = (job.name, tenant.name if tenant else DEFAULT_TENANT)
        with self._lock:
            if key in self._waiting:  # as with a late tick, fire times passed while waiting run as one
                log.warning("the fire for %s runs as the one still waiting for a free slot (%s=%d)",
                            scheduled_for.isoformat() if scheduled_for else "now", MAX_RUNS, self.max_runs, extra=logs.about(job.name))
                return None
            self._waiting.add(key)
        return self.pool.submit(self._in_slot, key, clock.monotonic(), job, trigger, scheduled_for, tenant)

    def _in_slot(self, key, queued: float, job: Job, trigger: Trigger, scheduled_for: datetime | None, tenant: Tenant | None):
        with self._lock:
            self._waiting.discard(key)
        waited = clock.monotonic() - queued
        if waited >= WAITED_SECONDS and not self.stopping.is_set():
            log.info("waited %.0f s for a free slot (%s=%d)", waited, MAX_RUNS, self.max_runs, extra=logs.about(job.name))
        return self._fire(job, trigger, scheduled_for, tenant)

    def sweep(self, now: datetime) -> set[tuple[str, str]]:
        """Mark runs of dead processes abandoned and run their fire times once more (README, "Running on several hosts").

        Any replica may find an orphaned fire time; the claim in the runs table lets one run it.
        Returns the (job, tenant) names submitted again.
        """
        try:
            for run in runs.sweep_dead(self.db, now):
                log.warning("run %s was abandoned by %s (pid %s)", run["id"], run["host"], run["pid"], extra=logs.about(run["job"]))
            orphans = runs.orphans(self.db)
        except DatabaseError as exc:
            log.error("%s; sweeping again in %s s", exc, SWEEP_SECONDS)
            return set()
        entries = {e.key: e for e in self.entries}
        submitted = set()
        for orphan in orphans:
            key = (orphan.job, orphan.tenant)
            if key not in entries or (*key, orphan.scheduled_for) in self._orphans_seen:
                continue
            self._orphans_seen.add((*key, orphan.scheduled_for))
            entry = entries[key]
            if not schedules.fires_at(entry.trigger, orphan.scheduled_for):
                # The schedule changed since (README, "Missed runs"): judged by the schedule in force,
                # that fire time never was; the new schedule's missed fire, if any, is caught up instead.
                log.info("the run for %s was abandoned; not running it again: the schedule in force (%s) has no such fire time",
                         orphan.scheduled_for.isoformat(), entry.expression, extra=logs.about(orphan.job))
                continue
            if orphan.abandoned > MAX_RERUNS:
                log.error("the run for %s was abandoned %d times; not running it again", orphan.scheduled_for.isoformat(), orphan.abandoned, extra=logs.about(orphan.job))
                continue
            log.info("the run for %s was abandoned; running it once more", orphan.scheduled_for.isoformat(), extra=logs.about(orphan.job))
            self.submit(entry.job, Trigger.CATCH_UP, orphan.scheduled_for, entry.tenant)
            submitted.add(key)
        return submitted

    def _missed(self, entry: Entry, now: datetime) -> datetime | None:
        last = runs.last_started(self.db, *entry.key)
        if last is None or entry.trigger is None:
            return None  # a job that never ran has nothing to catch up on
        return schedules.previous_fire(entry.trigger, now, last)

    def _fire(self, job: Job, trigger: Trigger, scheduled_for: datetime | None, tenant: Tenant | None = None):
        request = RunRequest(job, trigger, scheduled_for, params.for_tenant(job, self.settings.env, tenant),
                             stopping=self.stopping, tenant=tenant)
        for attempt in range(CLAIM_ATTEMPTS):
            if self.stopping.is_set():
                return None
            try:
                return execute(request, self.settings, self.db, self.now)
            except DatabaseError as exc:
                if not exc.transient:  # read-only, locked, full, damaged: trying again does not mend it
                    log.error("the run for %s was not started: %s", scheduled_for, exc, extra=logs.about(job.name))
                    return None
                wait = min(2 ** attempt, 20)
                log.error("%s; trying again in %s s", exc, wait, extra=logs.about(job.name))
                self.stopping.wait(wait)
            except RunnerError as exc:  # e.g. a run whose end the database refused: one line, no traceback
                log.error("%s", exc, extra=logs.about(job.name))
                return None
            except Exception:
                log.exception("could not be started", extra=logs.about(job.name))
                return None
        log.error("the run for %s was not started: the database stayed unavailable", scheduled_for, extra=logs.about(job.name))
        return None


def build(settings: Settings, db: Database, jobs: dict[str, Job], now=clock.utcnow, tenants: dict[str, Tenant] | None = None) -> Scheduler:
    """A Scheduler for every (job, tenant) whose schedule is not off; ConfigError names a bad override."""
    schedules.check_overrides(settings.env, jobs)
    timeouts.check(settings.env, jobs)
    tenants = tenants if tenants is not None else load_tenants(settings.env, jobs)
    entries = []
    for tenant in tenants.values():
        for job in jobs.values():
            entry = _entry(job, tenant, settings) if tenant.runs(job.name) else None
            if entry is not None:
                entries.append(entry)
    params.check_scheduled(settings.env, jobs, [(e.job, e.tenant) for e in entries if e.tenant.is_default])
    job_variables.check(settings.env, jobs)  # RUNNER_PING_URL_<JOB> too
    for entry in entries:
        if not entry.tenant.is_default:  # a required param given nowhere: no one is there at 2 a.m. to give it
            _check_params(entry)
    folders = tuple(t.export_dir(settings.export_dir) for t in tenants.values() if not t.is_default)
    daily = prune.DailyPrune(db, settings.export_dir, prune.retention(settings.env), folders)
    return Scheduler(settings, db, entries, now, daily=daily, max_runs=max_runs(settings.env))


def _entry(job: Job, tenant: Tenant, settings: Settings) -> Entry | None:
    """The (job, tenant)'s entry, on its schedule (`schedules.for_tenant`)."""
    expression, label = schedules.for_tenant(job.name, job.schedule, settings.env, tenant)
    trig = schedules.trigger(expression, settings.timezone, label)
    return Entry(job, trig, expression, tenant=tenant) if trig is not None else None


def _check_params(entry: Entry) -> None:
    from batchrunner.errors import ConfigError, UsageError

    try:
        params.for_run(entry.job, {}, {}, entry.tenant)
    except UsageError as exc:
        raise ConfigError(TENANTS_FILE, f"tenant {entry.tenant.name}: {exc}") from None


def serve(scheduler: Scheduler, stop_timeout: float, notifier: Notifier | None = None) -> int:
    """Run until SIGTERM or SIGINT; let running jobs finish for up to `stop_timeout` seconds.

    A second signal ends the wait at once (Ctrl-C twice); what is still running is recorded.
    """
    notifier = notifier or Notifier()
    wake, hurry = threading.Event(), threading.Event()

    def on_signal(signum, frame):
        name = signal.Signals(signum).name
        if scheduler.stopping.is_set():
            log.warning("received %s again; not waiting for running jobs", name)
            hurry.set()
            return
        scheduler.stopping.set()  # before logging: a second signal may arrive while this one logs
        wake.set()
        log.info("received %s; starting no new runs", name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    health.serve_for(scheduler)  # RUNNER_METRICS_ADDRESS; a bad one is exit 2 before anything runs
    scheduler.start(scheduler.now())
    names = ", ".join(f"{e.label} ({e.expression})" for e in scheduler.entries) or "none"
    log.info("scheduling %s in %s", names, scheduler.settings.timezone.key)
    notifier.ready(f"scheduling {len(scheduler.entries)} job{'' if len(scheduler.entries) == 1 else 's'}")
    _loop(scheduler, wake, notifier)
    # Ask systemd for the grace time and a little more, whatever its TimeoutStopSec= says.
    notifier.stopping("stopping: waiting for running jobs", extend_seconds=stop_timeout + 15)
    return _drain(scheduler, stop_timeout, hurry)


def _loop(scheduler: Scheduler, wake: threading.Event, notifier: Notifier) -> None:
    watchdog = notifier.watchdog_seconds
    while not scheduler.stopping.is_set():
        try:
            wait = scheduler.tick(scheduler.now())
            if watchdog:
                notifier.watchdog()  # only after a tick that worked: a broken loop gets restarted
        except Exception:
            log.exception("scheduler tick failed; going on")
            wait = 5.0
        if watchdog:
            wait = min(wait, watchdog / 2)
        wake.wait(wait)
        wake.clear()


def _drain(scheduler: Scheduler, stop_timeout: float, hurry: threading.Event) -> int:
    pool = scheduler.pool
    pool.shutdown(wait=False, cancel_futures=True)
    with scheduler._lock:
        if scheduler._waiting:  # they claimed nothing: their fire times are missed ones at the next start
            log.warning("%d fire(s) waiting for a free slot (%s=%d) were not started", len(scheduler._waiting), MAX_RUNS, scheduler.max_runs)
    finished = threading.Event()

    def wait_for_jobs():
        pool.shutdown(wait=True)
        scheduler.chores.shutdown(wait=True)  # a prune under way ends with its files, as a run does
        finished.set()
        hurry.set()

    threading.Thread(target=wait_for_jobs, daemon=True).start()
    hurry.wait(stop_timeout)
    if finished.is_set():
        log.info("stopped cleanly")
        return 0
    reason = f"interrupted: the scheduler was stopped and the run did not finish within {stop_timeout:g} s"
    try:
        count = runs.interrupt_own(scheduler.db, scheduler.now(), reason)
        if count:
            log.warning("stopped; %d run(s) did not finish in time and are recorded as failed", count)
        else:
            log.info("stopped cleanly")
    except DatabaseError as exc:
        log.error("stopped; could not record the interrupted runs (%s): they will be marked abandoned", exc)
    # The process ends with the job still writing: what it wrote is no complete file (README, "The export: `export-clients`").
    for partial in files.remove_open_partials():
        log.info("removed %s, left by the interrupted run", partial)
    return 0

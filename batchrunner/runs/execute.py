"""The run wrapper: record the run, give the job its context, record how it ended.

This is the one place that catches a job's exceptions broadly (STYLE: a job's exception never
escapes into the scheduler); what it records is one line, with secrets redacted.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from batchrunner import clock, logs
from batchrunner.auth0 import ratelimits
from batchrunner.auth0.api import POOL_SIZE, ManagementApi
from batchrunner.auth0.http import new_session
from batchrunner.auth0.tokencache import cached_source
from batchrunner.config import Settings
from batchrunner.errors import ConfigError, RunnerError, one_line
from batchrunner.operating import notifications as alerts
from batchrunner.runs import records as runs, timeouts
from batchrunner.runs.registry import Job, JobContext
from batchrunner.store.database import Database
from batchrunner.store.schema import RunStatus, Trigger
from batchrunner.tenants import Tenant, default_tenant

log = logging.getLogger("runner.run")


@dataclass
class RunRequest:
    job: Job
    trigger: Trigger = Trigger.MANUAL
    scheduled_for: datetime | None = None
    params: dict[str, str] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    tenant: Tenant | None = None  # None: the tenant `default`, of the AUTH0_* variables
    # Set, the run's API calls stop at once: when it is marked abandoned or past its time limit, and
    # in `run-job` as SIGTERM or Ctrl-C is handled, before the job unwinds (runs/signals.py).
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class Outcome:
    status: RunStatus | None  # None: another process had already claimed this scheduled time
    run_id: int | None = None
    error: str | None = None
    result: dict | None = None


def execute(request: RunRequest, settings: Settings, db: Database, now: Callable[[], datetime] = clock.utcnow) -> Outcome:
    job = request.job
    tenant = request.tenant = request.tenant or default_tenant(settings.env)
    # Settings are checked before anything is recorded: a configuration error is exit 2, not a run.
    # A tenant's secret is read now, for its own runs alone (README, "Several tenants").
    credentials = unreadable = None
    try:
        credentials = tenant.credentials() if job.needs_api else None
    except ConfigError as exc:
        if request.trigger is Trigger.MANUAL or tenant.is_default:
            raise
        # A scheduled run of a named tenant: no one reads an exit status at 2 a.m., so its run is
        # recorded failed (history, notifications, `runner check`), and the other tenants go on.
        unreadable = exc
    if job.check is not None:
        job.check(settings.env, request.params)
    timeout = _timeout(job, tenant, settings)
    alerts.check(job.name, settings.env, tenant.name)  # a bad ping or notification URL is a setting error, not a run
    if credentials:
        logs.redact_secret(credentials.client_secret)
    claim = runs.start(db, job.name, request.trigger, request.scheduled_for, request.params, now(), tenant.name)
    if isinstance(claim, runs.ClaimedElsewhere):
        return Outcome(None)
    if isinstance(claim, runs.Skipped):
        error = runs.busy_text(job.name, tenant.name, claim.blocker)
        logs.bind(job.name, claim.run_id, tenant.name)
        log.warning("%s; recorded as skipped", error)
        logs.bind("-", None)
        return Outcome(RunStatus.SKIPPED, claim.run_id, error)
    return _run(request, claim.run_id, credentials, settings, db, now, timeout, unreadable)


def _timeout(job: Job, tenant: Tenant, settings: Settings) -> float | None:
    """The tenants file's `timeout`, then RUNNER_TIMEOUT_<JOB> for `default`, else the job's own."""
    table = tenant.settings_for(job.name)
    if table.timeout is None and tenant.is_default:
        return timeouts.effective(job.name, job.timeout, settings.env)
    return table.timeout_seconds(job.timeout)


def _run(request: RunRequest, run_id: int, credentials, settings: Settings, db: Database, now, timeout=None,
         unreadable: ConfigError | None = None) -> Outcome:
    job = request.job
    outcome = Outcome(RunStatus.FAILED, run_id)
    lost = request.cancel
    hooks = None
    # Everything after runs.start is inside this try: a run recorded `running` always has its end
    # recorded, or this process would keep it running (and skip the job's every later fire) for good.
    try:
        logs.bind(job.name, run_id, request.tenant.name)
        hooks = _hooks(job.name, run_id, settings, db, request.tenant.name)  # first: the failure ping carries the run's log lines
        log.info("started (%s)%s", request.trigger.value, "" if request.tenant.is_default else f" for tenant {request.tenant.name}")
        if unreadable is not None:
            raise unreadable
        with runs.Heartbeat(db, run_id, lost=lost):
            ctx = _context(request, run_id, credentials, settings, db, now, lost)
            outcome.result = checked_result(job, timeouts.call(timeout, lost, job.func, ctx))
            outcome.status = RunStatus.SUCCEEDED
    except timeouts.TimedOut as exc:
        outcome.error = timeouts.TimedOut(timeout).message()
        if exc.__cause__ is not None:  # what the job's end raised once interrupted (a broken cleanup)
            log.warning("past its time limit, the job ended with %s: %s", type(exc.__cause__).__name__, one_line(exc.__cause__))
    except RunnerError as exc:
        outcome.error = exc.message()
        outcome.result = getattr(exc, "result", None)  # JobFailed carries one
    except Exception as exc:
        log.exception("the job raised")
        outcome.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    except BaseException as exc:  # SIGTERM / Ctrl-C while running: record it, then let it go on
        lost.set()  # first: the run's API calls stop now, not after the recording and the pings
        outcome.error = f"interrupted ({type(exc).__name__})"
        runs.finish(db, run_id, RunStatus.FAILED, now(), outcome.error)
        if hooks:
            hooks.finished(RunStatus.FAILED, outcome.error, wait=2.0)  # the process is being stopped
        raise
    finally:
        _close(locals().get("ctx"))
    outcome.error = logs.redact(outcome.error) if outcome.error else None
    runs.finish(db, run_id, outcome.status, now(), outcome.error, outcome.result)
    level = logging.INFO if outcome.status is RunStatus.SUCCEEDED else logging.ERROR
    log.log(level, "%s%s", outcome.status.value, f": {outcome.error}" if outcome.error else "")
    if hooks:
        hooks.finished(outcome.status, outcome.error)
    logs.bind("-", None)
    return outcome


def _hooks(job: str, run_id: int, settings: Settings, db: Database, tenant: str) -> alerts.RunHooks | None:
    """The run's pings and notifications (README, "Pings"), started; best-effort like their delivery:
    when their thread cannot start (the process is out of threads), the run goes on without them."""
    try:
        hooks = alerts.for_run(job, run_id, settings.env, db, settings, tenant)
        if hooks:
            hooks.started()
        return hooks
    except Exception as exc:
        log.warning("cannot send this run's pings or notifications (%s); the run goes on without them", one_line(exc))
        return None


class BadResult(RunnerError):
    """A job returned something that is not its result: a JSON object or nothing (README, "Write your own job")."""


def checked_result(job: Job, result: object) -> dict | None:
    if result is None or isinstance(result, dict):
        return result
    raise BadResult(f"job {job.name} returned a {type(result).__name__}; a job returns a dict (its result, a JSON object) or None")


class Either:
    """Set when either event is: the job's `stopping` means the scheduler stops or the run was lost."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else clock.monotonic() + timeout
        while not self.is_set():
            left = 0.1 if deadline is None else min(0.1, deadline - clock.monotonic())
            if left <= 0:
                return False
            self.events[0].wait(left)
        return True


def _context(request: RunRequest, run_id: int, credentials, settings: Settings, db: Database, now, lost) -> JobContext:
    api = None
    if credentials is not None:
        session = new_session(pool_size=POOL_SIZE, settings=settings)  # one keep-alive session per run, tokens and API alike
        tokens = cached_source(db, credentials, f"run {run_id} ({request.job.name})", run_id, session)
        api = ManagementApi(credentials.base_url, tokens, credentials.client_id, session, cancelled=lost, run_id=run_id,
                            rate_limits=request.tenant.rate_limits or settings.rate_limits)
        ratelimits.recall(db, api)
    return JobContext(
        api=api,
        settings=settings,
        export_dir=request.tenant.export_dir(settings.export_dir),  # the export folder itself for `default`
        log=logging.getLogger(f"runner.job.{request.job.name}"),
        run_id=run_id,
        trigger=request.trigger.value,
        scheduled_for=request.scheduled_for,
        params=dict(request.params),
        now=now,
        stopping=Either(request.stopping, lost),
        db=db,
        job=request.job.name,
        tenant=request.tenant,
    )


def _close(ctx: JobContext | None) -> None:
    if ctx is not None and ctx.api is not None:
        ctx.api.close()
        ratelimits.remember(ctx.db, ctx.api)

"""Notifications (README, "Operating it unattended") and the glue that gives each run its pings and notifications.

RUNNER_NOTIFY_URL receives a POST of JSON `{"text", "event", "job", "tenant", "run", "error", "changes"}`;
`text` alone makes it a Slack or Teams incoming webhook as it is. Events: `failed` (every failed
run), `recovered` (the first success after a failed or abandoned run), and `drift`, `logs_gap` and `findings`,
which jobs send with `notify(ctx, ...)`. A named tenant's `text` says "JOB for TENANT" (a job's own
events: "TENANT: " before its text); `default`'s reads as before tenants (README, "Notifications"). Best-effort and bounded like pings (webhooks.py); what is
sent is the run's recorded, redacted error and never a secret.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Mapping

from sqlalchemy import select

from batchrunner import logs, process
from batchrunner.operating import pings, webhooks
from batchrunner.store.database import Database
from batchrunner.store.schema import DEFAULT_TENANT, FINISHED, RunStatus, runs

log = logging.getLogger("runner.alerts")

VARIABLE = "RUNNER_NOTIFY_URL"
EVENTS = ("failed", "recovered", "drift", "logs_gap", "findings", "plan", "actions")
TEXT_LIMIT = 2000  # a chat message, not a log


def notify_url(env: Mapping[str, str]) -> str | None:
    value = env.get(VARIABLE, "").strip()
    return webhooks.checked_url(VARIABLE, value) if value else None


def check(job_name: str, env: Mapping[str, str], tenant: str = DEFAULT_TENANT) -> None:
    """ConfigError for a bad ping or notification URL, before a run is recorded."""
    pings.url_for(job_name, env, tenant)
    notify_url(env)


def payload(event: str, job: str, run: int | None, text: str, error: str | None = None, changes=None,
            tenant: str = DEFAULT_TENANT) -> bytes:
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; one of {', '.join(EVENTS)}")
    body = {"text": logs.redact(text)[:TEXT_LIMIT], "event": event, "job": job, "tenant": tenant, "run": run,
            "error": logs.redact(error) if error else None, "changes": changes}
    return json.dumps(body, default=str).encode()


def notify(ctx, event: str, text: str, changes=None, error: str | None = None) -> None:
    """For jobs: send `event` (`drift`, `logs_gap`) about the running job, if RUNNER_NOTIFY_URL is set.

    `changes` carries what the event is about (for `drift`, the summary
    `{RESOURCE: {"added", "removed", "changed"}}`). Queued with the run's other calls, in order,
    and waited for (bounded) when the run ends; it never fails the job.
    """
    hooks = _active.get(ctx.run_id)
    if hooks is None or hooks.notify_url is None:
        return
    if hooks.tenant != DEFAULT_TENANT:  # a chat reader sees which tenant drifted (README, "Notifications")
        text = f"{hooks.tenant}: {text}"
    body = payload(event, hooks.job, ctx.run_id, text, error, changes, hooks.tenant)
    hooks.sender.post(hooks.notify_url, body, "application/json", f"{event} notification")


_active: dict[int, "RunHooks"] = {}  # run id -> its hooks, while the run is going


class RunHooks:
    """What one run sends: pings at start and end, a notification when it failed or recovered."""

    def __init__(self, job: str, run_id: int, env: Mapping[str, str], db: Database, settings=None, tenant: str = DEFAULT_TENANT):
        self.job, self.run_id, self.db, self.tenant = job, run_id, db, tenant
        self.notify_url = notify_url(env)
        ping_url = pings.url_for(job, env, tenant)
        self.sender = webhooks.Sender(f"run-{run_id}", settings)  # through RUNNER_HTTPS_PROXY, as Auth0 is
        self.pinger = pings.Pinger(ping_url, str(uuid.uuid4()), run_id, self.sender) if ping_url else None
        _active[run_id] = self

    def started(self) -> None:
        if self.pinger:
            self.pinger.start()

    def finished(self, status: RunStatus, error: str | None, wait: float = webhooks.WAIT_SECONDS) -> None:
        """After the run's end is recorded: nothing here can change it, or raise."""
        _active.pop(self.run_id, None)
        succeeded = status is RunStatus.SUCCEEDED
        try:
            if self.pinger:
                self.pinger.finish(succeeded, error)
            if self.notify_url:
                event = "failed" if not succeeded else ("recovered" if self._after_a_failure() else None)
                if event:
                    self.sender.post(self.notify_url, self._message(event, error), "application/json", f"{event} notification")
        except Exception as exc:
            log.warning("could not send the run's pings or notifications: %s", type(exc).__name__)
        self.sender.close(wait)

    def _after_a_failure(self) -> bool:
        with self.db.read() as conn:
            tenant = select(runs.c.tenant).where(runs.c.id == self.run_id).scalar_subquery()  # its tenant's runs alone
            before = conn.execute(select(runs.c.status).where(runs.c.job == self.job, runs.c.tenant == tenant, runs.c.id < self.run_id,
                                                               runs.c.status.in_(FINISHED))
                                  .order_by(runs.c.id.desc()).limit(1)).scalar()
        return before is not None and before != RunStatus.SUCCEEDED.value

    def _message(self, event: str, error: str | None) -> bytes:
        where = f"run {self.run_id} on {process.HOST}"
        what = self.job if self.tenant == DEFAULT_TENANT else f"{self.job} for {self.tenant}"
        text = (f"{what} failed ({where}): {error}" if event == "failed"
                else f"{what} recovered: {where} succeeded after a failure")
        return payload(event, self.job, self.run_id, text, error if event == "failed" else None, tenant=self.tenant)


def for_run(job: str, run_id: int, env: Mapping[str, str], db: Database, settings=None,
            tenant: str = DEFAULT_TENANT) -> RunHooks | None:
    """The run's hooks, or None when neither pings nor notifications are configured (nothing to pay for)."""
    if not (notify_url(env) or pings.url_for(job, env, tenant)):
        return None
    return RunHooks(job, run_id, env, db, settings, tenant)

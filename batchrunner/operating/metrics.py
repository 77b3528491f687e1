"""Prometheus metrics (README, "Operating it unattended"), computed from the database at every scrape.

Runs started by cron, a Kubernetes CronJob or another replica are in the database, so they count
here too; every replica reports the same values (alert with `max by (job_name, tenant)`). The label is
`job_name`, never `job`, which Prometheus keeps for the scrape target. Every series about a job's
runs carries `tenant` too (README, "Several tenants"): a family about a (job, tenant) takes
TENANT_LABELS and keys its readings by `Key` (job, tenant). prometheus_client is imported only when
metrics are asked for, off every other command's start-up.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from sqlalchemy import func, select

from batchrunner import clock
from batchrunner.errors import one_line
from batchrunner.runs import schedules
from batchrunner.store.database import Database
from batchrunner.store.schema import DEFAULT_TENANT, FINISHED, RunStatus, pruned_runs, runs, token_cache, token_issuances, user_actions

log = logging.getLogger("runner.metrics")

LOGS_JOB, SNAPSHOT_JOB = "export-logs", "snapshot"  # jobs whose results feed two metrics (README, "The log archive: `export-logs`" and "The access snapshot: `snapshot`")
CHECKS_JOB = "tenant-checks"  # its result feeds the expiry and findings metrics (README, "Tenant checks: `tenant-checks`")
TENANT_LABELS = ["job_name", "tenant"]  # the labels of every family about a (job, tenant)
Key = tuple[str, str]  # (job, tenant): what the readings of those families are keyed by


@dataclass(frozen=True)
class Scheduled:
    name: str
    trigger: object | None  # CronTrigger; None: the job's schedule is off
    tenant: str = DEFAULT_TENANT


def scheduled_jobs(settings, jobs: dict, tenants=None) -> list[Scheduled]:
    """Every (job, tenant) that runs, with its schedule in force (`schedules.for_tenant`: RUNNER_SCHEDULE_<JOB>
    for `default`, the tenants file's for a named tenant); `tenants` None: those of RUNNER_TENANTS_FILE."""
    from batchrunner.tenants import load_tenants

    found = []
    for tenant in (load_tenants(settings.env) if tenants is None else tenants).values():
        for job in jobs.values():
            if tenant.runs(job.name):
                expression, source = schedules.for_tenant(job.name, job.schedule, settings.env, tenant)
                found.append(Scheduled(job.name, schedules.trigger(expression, settings.timezone, source), tenant.name))
    return found


@dataclass
class ScrapeReading:
    """What one scrape read from the database (not an access snapshot: outputs/drift.py's SnapshotFolder)."""

    counts: dict[tuple[str, str, str], int]  # (job, tenant, status) -> runs
    last_success: dict[Key, datetime]
    last_run: dict[Key, datetime]
    last_finished: dict[Key, tuple[datetime, datetime, str]]  # (job, tenant) -> (started, finished, status)
    tokens: list[tuple[str, str, datetime]]  # (audience, client_id, expires_at)
    issuances: int
    logs_newest: dict[str, datetime]  # tenant -> newest archived event
    snapshot_changes: dict[tuple[str, str, str], int]  # (tenant, resource, kind) -> count
    checks: dict[str, dict] = None  # tenant -> its newest tenant-checks result
    user_actions: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (tenant, action, state) -> rows


def read(db: Database) -> ScrapeReading:
    key = (runs.c.job, runs.c.tenant)
    with db.read() as conn:
        counts: dict[tuple[str, str, str], int] = {}
        for row in conn.execute(select(*key, runs.c.status, func.count()).group_by(*key, runs.c.status)):
            counts[(row[0], row[1], row[2])] = row[3]
        for row in conn.execute(select(pruned_runs)):  # a counter: what retention removed still counts
            counted = (row.job, row.tenant, row.status)
            counts[counted] = counts.get(counted, 0) + row.count
        last_success = {(r[0], r[1]): r[2] for r in conn.execute(
            select(*key, func.max(runs.c.finished_at)).where(runs.c.status == RunStatus.SUCCEEDED.value).group_by(*key))}
        last_run = {(r[0], r[1]): r[2] for r in conn.execute(
            select(*key, func.max(runs.c.started_at)).where(runs.c.status != RunStatus.SKIPPED.value).group_by(*key))}
        newest = select(func.max(runs.c.id)).where(runs.c.status.in_(FINISHED)).group_by(*key)
        last_finished = {(row.job, row.tenant): (row.started_at, row.finished_at, row.status) for row in conn.execute(
            select(*key, runs.c.started_at, runs.c.finished_at, runs.c.status).where(runs.c.id.in_(newest)))}
        tokens = [tuple(row) for row in conn.execute(
            select(token_cache.c.audience, token_cache.c.client_id, token_cache.c.expires_at)
            .where(token_cache.c.access_token.is_not(None)))]
        issuances = conn.execute(select(func.count()).select_from(token_issuances)).scalar()
        logs_results, snapshot_results, checks_results = (_latest_results(conn, job) for job in (LOGS_JOB, SNAPSHOT_JOB, CHECKS_JOB))
        actions = _user_actions(conn)
    logs_newest = {tenant: when for tenant, result in logs_results.items()
                   if (when := clock.parse(result.get("newest_event_at"))) is not None}
    changes = {(tenant, *found): n for tenant, result in snapshot_results.items() for found, n in _changes(result).items()}
    return ScrapeReading(counts, last_success, last_run, last_finished, tokens, issuances, logs_newest, changes, checks_results, actions)


def _user_actions(conn) -> dict[tuple[str, str, str], int]:
    """users-cleanup's ledger rows in a final state (never pruned, so a counter); `planned` and `sent`
    rows move on, and a counter must not go down."""
    c = user_actions.c
    found = conn.execute(select(c.tenant, c.action, c.state, func.count()).where(c.state.in_(("done", "skipped", "failed")))
                         .group_by(c.tenant, c.action, c.state))
    return {(row[0], row[1], row[2]): row[3] for row in found}


def _latest_results(conn, job: str) -> dict[str, dict]:
    """Each tenant's newest succeeded run of `job`: its result, by tenant."""
    newest = select(func.max(runs.c.id)).where(runs.c.job == job, runs.c.status == RunStatus.SUCCEEDED.value).group_by(runs.c.tenant)
    return {row.tenant: _result(row.result) for row in conn.execute(select(runs.c.tenant, runs.c.result).where(runs.c.id.in_(newest)))}


def _result(text) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}



def _changes(result: dict) -> dict[tuple[str, str], int]:
    """Per (resource, kind) from the snapshot run's `changes_by_resource` (in the database, so every
    replica sees it), else its totals as resource "all"."""
    by_resource = result.get("changes_by_resource")
    if isinstance(by_resource, dict):
        return {(resource, kind): int(n) for resource, kinds in by_resource.items() if isinstance(kinds, dict)
                for kind, n in kinds.items() if isinstance(n, (int, float))}
    totals = result.get("changes")
    if isinstance(totals, dict):
        return {("all", kind): int(n) for kind, n in totals.items() if isinstance(n, (int, float))}
    return {}


class Collector:
    """A prometheus_client collector: every scrape reads the database once (`read`)."""

    def __init__(self, db: Database | None, jobs: list[Scheduled], now: Callable[[], datetime] = clock.utcnow):
        self.db, self.jobs, self.now = db, jobs, now  # db None: one that could not be opened

    def describe(self):
        return []  # families depend on the database; no describe-time read

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("runner_database_up", "1 when the runner's database answered this scrape, else 0.")
        snap = self._read()
        up.add_metric([], 0 if snap is None else 1)
        yield up
        if snap is not None:
            yield from self._families(snap)

    def _read(self) -> ScrapeReading | None:
        if self.db is None:  # it could not even be opened (`runner metrics` says why)
            return None
        try:
            return read(self.db)
        except Exception as exc:  # a scrape must answer, saying the database did not
            log.warning("metrics: cannot read the database: %s", one_line(exc))
            return None

    def _families(self, snap: ScrapeReading):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        keys = sorted({(j.name, j.tenant) for j in self.jobs} | {(job, tenant) for job, tenant, _ in snap.counts})
        gauge = lambda name, text: GaugeMetricFamily(name, text, labels=TENANT_LABELS)
        success = gauge("runner_job_last_success_timestamp_seconds", "End of the job's newest succeeded run (Unix time).")
        last = gauge("runner_job_last_run_timestamp_seconds", "Start of the job's newest run that was not skipped (Unix time).")
        duration = gauge("runner_job_last_run_duration_seconds", "How long the job's newest finished run took.")
        succeeded = gauge("runner_job_last_run_succeeded", "1 when the job's newest finished run succeeded, else 0.")
        running = gauge("runner_job_running", "Runs of the job in progress (0 or 1), on any host.")
        upcoming = gauge("runner_job_next_run_timestamp_seconds", "The job's next scheduled time (Unix time); absent when its schedule is off.")
        total = CounterMetricFamily("runner_job_runs", "Runs recorded, by how they ended; pruning never lowers it.", labels=[*TENANT_LABELS, "status"])
        triggers = {(j.name, j.tenant): j.trigger for j in self.jobs}
        now = self.now()
        for key in keys:
            labels = list(key)
            if key in snap.last_success:
                success.add_metric(labels, snap.last_success[key].timestamp())
            if key in snap.last_run:
                last.add_metric(labels, snap.last_run[key].timestamp())
            if key in snap.last_finished:
                started, finished, status = snap.last_finished[key]
                duration.add_metric(labels, max(0.0, (finished - started).total_seconds()) if finished else 0.0)
                succeeded.add_metric(labels, 1 if status == RunStatus.SUCCEEDED.value else 0)
            running.add_metric(labels, snap.counts.get((*key, RunStatus.RUNNING.value), 0))
            fire = schedules.next_fire(triggers.get(key), now)
            if fire is not None:
                upcoming.add_metric(labels, fire.timestamp())
            for status in RunStatus:  # every status from 0, so rate() and alerts see the first failure
                if status is not RunStatus.RUNNING:
                    total.add_metric([*labels, status.value], snap.counts.get((*key, status.value), 0))
        yield from (success, last, duration, succeeded, running, upcoming, total)
        yield from self._tokens_and_jobs(snap)

    def _tokens_and_jobs(self, snap: ScrapeReading):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        expiry = GaugeMetricFamily("runner_token_expiry_timestamp_seconds", "When the cached Management API token expires (Unix time).",
                                   labels=["audience", "client_id"])
        for audience, client_id, expires_at in snap.tokens:
            if expires_at is not None:
                expiry.add_metric([audience, client_id], expires_at.timestamp())
        yield expiry
        yield CounterMetricFamily("runner_token_issuances", "Tokens issued by Auth0 to the runner (the ledger).", value=snap.issuances)
        newest = GaugeMetricFamily("runner_logs_newest_event_timestamp_seconds", "Date of the newest archived tenant log event (Unix time).",
                                   labels=["tenant"])
        for tenant, when in sorted(snap.logs_newest.items()):
            newest.add_metric([tenant], when.timestamp())
        yield newest
        changes = GaugeMetricFamily("runner_snapshot_changes", "Drift found by the newest snapshot, per resource and kind.",
                                    labels=["tenant", "resource", "kind"])
        for (tenant, resource, kind), count in sorted(snap.snapshot_changes.items()):
            changes.add_metric([tenant, resource, kind], count)
        yield changes
        actions = CounterMetricFamily("runner_user_actions", "users-cleanup's actions on users, by how they ended (its ledger).",
                                      labels=["tenant", "action", "state"])
        for labels, count in sorted(snap.user_actions.items()):
            actions.add_metric(list(labels), count)
        yield actions
        yield from _checks(snap.checks or {})


def _checks(results: dict[str, dict]):
    """Expiries and findings from each tenant's newest tenant-checks run (README, "Tenant checks: `tenant-checks`")."""
    from prometheus_client.core import GaugeMetricFamily

    expiry = GaugeMetricFamily("runner_expiry_timestamp_seconds", "When a certificate, key or credential the tenant checks read expires (Unix time).",
                               labels=["tenant", "kind", "name"])
    for tenant, result in sorted(results.items()):
        for entry in result.get("expiries") or []:
            at = clock.parse(entry.get("expires_at")) if isinstance(entry, dict) else None
            if at is not None:
                expiry.add_metric([tenant, str(entry.get("kind", "")), str(entry.get("name", ""))], at.timestamp())
    yield expiry
    for name, key, text in (("runner_findings", "findings", "Findings of the newest tenant-checks run, per severity."),
                            ("runner_findings_new", "new", "Findings the newest tenant-checks run saw first, per severity.")):
        family = GaugeMetricFamily(name, text, labels=["tenant", "severity"])
        for tenant, result in sorted(results.items()):
            counts = result.get(key)
            for severity, count in sorted(counts.items()) if isinstance(counts, dict) else []:
                if isinstance(count, (int, float)):
                    family.add_metric([tenant, str(severity)], count)
        yield family


def registry(db: Database | None, jobs: list[Scheduled], now: Callable[[], datetime] = clock.utcnow):
    """A registry of our collector alone (not the process default), as the textfile collector advises."""
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(Collector(db, jobs, now))
    return reg


def exposition(db: Database | None, jobs: list[Scheduled], now: Callable[[], datetime] = clock.utcnow) -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(registry(db, jobs, now))


def write_textfile(path: str, db: Database | None, jobs: list[Scheduled]) -> None:
    """Written beside `path` and renamed into place, so node_exporter never reads half a file."""
    from prometheus_client import write_to_textfile

    write_to_textfile(path, registry(db, jobs))

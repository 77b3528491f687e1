"""Run records (README, "Jobs and runs"): one row per run, no overlap, heartbeats, abandoned runs.

The database enforces the two rules that matter across processes and hosts: one `running` row per
(job, tenant) (a partial unique index) and one row per (job, tenant, scheduled time) (a unique key).
`start()` first clears runs whose process is gone, then claims. A run's tenant is its name
(README, "Several tenants"); `default` is the AUTH0_* tenant and every run recorded before tenants.

Whether a run's process is gone is decided by one of two things, never by comparing clocks of
different hosts: on its own node, by its pid and that process's start time alone (a live
process's run is never abandoned, however late its heartbeat); from another node, by its
heartbeat, written and judged with the database's clock (db.database_time).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, insert, not_, select, update

from batchrunner import logs, process
from batchrunner.errors import RunnerError
from batchrunner.logs import redact
from batchrunner.store.database import Conflict, Database, DatabaseError, database_time, through_outages
from batchrunner.store.schema import DEFAULT_TENANT, RunStatus, Trigger, runs

HEARTBEAT_SECONDS = 15
# A running run of another node whose heartbeat is older than this, by the database's clock, is
# presumed dead (on its own node its pid decides). Several missed heartbeats, so a slow database
# is no death.
STALE_SECONDS = 90

# Runs this process has started and not yet ended. A `running` row of this very process that is not
# here ended without its end being written (the database failed then): the next sweep marks it.
_mine: set[int] = set()


class EndNotRecorded(RunnerError):
    """A run ended but the database refused to record it; a later sweep marks it abandoned."""

    def __init__(self, run_id: int, status: RunStatus, error: DatabaseError):
        super().__init__(run_id, status, error)
        self.run_id, self.status, self.error = run_id, status, error

    def message(self) -> str:
        return (f"run {self.run_id} {self.status.value}, but its end could not be recorded: {self.error}; "
                "it shows as abandoned once the database takes writes again")


@dataclass(frozen=True)
class Started:
    run_id: int


@dataclass(frozen=True)
class Skipped:
    run_id: int
    blocker: dict  # the running run that blocked this one: id, host, pid, started_at


@dataclass(frozen=True)
class ClaimedElsewhere:
    """This scheduled time is already recorded: another replica or process claimed it."""


def start(db: Database, job: str, trigger: Trigger, scheduled_for: datetime | None, params: dict, now: datetime,
          tenant: str = DEFAULT_TENANT):
    """Record a new run as running, or as skipped when another run of the (job, tenant) is in progress."""
    for _ in range(3):  # a concurrent claim on PostgreSQL surfaces as a unique-key conflict: look again
        try:
            return _start_once(db, job, tenant, trigger, scheduled_for, params, now)
        except Conflict:
            continue
    return _start_once(db, job, tenant, trigger, scheduled_for, params, now)


def _start_once(db, job, tenant, trigger, scheduled_for, params, now):
    if scheduled_for is not None:
        with db.read() as conn:  # most replicas find the fire time taken: no write lock for them
            if _claimed(conn, job, tenant, scheduled_for):
                return ClaimedElsewhere()
    with db.write() as conn:
        if scheduled_for is not None and _claimed(conn, job, tenant, scheduled_for):
            return ClaimedElsewhere()
        abandon_dead(conn, now, job)
        blocker = conn.execute(db.for_update(
            select(runs).where(runs.c.job == job, runs.c.tenant == tenant, runs.c.status == RunStatus.RUNNING.value)
        )).first()
        row = _new_row(job, trigger, scheduled_for, params, now, database_time(conn))
        row["tenant"] = tenant
        if blocker is not None:
            row.update(status=RunStatus.SKIPPED.value, finished_at=now, error=busy_text(job, tenant, blocker))
        run_id = conn.execute(insert(runs).values(**row)).inserted_primary_key[0]
        if blocker is None:
            # Before the commit: this process's own sweep (another thread) must never see it unclaimed.
            # Should the commit fail, the id names no row of this process: harmless.
            _mine.add(run_id)
    if blocker is not None:
        return Skipped(run_id, {k: blocker._mapping[k] for k in ("id", "host", "pid", "started_at")})
    return Started(run_id)


def _claimed(conn, job: str, tenant: str, scheduled_for: datetime) -> bool:
    claim = select(runs.c.id).where(
        runs.c.job == job, runs.c.tenant == tenant, runs.c.scheduled_for == scheduled_for, runs.c.status != RunStatus.ABANDONED.value
    )
    return conn.execute(claim).first() is not None


def _new_row(job, trigger, scheduled_for, params, now, db_now) -> dict:
    return {
        "job": job,
        "trigger": Trigger(trigger).value,
        "scheduled_for": scheduled_for,
        "status": RunStatus.RUNNING.value,
        "started_at": now,
        "heartbeat_at": db_now,
        "host": process.HOST,
        "node": process.NODE,
        "pid": process.pid(),
        "pid_started": process.started(),
        "params": json.dumps(params) if params else None,
    }


def busy_text(job: str, tenant: str, blocker) -> str:
    """Why a run was skipped; `blocker` the running run's row or a dict of it (id, host, pid)."""
    get = blocker.get if isinstance(blocker, dict) else lambda key: getattr(blocker, key)
    of = job if tenant == DEFAULT_TENANT else f"{job} for tenant {tenant}"
    return f"another run of {of} is in progress (run {get('id')} on {get('host')}, pid {get('pid')})"


def abandon_dead(conn, now: datetime, job: str | None = None) -> list[dict]:
    """Mark running runs of dead processes abandoned: a gone process on this node, or a stale heartbeat
    from another. `now` is what `finished_at` records; staleness is judged by the database's clock.

    Returns the runs this call marked.
    """
    marked = []
    for row in _dead(conn, now, job):
        changed = conn.execute(
            update(runs)
            .where(runs.c.id == row.id, runs.c.status == RunStatus.RUNNING.value)
            .values(
                status=RunStatus.ABANDONED.value,
                finished_at=now,
                error=f"the process running it ({row.host}, pid {row.pid}) died or stopped sending heartbeats",
            )
        ).rowcount
        if changed:
            marked.append(dict(row._mapping))
    return marked


def sweep_dead(db: Database, now: datetime) -> list[dict]:
    """`abandon_dead` for every job, taking the write lock only when there is something to mark."""
    with db.read() as conn:
        if not _dead(conn, now):
            return []
    with db.write() as conn:
        return abandon_dead(conn, now)


def _dead(conn, now: datetime, job: str | None = None) -> list:
    query = select(runs).where(runs.c.status == RunStatus.RUNNING.value)
    if job is not None:
        query = query.where(runs.c.job == job)
    rows = conn.execute(query).all()
    if not rows:
        return []
    stale = database_time(conn) - timedelta(seconds=STALE_SECONDS)
    return [row for row in rows if _is_dead(row, stale)]


def _is_dead(row, stale: datetime) -> bool:
    if row.node != process.NODE:
        return row.heartbeat_at < stale
    if row.pid == process.pid():  # this very process: alive as long as the run is still going here
        return row.id not in _mine
    return not process.is_alive(row.node, row.pid, row.pid_started)


@dataclass(frozen=True)
class Orphan:
    """A fire time whose run was abandoned and that no later run of its (job, tenant) has made good."""

    job: str
    scheduled_for: datetime
    abandoned: int  # how often this fire time was abandoned so far
    tenant: str = DEFAULT_TENANT


def orphans(db: Database) -> list[Orphan]:
    """Fire times to run once more (README, "Running on several hosts"): the job's latest run that did anything was abandoned.

    A later run (scheduled, catch-up or manual) stands in for it, so only the latest counts; skipped
    runs did nothing and do not count. Starts from the few abandoned runs (ix_runs_status).
    """
    later = runs.alias("later")
    newer_run = (
        select(later.c.id)
        .where(later.c.job == runs.c.job, later.c.tenant == runs.c.tenant, later.c.id > runs.c.id,
               later.c.status != RunStatus.SKIPPED.value)
        .exists()
    )
    with db.read() as conn:
        rows = conn.execute(
            select(runs.c.job, runs.c.tenant, runs.c.scheduled_for)
            .where(runs.c.status == RunStatus.ABANDONED.value, runs.c.scheduled_for.is_not(None), ~newer_run)
        ).all()
        found = []
        for row in rows:
            count = conn.execute(
                select(func.count()).where(
                    runs.c.job == row.job,
                    runs.c.tenant == row.tenant,
                    runs.c.scheduled_for == row.scheduled_for,
                    runs.c.status == RunStatus.ABANDONED.value,
                )
            ).scalar()
            found.append(Orphan(row.job, row.scheduled_for, count, row.tenant))
    return found


def finish(db: Database, run_id: int, status: RunStatus, now: datetime, error: str | None = None, result: dict | None = None) -> None:
    """Record how a run ended; waits out a short outage of the database (connection-class errors only).

    EndNotRecorded when the database refuses it (read-only, full, locked, damaged): the row stays
    `running` with a heartbeat that has stopped, and the next sweep marks it abandoned (at once on
    this node, the process being done with it; after STALE_SECONDS from another).
    """
    values = {
        "status": status.value,
        "finished_at": now,
        "error": redact(error) if error else None,
        "result": json.dumps(result, default=str) if result is not None else None,
    }

    def write() -> int:
        with db.write() as conn:
            # Only a run still running: one another process marked abandoned keeps that record,
            # since its fire time may be running again elsewhere.
            return conn.execute(
                update(runs).where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value).values(**values)
            ).rowcount

    try:
        changed = through_outages(write)
    except DatabaseError as exc:
        raise EndNotRecorded(run_id, status, exc) from exc
    finally:
        _mine.discard(run_id)
    if not changed:
        logging.getLogger("runner.runs").warning(
            "run %s was marked abandoned while it ran (no heartbeat for %s s?); its end (%s) is not recorded",
            run_id, STALE_SECONDS, status.value,
        )


def interrupt_own(db: Database, now: datetime, reason: str) -> int:
    """Record this process's runs that are still going as failed, with the reason; how many there were."""
    with db.write() as conn:
        return conn.execute(
            update(runs)
            .where(runs.c.status == RunStatus.RUNNING.value, _this_process())
            .values(status=RunStatus.FAILED.value, finished_at=now, error=reason)
        ).rowcount


def running_elsewhere():
    """A clause: some run is in progress in another process (this one's share its pacers and all)."""
    return exists().where(runs.c.status == RunStatus.RUNNING.value, not_(_this_process()))


def _this_process():
    return and_(runs.c.node == process.NODE, runs.c.pid == process.pid())


def beat(db: Database, run_id: int) -> bool:
    """Refresh a run's heartbeat (the database's time); False when it is no longer running (marked abandoned)."""
    with db.write() as conn:
        return conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value)
            .values(heartbeat_at=database_time(conn))
        ).rowcount == 1


class Heartbeat:
    """Keeps a run's heartbeat fresh from a background thread while the job works.

    When the run turns out to have been marked abandoned, `lost` is set: a job that checks its
    `stopping` event can end rather than overlap the run that replaces it.
    """

    def __init__(self, db: Database, run_id: int, every: float = HEARTBEAT_SECONDS, lost: threading.Event | None = None):
        self.db, self.run_id, self.every = db, run_id, every
        self.lost = lost or threading.Event()
        self._stop = threading.Event()
        # With the job's log tags (job and run id), as page threads have them: contextvars stay in their thread.
        self._thread = threading.Thread(target=logs.tagged(self._loop), name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        log = logging.getLogger("runner.runs")
        while not self._stop.wait(self.every):
            try:
                if not beat(self.db, self.run_id):
                    log.warning("run %s was marked abandoned by another process; asking the job to stop", self.run_id)
                    self.lost.set()
                    return
            except Exception as exc:  # a database blip must not kill the job; the next beat may work
                log.warning("heartbeat of run %s failed: %s", self.run_id, exc)


def history(db: Database, job: str | None = None, limit: int = 20, tenant: str | None = None) -> list[dict]:
    """The newest runs, of one job and one tenant where given (None: every one)."""
    query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
    if job:
        query = query.where(runs.c.job == job)
    if tenant:
        query = query.where(runs.c.tenant == tenant)
    with db.read() as conn:
        return [as_dict(row) for row in conn.execute(query).all()]


def as_dict(row) -> dict:
    data = dict(row._mapping)
    data["result"] = json.loads(data["result"]) if data["result"] else None
    data["params"] = json.loads(data["params"]) if data["params"] else {}
    return data


def last_runs(db: Database, tenant: str = DEFAULT_TENANT) -> dict[str, dict]:
    """The last run of the tenant's every job that has one: the run in progress if any, else the newest.

    A fire time skipped while a run goes on is newer than that run, but the run is what a person
    asks `runner jobs` about (issue 19).
    """
    newest = (select(runs.c.job, func.max(runs.c.id).label("id")).where(runs.c.tenant == tenant)
              .group_by(runs.c.job).subquery())
    with db.read() as conn:
        rows = conn.execute(select(runs).join(newest, runs.c.id == newest.c.id)).all()
        running = conn.execute(select(runs).where(runs.c.status == RunStatus.RUNNING.value, runs.c.tenant == tenant)
                               .order_by(runs.c.id)).all()
    return {row.job: as_dict(row) for row in [*rows, *running]}


def last_started(db: Database, job: str, tenant: str = DEFAULT_TENANT) -> datetime | None:
    """When the (job, tenant) last started a run that did something (skipped runs do not count)."""
    with db.read() as conn:
        return conn.execute(
            select(func.max(runs.c.started_at)).where(runs.c.job == job, runs.c.tenant == tenant,
                                                      runs.c.status != RunStatus.SKIPPED.value)
        ).scalar()


PUBLIC_KEYS = ("id", "job", "tenant", "trigger", "scheduled_for", "status", "started_at", "finished_at", "error", "result", "host", "pid", "params")


def public(row: dict) -> dict:
    """A run as `history --json` shows it (README, "Commands")."""
    return {k: row[k] for k in PUBLIC_KEYS}


def history_record(db: Database, run_id: int | None) -> dict | None:
    if run_id is None:
        return None
    with db.read() as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    return public(as_dict(row)) if row else None

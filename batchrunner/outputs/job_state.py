"""Durable job state (README, "Write your own job"): named JSON values a job keeps from one run to the next.

An output and the state that says what it holds must not disagree after a crash at any instant
(a log archive's file and its checkpoint: a file renamed into place but not recorded would be
archived again by the next run). `publish()` makes the two one step that a later run completes
or undoes:

1. the intent (staged path, final path, new values) is committed;
2. the staged file or directory is renamed to its final name (one atomic rename);
3. the new values are committed and the intent cleared, in one transaction.

`recover()`, called by the job before it cleans up or writes anything, finds an intent left by a
killed run and finishes it: when the final name exists and the staged one does not, the rename
happened and the values are committed; otherwise the staged output is removed and nothing is
recorded, so the next run fetches the same data again. Either way, output and state agree.

A publish is fenced: it lands only while its run is still the job's run in progress and the values
it was built on (`expect`: the checkpoint it started from) are still current. A run marked abandoned
while it was alive (paused for over 90 s) and woken after another took over publishes nothing
rather than move the checkpoint backwards (README, "The log archive"). Every write is durable
(`Database.write(durable=True)`): a power loss must not roll the state back behind its outputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import delete, select, update

from batchrunner import clock
from batchrunner.errors import RunnerError
from batchrunner.outputs.atomic import remove_output, sync_dir
from batchrunner.store.database import Database
from batchrunner.store.schema import DEFAULT_TENANT, RunStatus, job_state, runs

INTENT = "_publishing"


class Superseded(RunnerError):
    """A publish refused: its run is no longer the one in progress, or the state moved on since it began."""


class JobState:
    """One (job, tenant)'s state: each tenant's checkpoint is its own (README, "Several tenants")."""

    def __init__(self, db: Database, job: str, run_id: int | None = None, now: Callable = clock.utcnow, tenant: str = DEFAULT_TENANT):
        self.db, self.job, self.run_id, self.now, self.tenant = db, job, run_id, now, tenant

    def get(self, name: str, default: Any = None) -> Any:
        with self.db.read() as conn:
            value = self._get(conn, name)
        return default if value is None else value

    def put(self, **values: Any) -> None:
        """Set every value in one transaction; None removes a value."""
        with self.db.write(durable=True) as conn:
            self._put(conn, values)

    def publish(self, staged: Path, final: Path, expect: dict | None = None, same_if_exists: bool = False, **values: Any) -> None:
        """Rename `staged` to `final` and record `values`, crash-consistently; Superseded, and nothing
        published, once this run is no longer the job's run in progress or a value of `expect` changed.

        A `final` that exists already is refused (FileExistsError), unless `same_if_exists` (its name
        says what it holds, so it holds what `staged` does): then `staged` is removed and the values
        recorded, as if published.
        """
        intent = {"staged": str(staged), "final": str(final), "values": values, "run": self.run_id}
        if self._intend(intent, expect, same_if_exists):
            remove_output(staged)
            return
        try:
            os.replace(staged, final)
        except FileNotFoundError:
            with self.db.read() as conn:
                if self._get(conn, INTENT) != intent:  # another run's recover() took the staged file away
                    raise self._taken_over(intent) from None
            raise
        sync_dir(final.parent)
        self._settle(intent)

    def recover(self) -> str | None:
        """Finish or undo a publish a killed run left half-done; what was done, for the log."""
        with self.db.write(durable=True) as conn:
            intent = self._get(conn, INTENT, lock=True)
            if intent is None:
                return None
            staged, final = Path(intent["staged"]), Path(intent["final"])
            if final.exists() and not staged.exists():
                self._put(conn, {**intent["values"], INTENT: None})
                return f"recorded {final.name}, which an interrupted run had put in place"
            remove_output(staged)
            self._put(conn, {INTENT: None})
        return f"removed {staged.name}, which an interrupted run had not put in place"

    def _intend(self, intent: dict, expect: dict | None, same_if_exists: bool) -> bool:
        """Step 1 behind the fence: commit the intent; True when `final` exists and counts as published."""
        final = Path(intent["final"])
        with self.db.write(durable=True) as conn:
            self._fence(conn, expect or {})
            if not final.exists():
                self._put(conn, {INTENT: intent})
                return False
            if not same_if_exists:
                raise FileExistsError(f"{final} exists; an output is published under a new name")
            self._put(conn, intent["values"])
            return True

    def _settle(self, intent: dict) -> None:
        """Step 3: record the values, unless another run's recover() settled this intent meanwhile."""
        with self.db.write(durable=True) as conn:
            if self._get(conn, INTENT, lock=True) != intent:
                raise self._taken_over(intent)
            self._put(conn, {**intent["values"], INTENT: None})

    def _taken_over(self, intent: dict) -> Superseded:
        return Superseded(f"run {self.run_id} of {self.job} was taken over while it published "
                          f"{Path(intent['final']).name}; the run in progress settled it")

    def _fence(self, conn, expect: dict) -> None:
        if self.run_id is not None:
            # Locked (PostgreSQL): the run cannot be marked abandoned until this intent is committed,
            # so the run that takes over finds it (recover).
            status = conn.execute(self.db.for_update(select(runs.c.status).where(runs.c.id == self.run_id))).scalar()
            if status != RunStatus.RUNNING.value:
                raise Superseded(f"run {self.run_id} of {self.job} was marked {status} while it worked (no heartbeat "
                                 "for 90 s: paused, or cut off from the database); it publishes nothing, the run in progress goes on")
        for name, value in expect.items():
            if self._get(conn, name, lock=True) != value:
                raise Superseded(f"the {name} of {self.job} moved on since this publish began (another run "
                                 "published); it publishes nothing")

    def _get(self, conn, name: str, lock: bool = False) -> Any:
        query = select(job_state.c.value).where(job_state.c.tenant == self.tenant, job_state.c.job == self.job, job_state.c.name == name)
        value = conn.execute(self.db.for_update(query) if lock else query).scalar()
        return None if value is None else json.loads(value)

    def _put(self, conn, values: dict) -> None:
        now = self.now()
        for name, value in values.items():
            where = (job_state.c.tenant == self.tenant, job_state.c.job == self.job, job_state.c.name == name)
            if value is None:
                conn.execute(delete(job_state).where(*where))
                continue
            row = {"value": json.dumps(value), "updated_at": now, "run_id": self.run_id}
            if not conn.execute(update(job_state).where(*where).values(**row)).rowcount:
                conn.execute(job_state.insert().values(tenant=self.tenant, job=self.job, name=name, **row))

"""Durable job state (SPEC section 11): named JSON values a job keeps from one run to the next.

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
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import delete, select, update

from . import clock
from .db import Database
from .files import remove_output, sync_dir
from .models import job_state

INTENT = "_publishing"


class JobState:
    def __init__(self, db: Database, job: str, run_id: int | None = None, now: Callable = clock.utcnow):
        self.db, self.job, self.run_id, self.now = db, job, run_id, now

    def get(self, name: str, default: Any = None) -> Any:
        with self.db.read() as conn:
            value = conn.execute(
                select(job_state.c.value).where(job_state.c.job == self.job, job_state.c.name == name)
            ).scalar()
        return default if value is None else json.loads(value)

    def put(self, **values: Any) -> None:
        """Set every value in one transaction; None removes a value."""
        with self.db.write() as conn:
            self._put(conn, values)

    def publish(self, staged: Path, final: Path, **values: Any) -> None:
        """Rename `staged` to `final` (which must not exist) and record `values`, crash-consistently."""
        if final.exists():
            raise FileExistsError(f"{final} exists; an output is published under a new name")
        self.put(**{INTENT: {"staged": str(staged), "final": str(final), "values": values}})
        os.replace(staged, final)
        sync_dir(final.parent)
        self.put(**values, **{INTENT: None})

    def recover(self) -> str | None:
        """Finish or undo a publish a killed run left half-done; what was done, for the log."""
        intent = self.get(INTENT)
        if intent is None:
            return None
        staged, final = Path(intent["staged"]), Path(intent["final"])
        if final.exists() and not staged.exists():
            self.put(**intent["values"], **{INTENT: None})
            return f"recorded {final.name}, which an interrupted run had put in place"
        remove_output(staged)
        self.put(**{INTENT: None})
        return f"removed {staged.name}, which an interrupted run had not put in place"

    def _put(self, conn, values: dict) -> None:
        now = self.now()
        for name, value in values.items():
            where = (job_state.c.job == self.job, job_state.c.name == name)
            if value is None:
                conn.execute(delete(job_state).where(*where))
                continue
            row = {"value": json.dumps(value), "updated_at": now, "run_id": self.run_id}
            if not conn.execute(update(job_state).where(*where).values(**row)).rowcount:
                conn.execute(job_state.insert().values(job=self.job, name=name, **row))


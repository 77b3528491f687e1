"""Last seen from the log archive (README, "User maintenance: `users-cleanup`", Last seen): the newest
successful login event (`s`, `ssa`, `sertft`) of each user that export-logs archived, kept in the
runner's database (table `last_seen`, per tenant) as it archives, so users-cleanup never rereads the
archive. Auth0 does not update `last_login` on silent authentication or a refresh token exchange.

- `Batch`: export-logs feeds it the events of each file it writes and saves it (one upsert) before
  that file is published with its checkpoint, so a kill at any instant loses no login event; a file
  written again after a kill saves the same events again, which changes nothing (the newest is kept).
- `catch_up`: files the table does not cover yet (an archive made before this release; files a
  database restored from a backup had not seen) are read once, file by file, from where its cover
  ends: export-logs' job state `last_seen` = {"through": the last log_id the table covers}.
- `lookup`: users-cleanup asks for the users a rule would select, a chunk at a time (flat memory).
- `forget`: users-cleanup drops the row of each user it deletes, so the table does not keep every
  user the tenant ever had.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from sqlalchemy import delete, select

from batchrunner import clock
from batchrunner.errors import one_line
from batchrunner.outputs import archive_folder as folder
from batchrunner.outputs.job_state import JobState
from batchrunner.store.schema import last_seen as table

LOGIN_TYPES = frozenset({"s", "ssa", "sertft"})  # success login, silent authentication, refresh token exchange
STATE = "last_seen"  # export-logs' job state: how far the table covers the archive
JOB = "export-logs"
CHUNK = 500  # users asked for at once: one query, a bounded IN list


@dataclass(frozen=True)
class Seen:
    at: datetime
    log_type: str
    log_id: str

    def iso(self) -> str:
        """As Auth0 writes dates (`last_login`): milliseconds, `Z`."""
        at = self.at.astimezone(timezone.utc)
        return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class Batch:
    """The newest login event of each user among the events it is shown."""

    def __init__(self):
        self.newest: dict[str, Seen] = {}

    def see(self, event: dict) -> None:
        if event.get("type") not in LOGIN_TYPES:
            return
        user_id, at = event.get("user_id"), clock.parse(event.get("date"))
        if not isinstance(user_id, str) or not user_id or at is None:
            return
        held = self.newest.get(user_id)
        if held is None or held.at < at:
            self.newest[user_id] = Seen(at, event["type"], str(event.get("log_id") or ""))

    def save(self, db, tenant: str) -> int:
        """Write it (the newest kept) durably and begin anew; how many users it held."""
        rows = [{"tenant": tenant, "user_id": user_id, "seen_at": seen.at, "log_type": seen.log_type, "log_id": seen.log_id}
                for user_id, seen in self.newest.items()]
        if rows:
            with db.write(durable=True) as conn:
                db.upsert_newer(conn, table, rows, "seen_at")
        self.newest = {}
        return len(rows)


def catch_up(state: JobState, root: Path, checkpoint: str | None, log) -> None:
    """Bring the table up to the checkpoint from the archive's files, once (export-logs, before paging)."""
    recorded = state.get(STATE)
    through = recorded.get("through") if recorded else None
    if recorded is not None and through == checkpoint:
        return
    files = [(last, file) for last, file in folder.files(root) if through is None or last > through]
    if files:
        log.info("recording last seen from %d archived file%s the database does not cover yet (once: users-cleanup reads it)",
                 len(files), "" if len(files) == 1 else "s")
    users = 0
    for last, file in files:
        batch = Batch()
        try:
            with gzip.open(file, "rt", encoding="utf-8") as lines:
                for line in lines:
                    batch.see(json.loads(line))
        except (OSError, EOFError, ValueError) as exc:
            log.warning("could not read %s (%s): last seen lacks the login events it holds after the first unreadable one",
                        file, one_line(exc))
        users += batch.save(state.db, state.tenant)
        state.put(**{STATE: {"through": last}})  # a kill goes on from the next file
    state.put(**{STATE: {"through": checkpoint}})
    if files:
        log.info("last seen recorded from %d archived file%s (%d user%s' newest login event)",
                 len(files), "" if len(files) == 1 else "s", users, "" if users == 1 else "s")


def kept(db, tenant: str) -> dict | None:
    """Whether export-logs keeps last seen for the tenant in this database (it has run since this
    release); its job state then, with `newest_event_at`, the newest event archived."""
    state = JobState(db, JOB, tenant=tenant)
    recorded = state.get(STATE)
    return None if recorded is None else {**recorded, "newest_event_at": state.get("newest_event_at")}


def lookup(db, tenant: str, user_ids: Iterable[str]) -> dict[str, Seen]:
    """The newest login event held for each of these users that has one."""
    wanted = [u for u in dict.fromkeys(user_ids) if u]
    found: dict[str, Seen] = {}
    with db.read() as conn:
        for start in range(0, len(wanted), CHUNK):
            query = select(table.c.user_id, table.c.seen_at, table.c.log_type, table.c.log_id).where(
                table.c.tenant == tenant, table.c.user_id.in_(wanted[start:start + CHUNK]))
            for row in conn.execute(query):
                found[row.user_id] = Seen(row.seen_at, row.log_type, row.log_id)
    return found


def forget(db, tenant: str, user_id: str, deleted_at: datetime) -> None:
    """A user users-cleanup deleted: its row goes, in one statement, unless its login event is newer
    than the delete (a user made again with the same id, a social login's, who has signed in since)."""
    with db.write() as conn:
        conn.execute(delete(table).where(table.c.tenant == tenant, table.c.user_id == user_id, table.c.seen_at < deleted_at))

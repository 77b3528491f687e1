"""users-cleanup's ledger (README, "User maintenance: `users-cleanup`"): one row per action on a user in
the `user_actions` table, `planned` -> `sent` -> `done` / `skipped` / `failed`.

Every change is a durable commit: a row is `sent` on disk before its write leaves, so a run killed
at any instant leaves either a `planned` row (nothing was sent: the user is selected anew) or a
`sent` one, which the next run resolves before it selects anyone (`GET /users/{id}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, select, update

from batchrunner.store.schema import user_actions

PLANNED, SENT, DONE, SKIPPED, FAILED = "planned", "sent", "done", "skipped", "failed"


@dataclass(frozen=True)
class Row:
    id: int
    run_id: int
    user_id: str
    rule: str
    action: str
    state: str


def plan(db, tenant: str, run_id: int, user_id: str, rule: str, action: str, now: datetime) -> int:
    with db.write(durable=True) as conn:
        return conn.execute(insert(user_actions).values(
            tenant=tenant, run_id=run_id, user_id=user_id, rule=rule, action=action, state=PLANNED, planned_at=now,
        )).inserted_primary_key[0]


def mark_sent(db, row_id: int, now: datetime) -> None:
    with db.write(durable=True) as conn:
        conn.execute(update(user_actions).where(user_actions.c.id == row_id).values(state=SENT, sent_at=now))


def finish(db, row_id: int, state: str, now: datetime, status: int | None = None, detail: str | None = None) -> None:
    with db.write(durable=True) as conn:
        conn.execute(update(user_actions).where(user_actions.c.id == row_id).values(
            state=state, finished_at=now, http_status=status, detail=detail))


def unfinished(db, tenant: str) -> list[Row]:
    """The tenant's rows left `planned` or `sent` by a run that ended before finishing them."""
    return _rows(db, and_(user_actions.c.tenant == tenant, user_actions.c.state.in_((PLANNED, SENT))))


def of_run(db, tenant: str, run_id: int, action: str, state: str = DONE) -> list[Row]:
    return _rows(db, and_(user_actions.c.tenant == tenant, user_actions.c.run_id == run_id,
                          user_actions.c.action == action, user_actions.c.state == state))


def _rows(db, condition) -> list[Row]:
    c = user_actions.c
    with db.read() as conn:
        found = conn.execute(select(c.id, c.run_id, c.user_id, c.rule, c.action, c.state).where(condition).order_by(c.id))
        return [Row(*r) for r in found]


def blocked_at(db, tenant: str) -> dict[str, datetime]:
    """user_id -> when this job blocked it, for the users whose last done action here was a block
    (an undo's unblock cancels it). Bounded by the ledger, not by the tenant's users."""
    c = user_actions.c
    latest: dict[str, datetime | None] = {}
    with db.read() as conn:
        done = conn.execute(select(c.user_id, c.action, c.finished_at)
                            .where(c.tenant == tenant, c.state == DONE, c.action.in_(("block", "unblock"))).order_by(c.id))
        for user_id, action, finished in done:
            latest[user_id] = finished if action == "block" else None
    return {user_id: when for user_id, when in latest.items() if when is not None}

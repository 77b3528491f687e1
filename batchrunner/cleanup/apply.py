"""users-cleanup's writes (README, "User maintenance: `users-cleanup`", Apply), each guarded:

- the ledger's unfinished rows of earlier runs are resolved first (`resolve`);
- each user is re-read (`GET /users/{id}`) right before its write and skipped when it no longer
  matches its rule, or is now protected; the re-read of the next user goes out with this user's
  write (`act_all`), so a user costs one round trip, not two;
- before a DELETE the user's full record is appended and synced to the run's deleted-users.jsonl.gz;
- the ledger row is `sent` on disk before the write leaves, and `done` once Auth0 answered.

Writes go through the API client: its pacer on Auth0's Write Users / Delete Users buckets, its
retries (PATCH `blocked` and DELETE are idempotent), Retry-After, and X-Correlation-ID.
"""

from __future__ import annotations

import gzip
import json
import os
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import quote

from batchrunner.auth0.api import DaemonPool
from batchrunner.cleanup import ledger
from batchrunner.cleanup.rules import Policy
from batchrunner.cleanup.selection import Known, match, protected_by_metadata
from batchrunner.errors import ApiError, one_line
from batchrunner.outputs import last_seen
from batchrunner.outputs.atomic import sync_dir

BACKUP = "deleted-users.jsonl.gz"
SUCCESS = {"block": 200, "unblock": 200, "delete": 204}  # Auth0's answers to PATCH and DELETE /users/{id}


@dataclass
class Counts:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    resolved: dict = field(default_factory=lambda: {"done": 0, "skipped": 0})


def resolve(ctx, tenant: str, counts: Counts) -> None:
    """Settle what earlier runs left: a `planned` row was never sent (the user is selected anew if it
    still matches); a `sent` one is `done` when Auth0 shows its effect, else it never landed."""
    for row in ledger.unfinished(ctx.db, tenant):
        if row.state == ledger.PLANNED:
            ledger.finish(ctx.db, row.id, ledger.SKIPPED, ctx.now(), detail="the run ended before sending it")
            continue
        landed = _landed(row.action, _current(ctx.api, row.user_id))
        state = ledger.DONE if landed else ledger.SKIPPED
        detail = f"resolved by run {ctx.run_id}: " + ("Auth0 shows it done" if landed else "Auth0 never applied it")
        if landed and row.action == "delete":  # before the row is done: a kill between them forgets it again
            last_seen.forget(ctx.db, tenant, row.user_id, ctx.now())
        ledger.finish(ctx.db, row.id, state, ctx.now(), detail=detail)
        counts.resolved[state] += 1
        ctx.log.info("run %s's %s of %s: %s", row.run_id, row.action, row.user_id, detail)


def act_all(ctx, tenant: str, policy: Policy, known: Known, planned: Iterable[tuple[str, str, str]],
            folder: Path, counts: Counts) -> None:
    """The planned users, (user_id, rule, action) each, one at a time in order until the run stops.

    The next user's re-read (`GET`, a read) is sent as this user's write is: one user at a time took
    two round trips, re-read then write, and at 200 ms a user took 0.4 s where Auth0's 200 writes a
    minute allow 0.3 (bench/users_cleanup.py). The re-read is then at most about two writes' spacing
    older than its own write; the ledger still holds one user's action at a time."""
    pool = DaemonPool("users-cleanup re-read", limit=1)
    rows = iter(planned)
    following = next(rows, None)
    reread: Future | None = None
    try:
        while following is not None and not ctx.stopping.is_set():
            (user_id, rule, action), following = following, next(rows, None)
            ahead: list[Future] = []

            def sending(after=following) -> None:
                if after is not None:
                    ahead.append(pool.submit(_current, ctx.api, after[0]))

            act(ctx, tenant, policy, known, user_id, rule, action, folder, counts, reread, sending)
            reread = ahead[0] if ahead else None  # none after a skip: the next is read when its turn comes
    finally:
        pool.shutdown()


def act(ctx, tenant: str, policy: Policy, known: Known, user_id: str, rule: str, action: str,
        folder: Path, counts: Counts, reread: Future | None = None, sending: Callable[[], None] | None = None) -> None:
    """One user: ledger, re-check, copy, write; the outcome counted. `reread`: the user's `GET` already
    on its way; `sending`: called as the write goes out."""
    row = ledger.plan(ctx.db, tenant, ctx.run_id, user_id, rule, action, ctx.now())
    fresh = reread.result() if reread is not None else _current(ctx.api, user_id)
    reason = _no_longer(fresh, policy, known, rule, action, ctx.now())
    if reason:
        ledger.finish(ctx.db, row, ledger.SKIPPED, ctx.now(), detail=reason)
        counts.skipped += 1
        ctx.log.info("skipped %s: %s", user_id, reason)
        return
    if action == "delete":
        keep_copy(folder / BACKUP, fresh)
    ledger.mark_sent(ctx.db, row, ctx.now())
    if sending is not None:
        sending()
    try:
        send(ctx.api, user_id, action)
    except ApiError as exc:
        ledger.finish(ctx.db, row, ledger.FAILED, ctx.now(), status=exc.status, detail=one_line(exc))
        counts.failed += 1
        ctx.log.warning("%s of %s failed: %s", action, user_id, one_line(exc))
        return
    if action == "delete":  # before the row is done: a kill between them leaves it `sent`, and resolve forgets it
        last_seen.forget(ctx.db, tenant, user_id, ctx.now())  # README, "User maintenance", Last seen
    ledger.finish(ctx.db, row, ledger.DONE, ctx.now(), status=SUCCESS[action])
    counts.done += 1


def send(api, user_id: str, action: str) -> None:
    path = f"users/{quote(user_id, safe='')}"
    if action == "delete":
        api.delete(path)
    else:
        api.patch(path, {"blocked": action == "block"})


def keep_copy(path: Path, record: dict) -> None:
    """Append the record to the gzip JSON Lines file as a gzip member of its own and fsync it: the
    copy is on disk before the DELETE leaves (concatenated members read as one stream: zcat, gzip)."""
    new = not path.exists()
    data = gzip.compress(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n", mtime=0)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        sync_dir(path.parent)


def _current(api, user_id: str) -> dict | None:
    """The user as Auth0 holds it now; None when it does not exist."""
    try:
        return api.get(f"users/{quote(user_id, safe='')}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _landed(action: str, user: dict | None) -> bool:
    if action == "delete":
        return user is None
    return user is not None and (user.get("blocked") is True) == (action == "block")


def _no_longer(user: dict | None, policy: Policy, known: Known, rule: str, action: str, now) -> str | None:
    """Why the user is no longer to be acted on, or None."""
    if user is None:
        return "no longer exists"
    if action == "unblock":
        return None if user.get("blocked") is True else "no longer blocked"
    if user.get("user_id") in known.protected or protected_by_metadata(user, policy.protect_app_metadata):
        return "now protected"
    identities = user.get("identities") or [{}]
    flat = {**user, "identities[0].connection": identities[0].get("connection", "")}
    # Last seen as the selection judged it: a login event export-logs archived since counts too.
    event = known.logins([user["user_id"]]).get(user["user_id"]) if known.logins and user.get("user_id") else None
    choice = match(flat, policy.rules, now, known.blocked_at, event)
    if choice is None or str(choice.rule) != rule:
        return f"no longer matches {rule}"
    return None

"""What each tenant's rate-limit buckets were seen to be, kept in the database between processes
(README, "Development").

A process that knows nothing of its tenant's bucket sends two requests blind, then keeps a token
back until answers show the refill rate: at 50 requests/s that cost an export a tenth of its time.
So when a run ends, what its pacers learned (each bucket's size, refill rate, shortest round trip
and level) is written here, and the next process's pacers start from it (pacing.Pacer.recall).
Shared through PostgreSQL, one host's runs teach the others. While a run of another process is in
progress it may be drawing from the same bucket, so the first wave then stays the blind one.

It is advice, never a condition: a row that cannot be read, written or believed costs speed, not
a run, and a rate that no longer holds (the tenant's plan changed) is dropped at the first 429.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from sqlalchemy import select, update

from batchrunner.auth0.api import ManagementApi, tenant_pacer, tenant_pacers
from batchrunner.auth0.pacing import Seen
from batchrunner.errors import RunnerError, one_line
from batchrunner.runs import records as runs
from batchrunner.store.database import Database
from batchrunner.store.schema import rate_limit_buckets as table

log = logging.getLogger("runner.api")

_recalled: set[str] = set()  # tenants whose buckets this process has read already
_lock = threading.Lock()


def recall(db: Database, api: ManagementApi) -> None:
    """Start this process's pacers for the tenant from what earlier runs saw (once per process)."""
    with _lock:
        if api.base_url in _recalled:
            return
        _recalled.add(api.base_url)
    try:
        with db.read() as conn:
            rows = conn.execute(select(table).where(table.c.tenant == api.base_url)).all()
            shared = bool(rows) and conn.execute(select(runs.running_elsewhere())).scalar()
        for row in rows:
            seen = Seen(row.size, row.rate, row.round_trip, row.remaining, row.seen_at)
            if _believable(seen):
                tenant_pacer(api.base_url, row.bucket).recall(seen, time.time(), shared=shared)
            else:
                log.warning("the rate limit earlier runs saw of bucket %r is not believable (size %r, rate %r, round trip "
                            "%r, level %r); passed over and learned afresh", row.bucket, row.size, row.rate, row.round_trip,
                            row.remaining)
    except Exception as exc:  # advice only: a run never fails for it (see the module's docstring)
        log.warning("what earlier runs saw of the rate limit was not read (%s); learning it afresh", _why(exc))


def remember(db: Database, api: ManagementApi) -> None:
    """Keep what this process's pacers know of the tenant's buckets now, for the next process."""
    now, epoch = time.monotonic(), time.time()
    try:
        seen = {bucket: pacer.seen(now, epoch) for bucket, pacer in tenant_pacers(api.base_url).items()}
        seen = {bucket: s for bucket, s in seen.items() if s is not None and _believable(s)}
        if not seen:
            return
        with db.write() as conn:
            for bucket, s in seen.items():
                row = {"size": s.limit, "rate": s.rate, "round_trip": s.round_trip, "remaining": s.remaining, "seen_at": s.at}
                where = (table.c.tenant == api.base_url, table.c.bucket == bucket)
                if not conn.execute(update(table).where(*where).values(**row)).rowcount:
                    db.insert_ignore(conn, table, {"tenant": api.base_url, "bucket": bucket, **row})
    except Exception as exc:  # advice only, and this runs before the run's end is recorded
        log.warning("what this run saw of the rate limit was not kept (%s); the next run learns it afresh", _why(exc))


def _believable(seen: Seen) -> bool:
    """Values a pacer can start from: a row written by hand, or damaged, is passed over."""
    numbers = (seen.rate, seen.round_trip, seen.remaining, seen.at)
    return (all(isinstance(n, (int, float)) and math.isfinite(n) for n in numbers) and isinstance(seen.limit, int)
            and 1 <= seen.limit <= 100_000 and 0 <= seen.rate <= 100_000 and 0 < seen.round_trip <= 60
            and 0 <= seen.remaining <= seen.limit)


def _why(exc: Exception) -> str:
    """A RunnerError's own line; anything else is unexpected here, so its type is named too."""
    return one_line(exc) if isinstance(exc, RunnerError) else f"{type(exc).__name__}: {one_line(exc)}"

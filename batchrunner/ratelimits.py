"""What each tenant's rate-limit buckets were seen to be, kept in the database between processes
(SPEC section 17).

A process that knows nothing of its tenant's bucket sends two requests blind, then keeps a token
back until answers show the refill rate: at 50 requests/s that cost an export a tenth of its time.
So when a run ends, what its pacers learned (each bucket's size, refill rate, shortest round trip
and level) is written here, and the next process's pacers start from it (pacing.Pacer.recall).
Shared through PostgreSQL, one host's runs teach the others.

It is advice, never a condition: a row that cannot be read or written costs speed, not a run, and
a rate that no longer holds (the tenant's plan changed) is dropped at the first 429.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import select, update

from .api import ManagementApi, tenant_pacer, tenant_pacers
from .db import Database, DatabaseError
from .models import rate_limit_buckets as table
from .pacing import Seen

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
    except DatabaseError as exc:
        log.debug("rate limits seen before not read (%s); learning them afresh", exc.message())
        return
    for row in rows:
        seen = Seen(row.size, row.rate, row.round_trip, row.remaining, row.seen_at)
        tenant_pacer(api.base_url, row.bucket).recall(seen, time.time())


def remember(db: Database, api: ManagementApi) -> None:
    """Keep what this process's pacers know of the tenant's buckets now, for the next process."""
    now, epoch = time.monotonic(), time.time()
    seen = {bucket: pacer.seen(now, epoch) for bucket, pacer in tenant_pacers(api.base_url).items()}
    seen = {bucket: s for bucket, s in seen.items() if s is not None}
    if not seen:
        return
    try:
        with db.write() as conn:
            for bucket, s in seen.items():
                row = {"size": s.limit, "rate": s.rate, "round_trip": s.round_trip, "remaining": s.remaining, "seen_at": s.at}
                where = (table.c.tenant == api.base_url, table.c.bucket == bucket)
                if not conn.execute(update(table).where(*where).values(**row)).rowcount:
                    db.insert_ignore(conn, table, {"tenant": api.base_url, "bucket": bucket, **row})
    except DatabaseError as exc:
        log.debug("rate limits seen not kept (%s)", exc.message())

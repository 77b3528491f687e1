"""The tenant's log events (GET /api/v2/logs), held as Auth0 holds them: ordered by `log_id`, kept for
the plan's retention, new ones arriving over time.

Only each event's arrival time is stored (an array of floats); its content is a function of the seed
and its sequence number, so 100,000 events cost under a megabyte. A `log_id` is 56 digits, sortable
as text like Auth0's: "900", the arrival time to the millisecond (YYYYMMDDHHMMSSmmm), the sequence.
An event's `date` may be a moment earlier than its arrival: events are ordered by `log_id`, not date.
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from datetime import datetime, timezone

from .tenant import _client_id
from .users import connection_of, user_id

# (type, description, share in 100): Auth0's event type codes. `s`, `ssa` and `sertft` are the
# successful logins users-cleanup's "last seen" counts (they name users the bulk export serves).
TYPES = [("s", "Successful login", 30), ("ssa", "Successful silent authentication", 6),
         ("sertft", "Successful Refresh Token exchange", 4), ("seacft", "Successful exchange of Authorization Code for Access Token", 15),
         ("seccft", "Successful exchange of Access Token for a Client Credentials Grant", 12),
         ("sapi", "Successful Management API operation", 10), ("f", "Failed login", 6),
         ("fp", "Wrong email or password.", 6), ("slo", "Successful logout", 6), ("fu", "Invalid email or username", 3),
         ("ss", "Successful signup", 2)]
_WHEEL = [t for t in TYPES for _ in range(t[2])]
DESCRIPTIONS = {kind: description for kind, description, _ in TYPES}
AGENTS = ["Chrome 126.0.0 / Mac OS X 10.15.7", "Firefox 127.0.0 / Windows 10.0.0", "Safari 17.5.0 / iOS 17.5.1",
          "python-requests 2.32.3 / Linux 6.8.0", "node-fetch 2.6.7 / Linux 5.15.0"]


class LogStore:
    def __init__(self, seed: int, clock, events: int = 200, retention_days: float = 1.0, clients: int = 50, users: int = 200):
        self.seed, self.clock, self.initial, self.clients, self.users = seed, clock, events, max(1, clients), max(1, users)
        self.initial_retention = retention_days
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to `events` events spread over the last hours (within the retention), no new ones arriving."""
        with self._lock:
            self.retention_seconds = self.initial_retention * 86400.0
            self.rate = 0.0  # events a second arriving on their own, read from the clock
            self.max_take = 100  # a switch: some tenants cap `take` lower, silently
            self._first = 0  # sequence number of the oldest event held
            self._times = array("d")
            now = self.clock()
            span = min(self.retention_seconds * 0.5, 6 * 3600.0)
            self._append(self.initial, now - span, now)
            self._grown_at = now
            self._chosen: dict[int, tuple[str, int]] = {}  # sequence -> (type, user number): add_event's

    # --- switches ----------------------------------------------------------------------------

    def add(self, n: int, now: float | None = None) -> list[str]:
        """N events arriving now; their log_ids."""
        with self._lock:
            now = self.clock() if now is None else now
            first = self._first + len(self._times)
            self._append(n, now, now)
            return [self.log_id(seq) for seq in range(first, first + n)]

    def add_event(self, kind: str, person: int, now: float | None = None) -> str:
        """One event of type `kind` (a code of TYPES) for user number `person` (the bulk export's
        numbering), arriving now; its log_id."""
        with self._lock:
            now = self.clock() if now is None else now
            seq = self._first + len(self._times)
            self._append(1, now, now)
            self._chosen[seq] = (kind, person)
            return self.log_id(seq)

    def set_rate(self, per_second: float) -> None:
        with self._lock:
            self._grow(self.clock())
            self.rate, self._grown_at = per_second, self.clock()

    def drop_oldest(self, n: int) -> None:
        """Retention passing over the n oldest events."""
        with self._lock:
            n = min(n, len(self._times))
            del self._times[:n]
            self._first += n

    # --- reading -------------------------------------------------------------------------------

    def held(self) -> list[str]:
        """Every log_id held now, oldest first (for tests; the ids only)."""
        with self._lock:
            self._refresh()
            return [self.log_id(seq) for seq in range(self._first, self._first + len(self._times))]

    def after(self, from_id: str | None, take: int) -> list[dict] | None:
        """Up to `take` events after `from_id` (from the oldest held without one); None when `from_id`
        is not an id this tenant still holds (retention passed over it)."""
        with self._lock:
            self._refresh()
            start = self._first
            if from_id:
                seq = self.sequence(from_id)
                if seq is None or seq < self._first:
                    return None
                start = seq + 1
            end = min(self._first + len(self._times), start + min(take, self.max_take))
            return [self._event(seq) for seq in range(start, end)]

    def newest_first(self, start: int, count: int) -> tuple[list[dict], int]:
        """Search paging (no `from`/`take`): newest first; and the number held."""
        with self._lock:
            self._refresh()
            top = self._first + len(self._times) - 1
            seqs = range(top - start, max(self._first - 1, top - start - count), -1)
            return [self._event(seq) for seq in seqs], len(self._times)

    def get(self, log_id: str) -> dict | None:
        with self._lock:
            self._refresh()
            seq = self.sequence(log_id)
            if seq is None or not self._first <= seq < self._first + len(self._times) or self.log_id(seq) != log_id:
                return None
            return self._event(seq)

    def log_id(self, seq: int) -> str:
        at = self._times[seq - self._first]
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(at)) + f"{int(at * 1000) % 1000:03d}"
        return f"900{stamp}{seq:036d}"

    @staticmethod
    def sequence(log_id: str) -> int | None:
        if len(log_id) != 56 or not log_id.isdigit() or not log_id.startswith("900"):
            return None
        return int(log_id[20:])

    # --- internals -----------------------------------------------------------------------------

    def _append(self, n: int, start: float, end: float) -> None:
        last = self._times[-1] if self._times else start
        for k in range(n):
            at = start + (end - start) * (k + 1) / n if n else end
            last = max(last, at)
            self._times.append(last)

    def _refresh(self) -> None:
        now = self.clock()
        self._grow(now)
        cutoff = now - self.retention_seconds
        gone = 0
        while gone < len(self._times) and self._times[gone] < cutoff:
            gone += 1
        if gone:
            del self._times[:gone]
            self._first += gone

    def _grow(self, now: float) -> None:
        if self.rate <= 0 or now <= self._grown_at:
            return
        n = math.floor((now - self._grown_at) * self.rate)
        if n:
            self._append(n, self._grown_at, self._grown_at + n / self.rate)
            self._grown_at += n / self.rate

    def _event(self, seq: int) -> dict:
        kind, description, _ = _WHEEL[(seq * 37 + self.seed) % len(_WHEEL)]
        person = (seq * 7) % self.users
        if seq in self._chosen:
            kind, person = self._chosen[seq]
            description = DESCRIPTIONS[kind]
        arrived = self._times[seq - self._first]
        app = (seq * 13) % self.clients
        event = {"date": _iso(arrived - (seq % 3) * 0.4), "type": kind, "description": description,
                 "client_id": _client_id(self.seed, app), "client_name": f"App {app:05d}",
                 "ip": f"203.0.113.{seq % 250 + 1}", "user_agent": AGENTS[seq % len(AGENTS)],
                 "hostname": "sandbox.auth0.local", "details": self._details(kind, seq), "log_id": self.log_id(seq)}
        if kind in ("seccft", "sapi"):
            return event
        connection = connection_of(person)
        event.update(connection=connection, connection_id=f"con_{connection[:16]}", user_id=user_id(self.seed, person),
                     user_name=f"user{person:07d}@example.com", strategy_type="database" if connection.startswith("User") else "social",
                     isMobile=seq % 5 == 2)
        return event

    @staticmethod
    def _details(kind: str, seq: int) -> dict:
        if kind == "sapi":
            return {"request": {"method": "get", "path": "/api/v2/clients", "auth": {"strategy": "jwt", "credentials": {"scopes": ["read:clients"]}}},
                    "response": {"statusCode": 200}}
        if kind in ("f", "fp", "fu"):
            return {"error": {"message": "Wrong email or password.", "oauthError": "invalid_grant"}}
        return {"prompts": [], "initiatedAt": 0, "completedAt": 0, "elapsedTime": 40 + seq % 400}


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

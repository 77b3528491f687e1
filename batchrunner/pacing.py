"""Pacing within the Management API's rate limit, learned from its `x-ratelimit-*` headers.

Auth0 limits the Management API with a token bucket and reports, on every response, how many
requests remain (`x-ratelimit-remaining`). The pacer keeps a model of that bucket: the last
remaining count the server reported, less every request still unanswered, plus what the bucket has
refilled since at the refill rate measured from the headers so far. A request goes out only when
the model says the bucket holds one, so pages flow at the tenant's rate and 429s stay rare (SPEC
sections 5 and 10).

Unanswered, not "sent after the one that reported": threads of one process do not reach the server
in the order they took their sequence numbers (one opens a connection, another is descheduled), so
an older request may still be on its way when a newer one is counted. Counting every unanswered
request against the bucket costs little (answers come back nearly in order) and keeps such a
straggler from being the request too many.

The pacer decides; `try_send(now)` lets a request go or says how long to wait, and the caller sleeps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

# Measure the refill rate over at least this long, and trust a bit less than measured: a few
# percent of throughput is cheaper than a 429 and its wait.
MIN_MEASURE_SECONDS = 0.25
SAFETY = 0.97
# Drained before a rate is known: probe this long after the last answer, when the bucket has
# refilled enough for its rate to be measured (a tenant that refills slower answers with a 429).
IDLE_PROBE_SECONDS = MIN_MEASURE_SECONDS


@dataclass
class _Observation:
    seq: int  # send sequence number of the request that reported it
    remaining: int
    at: float  # when its response arrived (later than the server's count: conservative)


class Pacer:
    def __init__(self):
        self._lock = threading.Lock()
        self._sent = 0
        self._unanswered: set[int] = set()
        self._last: _Observation | None = None
        self._first_drained: _Observation | None = None
        self._limit: int | None = None
        self._rate: float | None = None
        self._hold = 0.0

    def wait_time(self, now: float) -> float:
        """Seconds to wait before the next request may go out; 0 means send now."""
        with self._lock:
            return self._wait_time(now)

    def try_send(self, now: float) -> tuple[float, int | None]:
        """(0, sequence number) when a request may go out now, counted as sent in the same step;
        else (seconds to wait, None). One step, so threads woken together cannot all take the
        one request the bucket holds."""
        with self._lock:
            wait = self._wait_time(now)
            return (wait, None) if wait > 0 else (0.0, self._count_sent())

    def _wait_time(self, now: float) -> float:
        if now < self._hold:
            return self._hold - now
        if self._last is None:
            return 0.0
        available = self._available(now)
        if available >= 1:
            return 0.0
        last = self._last
        if not self._rate:
            if self._in_flight():
                return 0.02  # an answer is coming that will say more
            # Drained before a rate could be measured: one probe a while after the last answer,
            # which either goes through or is answered with a 429 that says when to come back.
            return max(0.0, last.at + IDLE_PROBE_SECONDS - now)
        return (1 - available) / self._rate

    def hold_until(self, moment: float) -> None:
        """Send nothing before `moment` (the server answered 429 and said when to come back)."""
        with self._lock:
            self._hold = max(self._hold, moment)

    def sent(self) -> int:
        """Call when a request goes out; returns its sequence number for `observe`."""
        with self._lock:
            return self._count_sent()

    def _count_sent(self) -> int:
        self._sent += 1
        self._unanswered.add(self._sent)
        return self._sent

    def observe(self, seq: int, headers, now: float) -> None:
        """Call when request `seq` is answered, or has failed without an answer (`headers` empty)."""
        limit, remaining = _int(headers.get("x-ratelimit-limit")), _int(headers.get("x-ratelimit-remaining"))
        with self._lock:
            self._unanswered.discard(seq)
            if remaining is None:
                return
            self._limit = limit or self._limit
            if self._last is not None and seq < self._last.seq:
                return  # an older request answered late: the newer count stands
            obs = _Observation(seq, remaining, now)
            self._measure(obs)
            self._last = obs

    @property
    def rate(self) -> float | None:
        return self._rate

    def _available(self, now: float) -> float:
        last = self._last
        refilled = (self._rate or 0.0) * (now - last.at)
        tokens = last.remaining + refilled
        if self._limit:
            tokens = min(tokens, self._limit)
        return tokens - self._in_flight()

    def _in_flight(self) -> int:
        return len(self._unanswered)

    def _measure(self, obs: _Observation) -> None:
        # Only a bucket below its limit refills measurably; start measuring once it has drained.
        if self._first_drained is None:
            if self._limit is None or obs.remaining < max(self._limit - 1, 1):
                self._first_drained = obs
            return
        first = self._first_drained
        elapsed = obs.at - first.at
        if elapsed >= MIN_MEASURE_SECONDS:
            refilled = obs.remaining - first.remaining + (obs.seq - first.seq)
            if refilled > 0:
                self._rate = SAFETY * refilled / elapsed


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

"""Pacing within the Management API's rate limit, learned from its `x-ratelimit-*` headers.

Auth0 limits the Management API with a token bucket and reports, on every response, how many
requests remain (`x-ratelimit-remaining`, in whole requests) out of the bucket's size
(`x-ratelimit-limit`). The pacer keeps a model of that bucket: what an answer said remained, less
every request sent after the one it answered, plus what the bucket refills until a request sent
now reaches the server. A request goes out only when the model says it will find a token there,
so the burst and the refill are both used from the first second and 429s stay rare (README, "How the export treats the API" and "Development").

Answers may overtake one another, so the model takes the least that any recent answer implies,
and counts as "sent after" every request that may have reached the server later: those sent
within the spread of round trips seen (the shortest to the longest recent one).

The refill rate is a lower bound learned from the first answers on: between two answers the
bucket gained more than (later remaining - earlier remaining - 1 + requests sent in between;
the 1 is the rounding of `remaining`), in at most the time from sending the earlier request to
the later answer, less the shortest round trip. A full bucket or another client spending tokens
only lowers the bound; it grows towards the true rate as the span grows. A rate that is a little
low costs little: every answer corrects the model.

A new process starts knowing nothing of the bucket unless an earlier one left what it saw
(`seen()`, kept by ratelimits.py): `recall()` then starts from that size and rate, and sends as
many requests before the first answer as the bucket refills during one round trip (so that the
first answer finds it as full as it gets, not full and idle). The rate recalled stands until a
429 says it no longer holds, and while it stands a little is kept in the bucket (RECALLED_SPARE_SECONDS).

The pacer decides and the caller sleeps: `wait_time(now)` says how long to wait; 0 means send now
and holds a place for that request, which the caller reports at once with `sent()`. One pacer may
serve several jobs at once against one tenant (it is thread-safe).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import deque
from dataclasses import dataclass

from batchrunner import clock

# The rate is learned over answers at most this old (or as long as 30 requests take, for slow
# tenants, where the rounding of `remaining` weighs more), so that a tenant whose spare capacity
# shrinks (another client starts using it) is followed within these seconds.
RATE_WINDOW_SECONDS = 5.0
RATE_WINDOW_REQUESTS = 30
ANCHOR_SPACING_SECONDS = 0.05  # answers closer together than this add little to the bound
BOUND_MEMORY_SECONDS = 1.0  # the rate is the best bound of this long
REORDER_SECONDS = 0.02  # see _unordered
RECENT_ROUND_TRIPS = 32  # the spread of round trips is taken over this many answers
UNANSWERED_SECONDS = 40.0  # a request unanswered this long failed (http.TIMEOUT): count it no more
MAX_RECENT = 64
# Drained, nothing in flight, no rate known and no `x-ratelimit-reset`: probe this long after the
# last answer (a tenant that refills slower answers with a 429 that says when to come back).
IDLE_PROBE_SECONDS = 0.25
# Before any answer nothing is known of the bucket: no more than the smallest one Auth0 publishes
# holds (Free: 2) go out together, so a list's page 0 and its speculative page 1 (api.py), or two
# jobs starting at once, find room. A request unanswered this long no longer holds the next back
# (it may have failed without an answer; the server would have counted it by now).
FIRST_WAVE = 2
FIRST_WAVE_SECONDS = 5.0  # a busy machine or tenant may take seconds to answer; failures are forgotten at once
POLL_SECONDS = 0.005  # requests in flight, no rate known yet: the next answer will say more
ANSWER_POLL_SECONDS = 0.05  # requests in flight, a rate known: look again this often
# While the rate is an earlier process's (recall), the model counts on the true rate, not on a
# lower bound learned here, so it has no slack: an error of a fraction of a token (a round trip that
# differs, requests that reach the server bunched) meets a 429. A night of 100 tenants whose runs
# recalled their buckets met one in about one run of a hundred, a few requests after the burst (seen
# at the stand-in: the model a token above the bucket, 50 ms of refill at 20/s), where runs that
# learned their rate met none. What the bucket refills in this long is kept (a token at 20/s, a
# tenth of one at Free's 2/s, never a quarter of the bucket or more); it costs a run this long, once.
RECALLED_SPARE_SECONDS = 0.05
# The server's clock and ours differ a little; never count on its reset before ours says so.
RESET_MARGIN_SECONDS = 0.1
MAX_RESET_SECONDS = 60.0


@dataclass
class _Answer:
    seq: int  # send sequence number of the request it answered
    remaining: int
    sent_at: float  # when that request went out
    at: float  # when the answer arrived
    reset_at: float | None = None  # none left: when the server said a request is added again


@dataclass(frozen=True)
class Seen:
    """What a pacer knew of its bucket at one moment: what the next process starts from."""

    limit: int  # the bucket's size
    rate: float  # a lower bound on its refill rate, requests a second
    round_trip: float  # the shortest round trip seen, seconds
    remaining: float  # what the bucket held then, as the pacer reckoned it
    at: float  # that moment, Unix seconds


class Pacer:
    def __init__(self):
        self._lock = threading.Lock()
        self.turn = threading.Lock()  # held by the one caller waiting for the next request's room (api.py)
        self._now = 0.0  # the latest time any call passed in
        self._reserved: deque[float] = deque()  # times wait_time said "send now", not yet sent()
        self._sends = _SendLog()
        self._unanswered: dict[int, float] = {}  # send times of requests not answered yet
        self._newest: _Answer | None = None  # the answer to the latest request answered
        self._recent: list[tuple[_Answer, int]] = []  # see _review
        self._sent_since_review = 0
        self._anchors: deque[_Answer] = deque()  # earlier answers to learn the rate against
        self._bounds: deque[tuple[float, float]] = deque()  # (when, lower bound on the rate)
        self._limit: int | None = None
        self._rate: float | None = None
        self._rate_since_hold = False
        self._recalled_rate: float | None = None  # an earlier process's, until a 429 says it no longer holds
        self._best_rate: float | None = None  # the best learned (or recalled) since the last 429: what seen() passes on
        self._first_wave = FIRST_WAVE
        self._wave_claimed = False
        self._round_trip: float | None = None  # the shortest seen
        self._round_trips: deque[float] = deque(maxlen=RECENT_ROUND_TRIPS)
        self._hold = 0.0
        self._answered = False  # any answer yet, with or without x-ratelimit-* headers

    def wait_time(self, now: float) -> float:
        """Seconds to wait before the next request may go out; 0 means send it now (and call sent())."""
        with self._lock:
            self._now = max(self._now, now)
            wait = self._wait(now)
            if wait <= 0:
                self._reserved.append(now)
                return 0.0
            return wait

    def sent(self) -> int:
        """Call when a request goes out; returns its sequence number for `observe`."""
        with self._lock:
            seq = self._sends.add(self._reserved.popleft() if self._reserved else self._now)
            self._unanswered[seq] = self._sends.sent_at(seq)
            self._sent_since_review += 1
            return seq

    def observe(self, seq: int, headers, now: float, epoch: float | None = None) -> None:
        """Learn from the answer to request `seq`, arrived at `now` (`epoch`: the same moment in Unix seconds)."""
        limit, remaining = _int(headers.get("x-ratelimit-limit")), _int(headers.get("x-ratelimit-remaining"))
        with self._lock:
            self._now = max(self._now, now)
            self._answered = True
            sent_at = self._unanswered.pop(seq, None)
            if remaining is None or sent_at is None:
                self._review()
                return
            self._round_trips.append(now - sent_at)
            self._round_trip = min(self._round_trip or now - sent_at, now - sent_at)
            self._limit = limit or self._limit
            reset_at = self._reset_moment(headers, now, epoch) if remaining == 0 else None
            answer = _Answer(seq, remaining, sent_at, now, reset_at)
            self._recent.append((answer, 0))
            newest = self._newest is None or seq > self._newest.seq
            if newest:
                self._newest = answer
            self._review()
            if newest:  # a late answer to an older request is no later count
                self._learn_rate(answer)

    def forget(self, seq: int, now: float) -> None:
        """Request `seq` got no answer (a connection error): it holds no place any more."""
        with self._lock:
            self._now = max(self._now, now)
            self._unanswered.pop(seq, None)
            self._review()

    def hold_until(self, moment: float) -> None:
        """Send nothing before `moment` (the server answered 429 and said when to come back)."""
        with self._lock:
            self._hold = max(self._hold, moment)
            # A request went out that found no token: trust half the rate, once per refusal, and
            # learn it again from answers with no refused request between them.
            self._anchors.clear()
            self._bounds.clear()
            if self._recalled_rate is not None:
                # An earlier process's rate no longer holds (the plan changed, say): halving it may
                # still be far off (50/s to 2/s), so it is learned afresh, a token kept meanwhile.
                self._rate = None
            elif self._rate and self._rate_since_hold:
                self._rate /= 2
            self._rate_since_hold = False
            self._recalled_rate = self._best_rate = None  # seen() passes on no rate until one is learned

    def recall(self, seen: Seen, epoch: float, shared: bool = False) -> None:
        """Start from what an earlier process saw of this bucket; `epoch` is now in Unix seconds.

        Only a pacer that has sent nothing takes it. The first wave is what the bucket refills during
        one round trip, and no more than the level it should be back at by now (another process of
        the runner may have left it drained a moment ago); `shared`: another process may be drawing
        from it right now, so the first wave stays FIRST_WAVE. A Seen without a rate gives the size.
        """
        with self._lock:
            if self._sends.count or self._reserved or self._answered:
                return
            self._limit = seen.limit
            if seen.rate <= 0:
                return
            self._rate = self._recalled_rate = self._best_rate = seen.rate
            self._rate_since_hold = True
            level = min(seen.limit, seen.remaining + seen.rate * max(0.0, epoch - seen.at))
            wave = max(1, min(1 + math.ceil(seen.rate * seen.round_trip), math.floor(level)))
            self._first_wave = min(wave, FIRST_WAVE) if shared else wave

    def seen(self, now: float, epoch: float) -> Seen | None:
        """What this pacer knows of its bucket at `now` (`epoch` in Unix seconds), the rate 0 where it
        learned none (or the one recalled met a 429); None before any answer said the bucket's size."""
        with self._lock:
            if not (self._limit and self._newest and self._round_trip):
                return None
            level = min(max(self._available(now), 0.0), self._limit)
            return Seen(self._limit, self._best_rate or 0.0, self._round_trip, level, epoch)

    def first_wave_pages(self) -> int:
        """Pages a list may ask for beside page 0: the first wave less one, to the first list that asks
        before anything was sent through this pacer, and 0 to every other (lists started together)."""
        with self._lock:
            if self._wave_claimed or self._sends.count or self._reserved:
                return 0
            self._wave_claimed = True
            return self._first_wave - 1

    @property
    def limit(self) -> int | None:
        """The bucket's size, once an answer (or an earlier process) said it."""
        return self._limit

    @property
    def rate(self) -> float | None:
        return self._rate

    def _wait(self, now: float) -> float:
        if now < self._hold:
            return self._hold - now
        if not self._answered:
            # The bucket's size is unknown until the first answer: send what the smallest bucket
            # Auth0 publishes holds (Free's 2), since more at once could empty it; requests
            # unanswered for FIRST_WAVE_SECONDS (failed, say) hold nothing back.
            pending = sum(1 for at in self._unanswered.values() if at > now - FIRST_WAVE_SECONDS) + len(self._reserved)
            return 0.0 if pending < self._first_wave else POLL_SECONDS
        if self._newest is None:
            return 0.0  # answers that report no limit: none to keep to
        available = self._available(now)
        idle = not self._unanswered and not self._reserved
        if not self._rate:
            return self._wait_unknown_rate(now, available, idle)
        need = 1 + self._spare()
        if available >= need:
            return 0.0
        wait = (need - available) / self._rate
        reset_at = self._reset_at()
        if idle and reset_at is not None:
            return min(wait, reset_at - now)  # the server said when a request is added again
        # An answer on its way may show more room than the rate does (the rate is a lower bound).
        return wait if idle else min(wait, ANSWER_POLL_SECONDS)

    def _spare(self) -> float:
        """Tokens kept in the bucket while the rate is an earlier process's: see RECALLED_SPARE_SECONDS."""
        if self._recalled_rate is None or not self._limit:
            return 0.0
        return min(self._recalled_rate * RECALLED_SPARE_SECONDS, self._limit / 4)

    def _wait_unknown_rate(self, now: float, available: float, idle: bool) -> float:
        # Keep one token in the bucket until the rate is known, so that the answers go on saying
        # how it refills instead of leaving nothing to learn from but a blind probe.
        if available >= 2:
            return 0.0
        if not idle:
            return POLL_SECONDS  # the next answer will say more
        reset_at = self._reset_at()
        if available >= 1 or reset_at is None:
            # One probe a while after the last answer: it finds the token kept, or (no reset known,
            # another client took them) goes through or gets a 429 that says when to come back.
            return self._newest.at + IDLE_PROBE_SECONDS - now
        return reset_at - now  # drained: the server said when a request is added again

    def _reset_at(self) -> float | None:
        return max((a.reset_at for a, _ in self._recent if a.reset_at is not None), default=None)

    def _available(self, now: float) -> float:
        """Tokens the bucket will hold when a request sent now reaches the server: the least any recent answer implies."""
        least = min(self._implied(answer, now) - ahead for answer, ahead in self._recent)
        return least - self._sent_since_review - len(self._reserved)

    def _implied(self, answer: _Answer, now: float) -> float:
        # The server counted when the request reached it, between sending and the answer; a request
        # sent now reaches it after the same way there. Together: the answer's arrival less the
        # shortest round trip (exact where latency does not vary, and earlier than that where it does).
        since = max(0.0, now - (answer.at - self._round_trip))
        tokens = answer.remaining + (self._rate or 0.0) * since
        return min(tokens, self._limit) if self._limit else tokens

    def _review(self) -> None:
        """Keep the answers that may have been counted after the newest one.

        Each implies what remains less the requests still unanswered: any of them may reach the
        server after it (sent later, or sent earlier and overtaken, or held up on its way out on a
        busy machine). Requests already answered that reached the server after it are counted by
        their own answers, which the least of all takes in.
        """
        self._sent_since_review = 0
        self._unanswered = {seq: at for seq, at in self._unanswered.items() if at >= self._now - UNANSWERED_SECONDS}
        if self._newest is None:
            return
        horizon = self._newest.sent_at - 2 * self._unordered()
        recent = [a for a, _ in self._recent if a is self._newest or a.sent_at >= horizon][-MAX_RECENT:]
        self._recent = [(a, len(self._unanswered)) for a in recent]

    def _unordered(self) -> float:
        """How far apart two requests may be sent and still reach the server in either order.

        The spread of round trips, and at least REORDER_SECONDS whatever they say: each request goes
        out on its own connection and thread (new ones at first), and a server takes them on its own
        threads too. Seen: a first wave of 7 sent within 8 ms counted in the order 2, 3, 1, 7, 4, 5,
        6, which taken in sent order made a rate of 300/s out of 50; and a wave of 3 counted 1, 3, 2,
        whose answer to 2 (the fewest left) was dropped as older than 3's, and a request met a 429.
        """
        return max(self._spread(), REORDER_SECONDS)

    def _spread(self) -> float:
        return max(self._round_trips) - self._round_trip if self._round_trips else 0.0

    def _learn_rate(self, answer: _Answer) -> None:
        anchors = self._anchors
        window = max(RATE_WINDOW_SECONDS, RATE_WINDOW_REQUESTS / self._rate if self._rate else 0.0)
        while anchors and answer.at - anchors[0].at > window:
            anchors.popleft()
        best = max((self._bound(a, answer) for a in anchors), default=0.0)
        bounds = self._bounds
        while bounds and answer.at - bounds[0][0] > BOUND_MEMORY_SECONDS:
            bounds.popleft()
        if best > 0:
            # Answers to requests sent together show less each than the first of them; the best
            # bound of the last moments stands.
            bounds.append((answer.at, best))
            self._rate, self._rate_since_hold = max(max(b for _, b in bounds), self._recalled_rate or 0.0), True
            self._best_rate = max(self._best_rate or 0.0, self._rate)
        if not anchors or answer.at - anchors[-1].at >= ANCHOR_SPACING_SECONDS:
            anchors.append(answer)

    def _bound(self, earlier: _Answer, later: _Answer) -> float:
        """A lower bound on the refill rate from two answers (0 where they show none)."""
        spread = self._unordered()
        # Requests that certainly reached the server after `earlier` and no later than `later`:
        # not those sent with either within the spread of round trips, nor those still unanswered.
        counted_before = max(earlier.seq, self._sends.count_by(earlier.sent_at + spread))
        counted_by = min(later.seq, self._sends.count_before(later.sent_at - spread) + 1)
        counted_by -= sum(1 for seq in self._unanswered if counted_before < seq < counted_by)
        refilled = later.remaining - earlier.remaining - 1 + (counted_by - counted_before)
        span = later.at - self._round_trip - earlier.sent_at
        return refilled / span if refilled > 0 and span > 0 else 0.0

    def _reset_moment(self, headers, now: float, epoch: float | None) -> float | None:
        reset = _int(headers.get("x-ratelimit-reset"))
        if reset is None:
            return None
        if epoch is None:
            epoch = clock.utcnow().timestamp()
        return now + min(max(reset - epoch, 0.0), MAX_RESET_SECONDS) + RESET_MARGIN_SECONDS


class _SendLog:
    """When each request went out, by sequence number (1, 2, ...), non-decreasing; the recent ones kept."""

    KEEP = 4096

    def __init__(self):
        self.count = 0
        self._first = 1  # sequence number of _times[0]
        self._times: list[float] = []

    def add(self, moment: float) -> int:
        if self._times:
            moment = max(moment, self._times[-1])
        self._times.append(moment)
        self.count += 1
        if len(self._times) > 2 * self.KEEP:
            del self._times[: self.KEEP]
            self._first += self.KEEP
        return self.count

    def sent_at(self, seq: int) -> float | None:
        index = seq - self._first
        return self._times[index] if 0 <= index < len(self._times) else None

    def count_by(self, moment: float) -> int:
        """Requests sent at or before `moment` (those forgotten count as before)."""
        return self._first - 1 + bisect.bisect_right(self._times, moment)

    def count_before(self, moment: float) -> int:
        return self._first - 1 + bisect.bisect_left(self._times, moment)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

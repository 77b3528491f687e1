#!/usr/bin/env python3
"""The pacer against a simulated token bucket, in simulated time: no sockets, no noise from a busy
machine, the same figures every time.

An export as api.py makes it: the pacer's first wave (page 0 and the pages asked beside it), then as
many pages in flight as the bucket holds (16 to 50), new ones submitted as the oldest completes; a 429
holds every page until the server's reset, then retries. The bucket is the
stand-in tenant's (continuous refill, `remaining` rounded down, `reset` in epoch seconds). For each
rate and burst: the time from the first request to the last answer beside the floor,
(pages - burst) / rate + latency, and the 429s. Variants: latency split unevenly between the ways
there and back, latency that varies (answers overtake one another), sends held up after the pacer
let them go (a busy machine), and another client that used up the bucket just before the export
started (beside pages / rate + latency: no burst left to spend), and "warm": a second export whose
pacer recalled what the first one saw (as ratelimits.py passes it from one process to the next).

Usage: python bench/pacing.py [--pages N] [--latency S]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batchrunner.auth0.api import MAX_IN_FLIGHT, MIN_IN_FLIGHT  # noqa: E402
from batchrunner.auth0.pacing import Pacer  # noqa: E402
from batchrunner.auth0.retry import server_wait  # noqa: E402

SLEEP_OVERSHOOT = 0.0005  # a thread wakes a little after the time it asked for
EPOCH = 1_700_000_000.3  # the server's clock at simulated time 0


class Bucket:
    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.level: float | None = None
        self.at = 0.0
        self.refused = 0

    def take(self, t: float) -> tuple[bool, dict]:
        if self.level is None:
            self.level = float(self.burst)
        self.level = min(float(self.burst), self.level + (t - self.at) * self.rate)
        self.at = t
        allowed = self.level >= 1
        if allowed:
            self.level -= 1
        else:
            self.refused += 1
        reset = math.ceil(EPOCH + t + max(0.0, 1 - self.level) / self.rate)
        return allowed, {"x-ratelimit-limit": str(self.burst), "x-ratelimit-remaining": str(int(self.level)),
                         "x-ratelimit-reset": str(reset)}


def export(rate, burst, pages=100, latency=0.1, split=0.5, jitter=0.0, drained_by_other=False, held_up=0.0, seed=1,
           warm=False):
    """Seconds from the first request to the last answer, and the 429s, for one simulated export."""
    pacer = None
    if warm:
        pacer, finished = _export(rate, burst, pages, latency, split, jitter, False, held_up, seed)[2:]
        seen = pacer.seen(finished, EPOCH + finished)
        pacer = Pacer()
        pacer.recall(seen, EPOCH + finished + 3600)  # the next night
    return _export(rate, burst, pages, latency, split, jitter, drained_by_other, held_up, seed, pacer)[:2]


def _export(rate, burst, pages, latency, split, jitter, drained_by_other, held_up, seed, pacer=None):
    rng = random.Random(seed)
    pacer, bucket = pacer or Pacer(), Bucket(rate, burst)
    events, order = [], itertools.count()
    first = 1 + pacer.first_wave_pages()  # page 0 and the pages asked beside it (api.py)
    done, window, upcoming = set(), list(range(1, first)), iter(range(first, pages))
    finished = [0.0]

    def at(t, fn, *args):
        heapq.heappush(events, (t, next(order), fn, args))

    def legs():
        total = latency * (1 + rng.uniform(-jitter, jitter))
        # A busy machine: one send in five held up on its way out after the pacer let it go.
        late = rng.uniform(0, held_up) if rng.random() < 0.2 else 0.0
        return late + total * split, total * (1 - split)

    def pace(t, page):
        wait = pacer.wait_time(t)
        if wait > 0:
            at(t + wait + SLEEP_OVERSHOOT, pace, page)
            return
        seq = pacer.sent()
        there, back = legs()
        at(t + there, serve, page, seq, back)

    def serve(t, page, seq, back):
        allowed, headers = bucket.take(t)
        at(t + back, answer, page, seq, allowed, headers)

    def answer(t, page, seq, allowed, headers):
        pacer.observe(seq, headers, t, EPOCH + t)
        if not allowed:
            pacer.hold_until(t + (server_wait(headers, EPOCH + t) or 1.0))
            at(t + (server_wait(headers, EPOCH + t) or 1.0) + rng.uniform(0, 0.05), pace, page)
            return
        done.add(page)
        finished[0] = t
        if page == 0:
            in_flight = max(MIN_IN_FLIGHT, min(MAX_IN_FLIGHT, pacer.limit or 0))
            for nxt in itertools.islice(upcoming, in_flight - len(window)):
                window.append(nxt)
                at(t, pace, nxt)
        while window and window[0] in done:
            window.pop(0)
            nxt = next(upcoming, None)
            if nxt is not None:
                window.append(nxt)
                at(t, pace, nxt)

    if drained_by_other:
        for _ in range(burst + 2):
            bucket.take(-0.01)
        bucket.refused = 0
    for page in range(first):
        at(0.0, pace, page)
    while events:
        t, _, fn, args = heapq.heappop(events)
        fn(t, *args)
    return finished[0], bucket.refused, pacer, finished[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    pages, latency = args.pages, args.latency
    variants = [("even", {}), ("there 0", {"split": 0.0}), ("back 0", {"split": 1.0}),
                ("jitter 30%", {"jitter": 0.3}),
                ("held up 50ms", {"held_up": 0.05}), ("drained", {"drained_by_other": True}), ("warm", {"warm": True})]
    print(f"simulated export of {pages} pages, {latency * 1000:.0f} ms latency: seconds / floor, 429s")
    print(f"{'rate':>6} {'burst':>5} {'floor':>6}  " + "  ".join(f"{name:>14}" for name, _ in variants))
    for rate, burst in [(2, 2), (2, 10), (16, 50), (20, 10), (50, 50), (50, 10), (10, 10), (100 / 60, 5)]:
        floor = (pages - burst) / rate + latency
        cells = []
        for _, kw in variants:
            seconds, refused = export(rate, burst, pages, latency, **kw)
            # Drained by another client, the export starts with no burst to spend.
            cells.append(f"{seconds / (pages / rate + latency if kw.get('drained_by_other') else floor):>8.3f} {refused:>3}x")
        print(f"{rate:>4.4g}/s {burst:>5} {floor:>6.2f}  " + "  ".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    main()

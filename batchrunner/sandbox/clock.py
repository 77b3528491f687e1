"""The stand-in tenant's clock: the wall clock plus an offset a test can move forward, so link expiry,
log retention and rate buckets are tested without sleeping."""

from __future__ import annotations

import time


class SandboxClock:
    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0

"""Endpoint rate buckets of Auth0's Essentials, Professional and B2B plans, beside the tenant's global
bucket (tenant.py). Auth0 checks the global limit first, then the endpoint's; the headers a client
sees come from whichever bucket is tighter. Sources: research/auth0-jobs.md section 2 (Auth0's
"Rate limit configurations" pages, essentials-professional-b2b).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

# Bucket name -> (burst, requests per minute), as Auth0 publishes them for Essentials.
ESSENTIALS = {
    "Read Clients": (5, 100),
    "Read Logs": (10, 100),
    "Read Connections": (5, 50),
    "Read Organizations": (5, 50),
    "Read Organization Members": (40, 500),
    "Read Users": (40, 500),
    "Write Users": (10, 200),  # POST and PATCH /users (research/auth0-operators-next.md)
    "Delete Users": (10, 200),
    "All other Endpoints Combined": (10, 150),
}
OTHER = "All other Endpoints Combined"


@dataclass
class Taken:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch second at which a request is next added

    def headers(self) -> dict[str, str]:
        return {"x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": str(self.remaining),
                "x-ratelimit-reset": str(self.reset)}


class TokenBucket:
    """`burst` requests at once, refilled at `per_minute` / 60 a second."""

    def __init__(self, burst: int, per_minute: float):
        self.burst, self.per_second = burst, per_minute / 60.0
        self._level: float | None = None
        self._at = 0.0

    def take(self, now: float) -> Taken:
        if self._level is None:
            self._level, self._at = float(self.burst), now
        self._level = min(float(self.burst), self._level + max(0.0, now - self._at) * self.per_second)
        self._at = now
        allowed = self._level >= 1
        if allowed:
            self._level -= 1
        reset = math.ceil(now + max(0.0, 1 - self._level) / self.per_second)
        return Taken(allowed, self.burst, int(self._level), reset)


class EndpointBuckets:
    """Per-endpoint buckets, off unless `enabled`; `limits` may be replaced (bucket -> (burst, per minute))."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.enabled = False
            self.limits = dict(ESSENTIALS)
            self._buckets: dict[str, TokenBucket] = {}

    def take(self, name: str, now: float) -> Taken | None:
        """None when endpoint buckets are off."""
        if not self.enabled:
            return None
        name = name if name in self.limits else OTHER
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = TokenBucket(*self.limits[name])
            return bucket.take(now)


def tighter(global_headers: dict[str, str], endpoint: Taken | None) -> dict[str, str]:
    """The x-ratelimit-* headers of the bucket with fewer requests left (the later reset on a tie)."""
    if endpoint is None:
        return global_headers
    if not global_headers:
        return endpoint.headers()
    ours = (int(global_headers["x-ratelimit-remaining"]), -int(global_headers["x-ratelimit-reset"]))
    theirs = (endpoint.remaining, -endpoint.reset)
    return endpoint.headers() if theirs < ours else global_headers

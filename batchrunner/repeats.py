"""Warnings that repeat, summarised: the first of a kind is logged at once, its repeats within a
window are counted and told in one line (issue 19: a storm of 429s logged a warning a second).

A kind is the message with its paths and URLs left out: `HTTP 429 from GET /api/v2/roles/rol_1/users`
and `... /rol_2/users` are one kind, `HTTP 503 from GET ...` another.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from typing import Callable

WINDOW_SECONDS = 30.0
_PATH = re.compile(r"(?:https?:/)?/\S*")


class Repeats:
    def __init__(self, log: logging.Logger, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.log, self.window, self.clock = log, window, clock
        self._lock = threading.Lock()
        self._kinds: dict[str, list] = {}  # kind -> [window start, repeats counted, format]

    def warning(self, fmt: str, message: str) -> None:
        """Log `fmt % message` unless a warning of its kind was logged within the window; then count it."""
        kind = _PATH.sub("…", message)
        now = self.clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen[0] < self.window:
                seen[1] += 1
                return
            self._kinds[kind] = [now, 0, fmt]
        if seen is not None:
            self._summary(kind, seen, now)
        self.log.warning(fmt, message)

    def flush(self) -> None:
        """Tell the repeats counted and not yet told (the run is ending)."""
        now = self.clock()
        with self._lock:
            kinds, self._kinds = self._kinds, {}
        for kind, seen in kinds.items():
            self._summary(kind, seen, now)

    def _summary(self, kind: str, seen: list, now: float) -> None:
        start, count, fmt = seen
        if count:
            span = math.ceil(max(1.0, min(now - start, self.window)))
            self.log.warning("%s: %d more %s within %d s", fmt % kind, count, "time" if count == 1 else "times", span)

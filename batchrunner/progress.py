"""A status line for a person watching a run on a terminal, rewritten in place:
`export-clients: page 3 of 100, 300 rows, 19.6 req/s`, or `..., waiting 1.2 s for the rate limit`.

Log lines go to the same terminal. The log handler (logs.py) calls `end_line()` under `LOCK`
before it writes, so a log line starts a line of its own instead of continuing the status line
(issue 9: `page 1 of 502026-11-25T...`). Nothing is drawn where the stream is no terminal.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, TextIO

LOCK = threading.RLock()  # held while the status line or a log line is written
CLEAR_TO_END = "\x1b[K"  # erases what a longer earlier status left on the line
_showing: "Progress | None" = None  # the status line the cursor stands at the end of


def end_line() -> None:
    """End the status line being shown, if any, so the next output starts a line of its own."""
    global _showing
    with LOCK:
        if _showing is not None:
            _showing.stream.write("\n")
            _showing.stream.flush()
            _showing = None


class Progress:
    def __init__(self, label: str, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        self.label, self.stream, self.clock = label, stream, clock
        self.started = clock()
        self.page = self.pages = self.rows = 0
        self.rate = 0.0

    @classmethod
    def on_terminal(cls, label: str, stream: TextIO | None = None) -> "Progress | None":
        """A Progress writing to `stream` (stderr) when it is a terminal; else None."""
        stream = stream if stream is not None else sys.stderr
        return cls(label, stream) if stream.isatty() else None

    def update(self, page: int, pages: int, rows: int, requests: int) -> None:
        """Page `page` of `pages` is in, `rows` items so far, after `requests` requests."""
        elapsed = self.clock() - self.started
        with LOCK:
            self.page, self.pages, self.rows = page, pages, rows
            self.rate = requests / elapsed if elapsed > 0 else 0.0
            self._draw(f"{self._where()}, {self.rate:.1f} req/s")

    def waiting(self, seconds: float) -> None:
        """A request waits `seconds` for room in the rate limit (any thread may say so)."""
        with LOCK:
            self._draw(f"{self._where()}, waiting {seconds:.1f} s for the rate limit")

    def close(self) -> None:
        with LOCK:
            if _showing is self:
                end_line()

    def _where(self) -> str:
        if not self.pages:
            return f"{self.label}: first page"
        return f"{self.label}: page {self.page} of {self.pages}, {self.rows} rows"

    def _draw(self, text: str) -> None:
        global _showing
        if _showing is not None and _showing is not self:
            end_line()
        self.stream.write(f"\r{text}{CLEAR_TO_END}")
        self.stream.flush()
        _showing = self

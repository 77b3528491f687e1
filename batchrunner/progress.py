"""A status line for a person watching a run on a terminal, rewritten in place:
`export-clients: page 3 of 100, 300 rows, 19.6 req/s`, or `..., waiting 1.2 s for the rate limit`.

Every long job keeps one (issue 19): the offset pages of `export-clients`, the tables and rows of
`snapshot`, the events and files of `export-logs`, Auth0's export job and then the rows of
`export-users`. A wait (the rate limit, Auth0's job) counts down on the line while it lasts.

Log lines go to the same terminal. The log handler (logs.py) calls `end_line()` under `LOCK`
before it writes, so a log line starts a line of its own instead of continuing the status line
(issue 9: `page 1 of 502026-11-25T...`). Nothing is drawn where the stream is no terminal.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, Iterable, Iterator, TextIO

from batchrunner.cli.render import plural

LOCK = threading.RLock()  # held while the status line or a log line is written
CLEAR_TO_END = "\x1b[K"  # erases what a longer earlier status left on the line
TICK_SECONDS = 0.2  # how often a countdown is redrawn
COUNT_EVERY = 500  # items between two looks at the clock in `counted`
REDRAW_SECONDS = 0.1  # a status told more often than this is drawn at most this often
RATE_LIMIT = "for the rate limit"
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
        self._status: str | None = None  # what the job says it does; None: offset paging (update)
        self._last, self._drawn_at = "", float("-inf")  # the text last drawn, and when
        self._wait: tuple[float, str] | None = None  # (until, what for): a countdown on the line
        self._ticker: threading.Thread | None = None
        self._closed = threading.Event()

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
            self._status = None
            self._redraw()

    def show(self, status: str, now: bool = True) -> None:
        """The job now does `status` ("3 of 9 tables, 1,200 rows"); `now=False`: drawn unless it was drawn
        under REDRAW_SECONDS ago (a status told for every item must not cost a write each)."""
        with LOCK:
            self._status = status
            if now or self.clock() - self._drawn_at >= REDRAW_SECONDS:
                self._redraw()

    def counted(self, items: Iterable, status: Callable[[int], str]) -> Iterator:
        """`items`, unchanged, with the line showing `status(count so far)` as they pass."""
        count = 0
        for item in items:
            yield item
            count += 1
            if count == 1 or count % COUNT_EVERY == 0:
                self.show(status(count), now=False)
        self.show(status(count))

    def waiting(self, seconds: float, what: str = RATE_LIMIT) -> None:
        """A wait of `seconds` begins (any thread may say so); the line counts it down until it ends."""
        with LOCK:
            self._wait = (self.clock() + seconds, what)
            self._redraw()
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
                self._ticker.start()

    def close(self) -> None:
        self._closed.set()
        with LOCK:
            if _showing is self:
                end_line()

    def _where(self) -> str:
        if self._status is not None:
            return f"{self.label}: {self._status}"
        if not self.pages:
            return f"{self.label}: first page"
        return f"{self.label}: page {self.page} of {self.pages}, {plural(self.rows, 'row')}"

    def _text(self) -> str:
        if self._wait is not None:
            left = self._wait[0] - self.clock()
            if left > 0:
                return f"{self._where()}, waiting {left:.1f} s {self._wait[1]}"
            self._wait = None
        if self._status is None and self.pages:
            return f"{self._where()}, {self.rate:.1f} req/s"
        return self._where()

    def _redraw(self) -> None:
        self._draw(self._text())

    def _tick(self) -> None:
        """Redraw while a wait counts down; only when the line would change."""
        while not self._closed.wait(TICK_SECONDS):
            with LOCK:
                if self._wait is not None and not self._closed.is_set() and self._text() != self._last:
                    self._redraw()

    def _draw(self, text: str) -> None:
        global _showing
        if _showing is not None and _showing is not self:
            end_line()
        self.stream.write(f"\r{text}{CLEAR_TO_END}")
        self.stream.flush()
        self._last, self._drawn_at = text, self.clock()
        _showing = self


class Tally:
    """Items counted from several threads and parts finished, on one line: `3 of 9 tables, 12,345 rows`."""

    def __init__(self, progress: Progress, parts: int, part: str = "tables", item: str = "rows"):
        self.progress, self.parts, self.part, self.item = progress, parts, part, item
        self.done = self.items = 0
        self._lock = threading.Lock()
        progress.show(self._status())

    def counting(self, items: Iterable) -> Iterator:
        for item in items:
            yield item
            with self._lock:
                self.items += 1
                due = self.items % COUNT_EVERY == 0
            if due:
                self.progress.show(self._status(), now=False)

    def part_done(self) -> None:
        with self._lock:
            self.done += 1
        self.progress.show(self._status())

    def _status(self) -> str:
        return f"{self.done} of {self.parts} {self.part}, {self.items:,} {self.item if self.items != 1 else self.item[:-1]}"

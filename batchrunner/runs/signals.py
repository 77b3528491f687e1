"""Signals for foreground commands: SIGTERM behaves like Ctrl-C, so a run in progress is recorded."""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (systemd stop, kill, a CronJob's deadline)."""


@contextmanager
def interrupt_on_sigterm(cancel: threading.Event | None = None):
    """SIGTERM raises `Terminated`; SIGTERM or Ctrl-C sets `cancel` (the run's) the instant it arrives.

    The run's page threads stop asking at once, not after the job has unwound: its `finally` blocks,
    the end of its heartbeat and the removal of its scratch files took long enough on PostgreSQL for
    a snapshot's list threads to ask six more pages (README, "Jobs and runs").
    """
    watcher = _Watcher.start(cancel) if cancel is not None else None

    def on_term(signum, frame):
        if watcher:
            watcher.poke()
        raise Terminated()

    def on_int(signum, frame):
        if watcher:
            watcher.poke()
        raise KeyboardInterrupt()

    previous = signal.signal(signal.SIGTERM, on_term)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:  # a handler someone else set is theirs to keep
        signal.signal(signal.SIGINT, on_int)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        if watcher:
            watcher.close()


class _Watcher:
    """Sets the event from a thread of its own when the handler pokes it through a pipe. A handler
    runs in the main thread between two of its instructions, and must take no lock: at that instant
    the main thread may hold the event's own (inside its wait on it), or threading's while it starts
    a thread, and would wait for itself for good. os.write takes none."""

    def __init__(self, cancel: threading.Event):
        self._read, self._write = os.pipe()
        self._thread = threading.Thread(target=self._wait, args=(cancel,), name="signal-watch", daemon=True)

    @classmethod
    def start(cls, cancel: threading.Event) -> "_Watcher | None":
        watcher = cls(cancel)
        try:
            watcher._thread.start()
        except RuntimeError:  # no thread to be had: the run's end sets the event, a moment later
            os.close(watcher._read)
            os.close(watcher._write)
            return None
        return watcher

    def _wait(self, cancel: threading.Event) -> None:
        try:
            if os.read(self._read, 1) == b"!":
                cancel.set()
        finally:
            os.close(self._read)

    def poke(self) -> None:
        try:
            os.write(self._write, b"!")
        except OSError:
            pass

    def close(self) -> None:
        try:
            os.write(self._write, b".")  # the run is over: the watcher ends
        except OSError:
            pass
        os.close(self._write)

"""Signals for foreground commands: SIGTERM behaves like Ctrl-C, so a run in progress is recorded."""

from __future__ import annotations

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

    def cancelled() -> None:
        # From a thread of its own: at the instant of the signal the main thread may hold the
        # event's lock (inside its own wait on it), and Event.set would wait for it for good.
        if cancel is not None and not cancel.is_set():
            threading.Thread(target=cancel.set, name="cancel-run", daemon=True).start()

    def on_term(signum, frame):
        cancelled()
        raise Terminated()

    def on_int(signum, frame):
        cancelled()
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

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
    """SIGTERM raises `Terminated`; SIGTERM or Ctrl-C sets `cancel` (the run's) as the handler runs.

    The run's page threads stop asking at once, not after the job has unwound: its `finally` blocks,
    the end of its heartbeat and the removal of its scratch files took long enough on PostgreSQL for
    a snapshot's list threads to ask six more pages (README, "Jobs and runs").
    """
    setter = SafeSetter.start(cancel) if cancel is not None else None

    def raising(interruption: type[KeyboardInterrupt]):
        def handler(signum, frame):
            if setter:
                setter.poke()
            raise interruption()
        return handler

    replaced_int = False
    try:
        previous = signal.signal(signal.SIGTERM, raising(Terminated))
        try:
            previous_int = signal.getsignal(signal.SIGINT)
            if previous_int is signal.default_int_handler:  # a handler someone else set is theirs to keep
                signal.signal(signal.SIGINT, raising(KeyboardInterrupt))
                replaced_int = True
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
            if replaced_int:
                signal.signal(signal.SIGINT, previous_int)
    finally:
        if setter:
            setter.close()


class SafeSetter:
    """Sets an event for a signal handler, from a thread of its own that the handler pokes through a
    pipe. A handler runs in the main thread between two of its instructions and must take no lock:
    at that instant the main thread may hold the event's own (inside its wait on it), or threading's
    while it starts a thread, and would wait for itself for good. os.write takes none."""

    def __init__(self, event: threading.Event):
        self._read, self._write = os.pipe()
        self._thread = threading.Thread(target=self._wait, args=(event,), name="signal-setter", daemon=True)

    @classmethod
    def start(cls, event: threading.Event) -> "SafeSetter | None":
        """None when no thread can be had (the process is out of them); the caller then sets the event itself."""
        setter = cls(event)
        try:
            setter._thread.start()
        except RuntimeError:
            os.close(setter._read)
            os.close(setter._write)
            return None
        return setter

    def _wait(self, event: threading.Event) -> None:
        try:
            if os.read(self._read, 1) == b"!":
                event.set()
        finally:
            os.close(self._read)

    def poke(self) -> None:
        try:
            os.write(self._write, b"!")
        except OSError:  # the event is set already (the thread has ended), or being set
            pass

    def close(self) -> None:
        try:
            os.write(self._write, b".")  # done with: the thread ends
        except OSError:
            pass
        finally:
            os.close(self._write)

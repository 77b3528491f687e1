"""Signals for foreground commands: SIGTERM behaves like Ctrl-C, so a run in progress is recorded."""

from __future__ import annotations

import signal
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (systemd stop, kill, a CronJob's deadline)."""


@contextmanager
def interrupt_on_sigterm():
    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

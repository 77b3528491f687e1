"""Timeouts (SPEC section 16): a run past its job's time limit ends and is recorded `failed`.

The job runs in the thread that records the run, so ending it unwinds the job itself: its
`finally` blocks and atomic files clean up (no partial output), and the run is recorded by the
one wrapper that records every run. How the job is ended depends on that thread:

- the main thread (`runner run-job`): SIGALRM raises `TimedOut` in the job at the deadline, even
  inside `time.sleep` or a blocking read;
- a scheduler thread (`runner serve`): at the deadline the run's cancel event is set (API calls
  stop, `ctx.stopping` is set) and `TimedOut` is raised in the job's thread, which ends at its next
  Python instruction. A job blocked in one long C call (a `time.sleep(3600)`) ends when that call
  returns; until then its run stays `running`, so no second run of the job overlaps it. The API's
  reads time out after 30 s, so the bundled jobs end within that.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Mapping

from .errors import ConfigError

OFF = ("off", "none", "0")


class TimedOut(BaseException):
    """Raised inside a job at its deadline. A BaseException, so a job's `except Exception` keeps it going out."""

    def __init__(self, seconds: float = 0.0):
        super().__init__(seconds)
        self.seconds = seconds

    def message(self) -> str:
        return f"timed out after {self.seconds:g} s"


def variable(job_name: str) -> str:
    return "RUNNER_TIMEOUT_" + job_name.upper().replace("-", "_")


def effective(job_name: str, default: float | None, env: Mapping[str, str]) -> float | None:
    """The job's limit in seconds: RUNNER_TIMEOUT_<JOB> (a number, or `off`), else the job's own; None: none."""
    name = variable(job_name)
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text in OFF:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 10**7 or seconds != seconds:
        raise ConfigError(name, f"{text!r} is not a number of seconds; give e.g. 3600, or 'off' for no limit")
    return seconds


@contextmanager
def limit(seconds: float | None, cancel: threading.Event) -> Iterator[None]:
    """Raise `TimedOut` in this thread if the block is still running `seconds` from now."""
    if seconds is None:
        yield
        return
    if threading.current_thread() is threading.main_thread():
        with _alarm(seconds, cancel):
            yield
    else:
        with _watchdog(seconds, cancel):
            yield


@contextmanager
def _alarm(seconds: float, cancel: threading.Event) -> Iterator[None]:
    armed = [True]

    def fire(signum, frame):
        if armed[0]:
            armed[0] = False
            cancel.set()
            raise TimedOut(seconds)

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _watchdog(seconds: float, cancel: threading.Event) -> Iterator[None]:
    target = threading.get_ident()
    lock = threading.Lock()
    armed = [True]

    def fire():
        with lock:
            if not armed[0]:
                return
            armed[0] = False
            cancel.set()
            _raise_in(target, TimedOut)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.name = f"timeout-{target}"
    timer.start()
    try:
        yield
    except TimedOut:
        raise TimedOut(seconds) from None  # raised as a class in the thread: give it its seconds
    finally:
        with lock:
            timer.cancel()
            if armed[0]:
                armed[0] = False
            else:
                _raise_in(target, None)  # fired: a pending exception must not surface after this block


def _raise_in(thread_id: int, exc_type) -> None:
    # CPython's way to end another thread at its next instruction (used by debuggers and func_timeout);
    # None clears an exception not yet delivered.
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type else None)


def check(env: Mapping[str, str], jobs: dict) -> None:
    """At start: every RUNNER_TIMEOUT_ variable names a job and holds a valid limit (ConfigError, exit 2)."""
    known = {variable(name): job for name, job in jobs.items()}
    for name in sorted(env):
        if name.startswith("RUNNER_TIMEOUT_"):
            if name not in known:
                raise ConfigError(name, f"names no registered job; expected one of {', '.join(sorted(known)) or 'none'}")
            effective(known[name].name, known[name].timeout, env)

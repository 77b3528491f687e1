"""Timeouts (README, "Operating it unattended"): a run past its job's time limit ends and is recorded `failed`.

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

Either way the job is ended again every AGAIN_SECONDS until it has ended (at once when the
interruption was ignored in a finaliser), and a run past its deadline is recorded timed out
whatever its end raised.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import sys
import threading
from typing import Mapping

from batchrunner.errors import ConfigError
from batchrunner.runs.signals import SafeSetter

OFF = ("off", "none", "0")
# Past the deadline a job is ended again this often until it ends: an interruption can be lost (a
# `__del__` or weakref callback ignores it, a job's `except BaseException` catches it). Long enough
# for the first one's cleanup (its `finally` blocks, atomic files) to run undisturbed.
AGAIN_SECONDS = 2.0

log = logging.getLogger("runner.run")


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


def call(seconds: float | None, cancel: threading.Event, func, *args):
    """`func(*args)`, ended with `TimedOut` if still running `seconds` from now, and ended again until
    it ends. Past the deadline, whatever comes out is `TimedOut`: the error of a cleanup that the
    interruption broke (PostgreSQL's, in the middle of a query) or even a return."""
    if seconds is None:
        return func(*args)
    watch = _Alarm(seconds, cancel) if threading.current_thread() is threading.main_thread() else _Watchdog(seconds, cancel)
    tracing = sys.gettrace()
    with watch:
        try:
            result = _limited(func, args)
        except TimedOut:
            raise TimedOut(seconds) from None  # sent as a class into another thread: give it its seconds
        except BaseException as exc:
            if watch.fired and not isinstance(exc, KeyboardInterrupt):  # SIGTERM and Ctrl-C stay interruptions
                raise TimedOut(seconds) from exc
            raise
        finally:
            sys.settrace(tracing)  # as it was, should a finaliser have turned it on (_unraisable)
        if watch.fired:
            raise TimedOut(seconds)
        return result


def _limited(func, args):
    """The frame the job runs under: an interruption is sent only while it is on the thread's stack."""
    return func(*args)


def _inside(frame) -> bool:
    while frame is not None:
        if frame.f_code is _limited.__code__:
            return True
        frame = frame.f_back
    return False


class _Alarm:
    """The main thread (`run-job`): SIGALRM at the deadline and every AGAIN_SECONDS after it."""

    def __init__(self, seconds: float, cancel: threading.Event):
        self.seconds, self.cancel, self.fired, self.ended = seconds, cancel, False, False

    def __enter__(self):
        self._setter = SafeSetter.start(self.cancel)
        try:
            self._previous = signal.signal(signal.SIGALRM, self._fire)
            _watches[threading.get_ident()] = self
            signal.setitimer(signal.ITIMER_REAL, self.seconds, AGAIN_SECONDS)
        except BaseException:
            if self._setter:
                self._setter.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.ended = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous)
        _watches.pop(threading.get_ident(), None)
        if self._setter:
            self._setter.close()
        if self.fired:
            self.cancel.set()  # in ordinary code, whether or not the setter has got to it (or could start)

    def _fire(self, signum, frame) -> None:
        if self.ended or not _inside(frame):
            return
        self.fired = True
        if self._setter:
            self._setter.poke()  # never Event.set in a handler (runs/signals.py, SafeSetter)
        raise TimedOut(self.seconds)


class _Watchdog:
    """A scheduler thread (`serve`): a thread raises `TimedOut` in it at the deadline, and again every
    AGAIN_SECONDS while the job is still running."""

    def __init__(self, seconds: float, cancel: threading.Event):
        self.seconds, self.cancel, self.fired = seconds, cancel, False
        self.target = threading.get_ident()
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"timeout-{self.target}", daemon=True)

    def __enter__(self):
        _watches[self.target] = self
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._ended.set()
            if self.fired:
                _raise_in(self.target, None)  # one sent but not yet delivered must not surface after this
        _watches.pop(self.target, None)

    def _watch(self) -> None:
        if self._ended.wait(self.seconds):
            return
        while True:
            with self._lock:
                if self._ended.is_set() or not _inside(sys._current_frames().get(self.target)):
                    return
                self.fired = True
                self.cancel.set()
                _raise_in(self.target, TimedOut)
            self._ended.wait(AGAIN_SECONDS)


_watches: dict[int, "_Alarm | _Watchdog"] = {}  # thread id -> the limit running in it


def _unraisable(unraisable) -> None:
    """An interruption that landed in a `__del__` or a weakref callback is ignored there ("Exception
    ignored in ..."), and the job ran on, forever if it looped. Called in the job's thread as the
    finaliser returns: the job is ended at its next line, in its own frames (not in the next
    finaliser, where a signal or another thread's exception would most likely land again)."""
    watch = _watches.get(threading.get_ident())
    if watch is None or not isinstance(unraisable.exc_value, TimedOut):
        return _previous_hook(unraisable)
    log.warning("the time limit's interruption landed in a finaliser (%s) and was ignored; ending the job at its next line",
                getattr(unraisable.object, "__qualname__", type(unraisable.object).__name__))

    def at_next_line(frame, event, arg):
        if event == "line":
            raise TimedOut(watch.seconds)  # a trace function's exception is raised in the traced frame
        return at_next_line

    frame = sys._getframe(1)
    while frame is not None and frame.f_code is not _limited.__code__:
        frame.f_trace = at_next_line
        frame = frame.f_back
    sys.settrace(lambda *args: None)  # tracing on in this thread, for these frames alone


_previous_hook = sys.unraisablehook
sys.unraisablehook = _unraisable


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

"""The one place that reads the wall clock. Everything time-dependent takes `now` as an argument."""

from datetime import datetime, timezone
import time


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def monotonic() -> float:
    return time.monotonic()


def sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)

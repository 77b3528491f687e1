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


def parse(text) -> datetime | None:
    """An ISO 8601 time as Auth0 and the runner's own results write it (`...Z`), in UTC; None for
    anything else. One reader for every recorded or received time, so none reads them its own way."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

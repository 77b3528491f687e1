"""Retries of transient failures with tenacity: exponential backoff with jitter, bounded in
attempts and total time, and waits that honour `Retry-After` and `x-ratelimit-reset`.

A call raises `Transient` for what may succeed on a later attempt; anything else is final.
"""

from __future__ import annotations

import email.utils
import time
from typing import Callable, Mapping

import requests
import tenacity

from batchrunner import clock

MAX_SERVER_WAIT = 60.0  # never sleep longer than this on the server's word alone


class Transient(Exception):
    def __init__(self, description: str, retry_after: float | None = None):
        super().__init__(description)
        self.retry_after = retry_after


def transient_for(response: requests.Response) -> Transient | None:
    """A Transient for 429 and 5xx responses, None for everything else."""
    status = response.status_code
    if status != 429 and status < 500:
        return None
    wait = server_wait(response.headers, time.time())
    return Transient(f"HTTP {status} from {response.request.method} {_path(response)}", wait)


def server_wait(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """Seconds the server asks us to wait: Retry-After (seconds or a date), else x-ratelimit-reset."""
    value = headers.get("Retry-After")
    if value:
        if _seconds(value) is not None:
            return min(_seconds(value), MAX_SERVER_WAIT)
        try:
            return _clamp(email.utils.parsedate_to_datetime(value).timestamp() - now_epoch)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass  # neither seconds nor a date: as if the server had said nothing
    reset = _seconds(headers.get("x-ratelimit-reset") or "")
    if reset is not None:
        return _clamp(reset - now_epoch)
    return None


def _seconds(value: str) -> float | None:
    """A header's whole number of seconds; None for anything else.

    ASCII digits only: `str.isdigit()` also accepts `²` and other digits that float() refuses.
    """
    text = value.strip()
    return float(text) if text.isascii() and text.isdigit() else None


def retrying(
    attempts: int,
    max_seconds: float,
    sleep: Callable[[float], None] = clock.sleep,
    on_retry: Callable[[tenacity.RetryCallState], None] | None = None,
    retry_on: type[Exception] = Transient,
) -> tenacity.Retrying:
    """Retries of `retry_on`: exponential backoff with jitter, or the server's wait where it named one."""
    backoff = tenacity.wait_random_exponential(multiplier=0.5, max=10)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception()
        asked = getattr(exc, "retry_after", None)
        # A little jitter after the server's wait spreads out clients that were told the same time.
        return asked + backoff(state) / 10 if asked is not None else backoff(state)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(retry_on),
        # stop_before_delay: no wait may run past the bound, so the whole call keeps to it.
        stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_before_delay(max_seconds),
        wait=wait,
        sleep=sleep,
        before_sleep=on_retry,
        reraise=True,
    )


def connection_failure(url: str, exc: requests.RequestException, final: type[Exception]) -> Exception:
    """A Transient to retry; but `final` for a TLS failure, which no retry mends."""
    if isinstance(exc, requests.exceptions.SSLError):
        return final(f"TLS with {url} failed; check AUTH0_DOMAIN, and that this machine trusts the tenant's certificate (RUNNER_CA_BUNDLE)")
    if isinstance(exc, requests.exceptions.ProxyError):
        return Transient(f"the proxy failed or refused the connection to {url} (RUNNER_HTTPS_PROXY)")
    kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
    return Transient(f"{kind}: {url}")


def _clamp(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_SERVER_WAIT)


def _path(response: requests.Response) -> str:
    return requests.utils.urlparse(response.url).path or "/"

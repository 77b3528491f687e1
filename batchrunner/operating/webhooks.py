"""Best-effort HTTP calls for pings and notifications: bounded, in order, never failing a run.

Each run gets one `Sender`: a thread that delivers its calls in order (a start ping before the
finish ping), each attempt with a 5 s timeout and 2 retries, while the job works. When the run
has ended its caller waits for the rest at most `WAIT_SECONDS`; what is still undelivered then is
given up (logged), so a dead endpoint costs a run at most that.
"""

from __future__ import annotations

import logging
import queue
import threading
from urllib.parse import urlsplit

from batchrunner import clock
from batchrunner.config import is_loopback
from batchrunner.errors import ConfigError

log = logging.getLogger("runner.webhooks")

TIMEOUT_SECONDS = 5.0
RETRIES = 2
BACKOFF_SECONDS = (0.5, 1.0)
WAIT_SECONDS = 10.0


def checked_url(variable: str, url: str) -> str:
    """The URL, or ConfigError: https only, plain http only to loopback (a webhook URL is a credential)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(variable, f"{_shown(url)} is not an https:// URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(variable, f"refusing plain http to {parts.hostname}: use https:// (http only to loopback)")
    return url.strip()


def _shown(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.hostname}/..." if parts.hostname else repr(url.strip()[:20])


class Sender:
    """Delivers calls in order from one background thread."""

    def __init__(self, name: str, settings=None):
        self._settings = settings  # RUNNER_HTTPS_PROXY and RUNNER_CA_BUNDLE, as for Auth0
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=f"webhooks-{name}", daemon=True)
        self._session = None
        self._thread.start()

    def post(self, url: str, body: bytes, content_type: str, what: str) -> None:
        self._queue.put((url, body, content_type, what))

    def close(self, wait: float = WAIT_SECONDS) -> bool:
        """Wait up to `wait` s for what is queued; True when everything was delivered or given up on."""
        self._queue.put(None)
        self._thread.join(wait)
        if self._thread.is_alive():
            log.warning("gave up waiting for pings or notifications after %g s; the run's outcome is recorded as it was", wait)
            return False
        return True

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            self._deliver(*item)
        if self._session is not None:
            self._session.close()

    def _deliver(self, url: str, body: bytes, content_type: str, what: str) -> None:
        import requests

        from batchrunner.auth0.http import new_session

        self._session = self._session or new_session(pool_size=1, settings=self._settings)
        for attempt in range(RETRIES + 1):
            try:
                response = self._session.post(url, data=body, headers={"Content-Type": content_type},
                                              timeout=TIMEOUT_SECONDS, allow_redirects=False)
                if response.status_code < 500 and response.status_code != 429:
                    if response.status_code >= 300:
                        log.warning("%s: HTTP %s from %s", what, response.status_code, _shown(url))
                    return
                reason = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                reason = type(exc).__name__
            if attempt < RETRIES:
                clock.sleep(BACKOFF_SECONDS[attempt])
        log.warning("%s to %s failed after %d attempts (%s); the run's outcome is unchanged", what, _shown(url), RETRIES + 1, reason)

"""`runner serve` gets a token before it reports ready, so a rejected credential stops it at start
(exit 2, as any bad setting) instead of failing the first run, at 2 a.m. A tenant that does not
answer is no reason to stop: serve goes on, and keeps trying in the background until it gets one.
The shared token cache makes this free when a valid token is cached.
"""

from __future__ import annotations

import logging
import threading

from .db import Database
from .errors import CredentialsRejected, RefusedAtStart, one_line
from .tokencache import cached_source

log = logging.getLogger("runner.serve")

START_WAIT_SECONDS = 5.0  # how long start-up waits for the tenant before going on without a token
RETRY_SECONDS = 60.0


def check_token(db: Database, credentials, stopping: threading.Event, wait: float = START_WAIT_SECONDS, settings=None) -> None:
    """Get a token now; RefusedAtStart when Auth0 rejects the credentials. Anything else is logged, not fatal.

    `settings` carry the proxy and CA bundle to reach Auth0 with.
    """
    first = _Attempt(db, credentials, settings)
    first.thread.start()
    reported = first.done.wait(wait)
    if not reported:
        log.warning("no token from %s within %.0f s; serve goes on and keeps trying in the background", credentials.token_url, wait)
    elif isinstance(first.error, CredentialsRejected):
        raise RefusedAtStart(first.error.message())
    elif first.error is not None:
        log.warning("no token yet: %s; serve goes on and tries again every %.0f s", one_line(first.error), RETRY_SECONDS)
    else:
        log.info("the tenant issued a token (or one is cached) for %s", credentials.client_id)
        return
    threading.Thread(target=_keep_trying, args=(first, reported, db, credentials, stopping), name="token-check", daemon=True).start()


class _Attempt:
    def __init__(self, db: Database, credentials, settings=None):
        self.error: Exception | None = None
        self.settings = settings
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(db, credentials), name="token-check", daemon=True)

    def _run(self, db, credentials) -> None:
        from .http import new_session

        try:
            session = new_session(pool_size=1, settings=self.settings)
            cached_source(db, credentials, "serve (start)", session=session).token()
        except Exception as exc:  # reported by whoever waits for it
            self.error = exc
        finally:
            self.done.set()


def _keep_trying(first: _Attempt, reported: bool, db: Database, credentials, stopping: threading.Event) -> None:
    attempt = first
    while True:
        attempt.done.wait()
        if attempt.error is None:
            log.info("the tenant answered: got a token for %s", credentials.client_id)
            return
        if isinstance(attempt.error, CredentialsRejected):
            log.error("%s", attempt.error.message())
            return
        if attempt is not first or not reported:
            log.warning("still no token: %s; trying again in %.0f s", one_line(attempt.error), RETRY_SECONDS)
        if stopping.wait(RETRY_SECONDS):
            return
        attempt = _Attempt(db, credentials, first.settings)
        attempt.thread.start()

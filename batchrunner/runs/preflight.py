"""`runner serve` gets a token before it reports ready, so a rejected credential stops it at start
(exit 2, as any bad setting) instead of failing the first run, at 2 a.m. A tenant that does not
answer is no reason to stop: serve goes on, and keeps trying in the background until it gets one.
The shared token cache makes this free when a valid token is cached; it says which it was, since a
cached token proves only that this secret worked when it was issued (README "The scheduler").
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor, wait as wait_for

from batchrunner.auth0.tokencache import cached_source
from batchrunner.auth0.tokens import scope_warning
from batchrunner.cli.render import iso
from batchrunner.errors import CredentialsRejected, RefusedAtStart, RunnerError, one_line
from batchrunner.store.database import Database

log = logging.getLogger("runner.serve")

START_WAIT_SECONDS = 5.0  # how long start-up waits for the tenant before going on without a token
RETRY_SECONDS = 60.0
CHECKS_AT_ONCE = 8  # tenants whose token is asked for at the same time, at start


def check_tenants(db: Database, tenants: list, stopping: threading.Event, settings=None,
                  wait: float = START_WAIT_SECONDS, at_once: int = CHECKS_AT_ONCE) -> None:
    """Several tenants: each one's token, `at_once` at a time; ready after `wait` seconds at most.

    A tenant's refused secret or silent domain is logged and fails only its own runs (README, "Several
    tenants"); the checks not done by then go on in the background, so a hundred tenants, or one that
    never answers, hold readiness back no longer than one tenant does.
    """
    pool = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="token-check")
    futures = [pool.submit(_check_tenant, db, tenant, stopping, settings, wait) for tenant in tenants]
    pool.shutdown(wait=False)
    _, pending = wait_for(futures, timeout=wait)
    if pending:
        log.warning("%d of %d tenants' tokens not checked within %.0f s; serve goes on and checks them in the background",
                    len(pending), len(tenants), wait)


def _check_tenant(db: Database, tenant, stopping: threading.Event, settings, wait: float) -> None:
    from batchrunner.logs import redact_secret

    try:
        credentials = tenant.credentials()
        redact_secret(credentials.client_secret)
        check_token(db, credentials, stopping, wait, settings=settings)
    except (RunnerError, RefusedAtStart) as exc:
        log.error("tenant %s: %s; its runs fail until this is mended", tenant.name, exc)


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
        first.report(credentials.client_id)
        return
    threading.Thread(target=_keep_trying, args=(first, reported, db, credentials, stopping), name="token-check", daemon=True).start()


class _Attempt:
    def __init__(self, db: Database, credentials, settings=None):
        self.error: Exception | None = None
        self.token = None
        self.issued = False  # whether this attempt asked Auth0, or found the token cached
        self.settings = settings
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(db, credentials), name="token-check", daemon=True)

    def _run(self, db, credentials) -> None:
        from batchrunner.auth0.http import new_session

        try:
            session = new_session(pool_size=1, settings=self.settings)
            source = cached_source(db, credentials, "serve (start)", session=session)
            self.token = source.token()
            self.issued = source.issued > 0
        except Exception as exc:  # reported by whoever waits for it
            self.error = exc
        finally:
            self.done.set()

    def report(self, client_id: str) -> None:
        token = self.token
        if self.issued:
            log.info("Auth0 issued a token for %s: the credentials work", client_id)
        else:  # the secret matched the one the token was issued for (tokencache); Auth0 was not asked
            log.info("a token for %s is cached, issued with this client secret at %s and valid until %s; "
                     "Auth0 was not asked (runner token check asks it now)",
                     client_id, iso(token.issued_at), iso(token.expires_at))
            warning = scope_warning(token, client_id)  # told when it was issued; said again at start
            if warning:
                log.warning("%s", warning)


def _keep_trying(first: _Attempt, reported: bool, db: Database, credentials, stopping: threading.Event) -> None:
    attempt = first
    while True:
        attempt.done.wait()
        if attempt.error is None:
            attempt.report(credentials.client_id)
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

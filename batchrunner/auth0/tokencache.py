"""The token cache in SQL, shared by every thread, process and host that uses the database.

Single-flight: the first caller to find no valid token takes a lease on the cache row in a short
write transaction, commits, and only then asks Auth0; everyone else polls the row (plain reads,
no lock) until the token is there. No database lock is held while waiting on the network. Within
a process one thread goes (a _Flight) and the others wait for its answer, an error included.

A lease held on this node lapses when its holder's process is gone (its pid, with that process's
start time: process.py), and never while it lives. A lease held on another node lapses
LEASE_SECONDS after it was taken (longer than the longest issuance the retry policy allows),
counted by the database's clock alone (db.database_time): a host whose clock runs ahead does not
take over a live issuer's lease. So a crashed issuer blocks others for at most LEASE_SECONDS, and
on its own node not at all.

The ledger and the cache are written apart, after the token is issued: the ledger first, in its
own transaction, tried again through a database outage; then the cache. A token that could not
be cached is still used by the process that got it.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import and_, insert, select, update

from batchrunner import clock, logs, process
from batchrunner.auth0 import fingerprint
from batchrunner.auth0.http import TOKEN_TIMEOUT
from batchrunner.auth0.tokens import TOKEN_RETRY_SECONDS, Token, TokenSource, scope_warning
from batchrunner.errors import TokenError
from batchrunner.store.database import Database, DatabaseError, database_time, through_outages
from batchrunner.store.schema import token_cache, token_issuances

LEASE_SECONDS = 60
# The issuer's retries start no attempt after TOKEN_RETRY_SECONDS, and an attempt ends within its
# timeouts: so a live issuer is never overtaken by a waiter that thinks its lease lapsed.
assert LEASE_SECONDS > TOKEN_RETRY_SECONDS + sum(TOKEN_TIMEOUT), "a live issuer's lease must outlast its retries"
POLL_SECONDS = 0.05

log = logging.getLogger("runner.tokens")

# Leases this process holds while it asks Auth0: a lease of this very process that is not here was
# left behind (its write failed) and is free to take.
_asking: set[str] = set()


@dataclass(frozen=True)
class CacheKey:
    tenant: str
    client_id: str
    audience: str
    # The row is the first three; a cached token is used only with the secret it was issued for, so
    # that a rotated or mistyped secret shows at once, not at the next renewal (README "Tokens").
    secret: str = field(repr=False)

    def where(self):
        return and_(
            token_cache.c.tenant == self.tenant,
            token_cache.c.client_id == self.client_id,
            token_cache.c.audience == self.audience,
        )


class _Flight:
    """One trip of this process for a token: every thread that asked meanwhile gets its answer.

    A rejection or an exhausted retry is the answer too (README "Tokens"): the page fetched beside
    page 0 must not ask Auth0 again with the secret Auth0 just refused, nor retry a 503 once more.
    """

    def __init__(self):
        self.done = threading.Event()
        self.token: Token | None = None
        self.error: BaseException | None = None

    def fly(self, fetch: Callable[[], Token], key: CacheKey) -> None:
        try:
            self.token = fetch()
        except BaseException as exc:  # raised in every thread that waited for it, this one too
            self.error = exc
        finally:
            with _flights_lock:
                del _flights[key]
            self.done.set()

    def answer(self) -> Token:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.token


_flights: dict[CacheKey, _Flight] = {}
_flights_lock = threading.Lock()


class CachedTokenSource:
    def __init__(
        self,
        db: Database,
        key: CacheKey,
        source: TokenSource,
        requested_by: str,
        run_id: int | None = None,
        now: Callable[[], datetime] = clock.utcnow,
        sleep: Callable[[float], None] = clock.sleep,
    ):
        self.db, self.key, self.source = db, key, source
        self.requested_by, self.run_id = requested_by, run_id
        self.now, self.sleep = now, sleep
        self.owner = uuid.uuid4().hex
        self.issued = 0  # tokens this source asked Auth0 for
        self._lock = threading.Lock()  # the memo and the database, against invalidate()
        self._memo: Token | None = None
        self._told_other_secret = False

    def token(self) -> Token:
        memo = self._memo
        if memo is not None and memo.valid(self.now()):
            return memo
        # One thread per process goes to the database (and to Auth0); the rest wait for its answer.
        with _flights_lock:
            flight = _flights.get(self.key)
            leading = flight is None
            if leading:
                flight = _flights[self.key] = _Flight()
        if leading:
            flight.fly(self._fetch, self.key)
        return flight.answer()

    def _fetch(self) -> Token:
        # Not beside an invalidate() of this source: the token it is dropping is not read back from
        # the database before its write is done, nor kept here after it.
        with self._lock:
            if self._memo is None or not self._memo.valid(self.now()):
                self._memo = self._from_database()
            return self._memo

    def invalidate(self, token: Token) -> None:
        """Drop `token` (rejected by the API) so the next caller gets a new one; a newer one stays."""
        with self._lock:
            if self._memo is token:
                self._memo = None
            with self.db.write() as conn:
                conn.execute(
                    update(token_cache)
                    .where(self.key.where(), token_cache.c.access_token == token.access_token)
                    .values(access_token=None, expires_at=None)
                )

    def cached(self) -> Token | None:
        return self._look()[0]

    def renew(self) -> Token:
        """A token Auth0 issued now, whatever is cached (`runner token check`), cached for the others.

        A token another process gets meanwhile with the same secret answers as well."""
        return self._from_database(newer_than=self.now())

    def _usable(self, row) -> Token | None:
        """The row's token, if it was issued for this secret (a row cached before fingerprints was not)."""
        token = _token(row)
        if token is None or fingerprint.matches(self.key.secret, row.secret_hash):
            return token
        if token.valid(self.now()) and not self._told_other_secret:  # once, not at every poll
            self._told_other_secret = True
            which = "another client secret" if row.secret_hash else "a secret an earlier version did not record"
            log.info("the cached token was issued with %s; asking Auth0 for a token with this one", which)
        return None

    def _look(self) -> tuple[Token | None, bool]:
        """The cached token, and whether the lease is free to take; a plain read, no lock."""
        # Which of this process's sources are asking, taken before the read: one that finishes in
        # between has cached its token by then, which the read sees (taken after, its lease would
        # look lapsed beside a row read before its token was there).
        asking = frozenset(_asking)
        with self.db.read() as conn:
            row = conn.execute(select(token_cache).where(self.key.where())).one_or_none()
            free = row is None or not row.lease_owner or _lapsed(row, database_time(conn), asking)
        return self._usable(row), free

    def _from_database(self, newer_than: datetime | None = None) -> Token:
        deadline = self.now() + timedelta(seconds=LEASE_SECONDS + 30)
        while True:
            now = self.now()
            found, free = self._look()  # waiters take no write lock while another issues
            if _fits(found, now, newer_than):
                return found
            if free:
                claim = self._claim(now, newer_than)
                if isinstance(claim, Token):
                    return claim
                if claim:
                    return self._issue()
            if now > deadline:
                raise TokenError("timed out waiting for another process to get a token; run again")
            self.sleep(POLL_SECONDS * (0.5 + random.random()))

    def _claim(self, now: datetime, newer_than: datetime | None = None) -> Token | bool:
        """In one write transaction: a valid token, or True when we took the lease, or False to wait."""
        with self.db.write() as conn:
            self.db.insert_ignore(conn, token_cache, self._key_values())
            row = conn.execute(self.db.for_update(select(token_cache).where(self.key.where()))).one()
            found = self._usable(row)
            if _fits(found, now, newer_than):
                return found
            db_now = database_time(conn)
            if row.lease_owner and not _lapsed(row, db_now):
                return False
            conn.execute(
                update(token_cache)
                .where(self.key.where())
                .values(
                    lease_owner=self.owner,
                    lease_host=process.HOST,
                    lease_node=process.NODE,
                    lease_pid=process.pid(),
                    lease_pid_started=process.started(),
                    lease_expires_at=db_now + timedelta(seconds=LEASE_SECONDS),
                )
            )
            _asking.add(self.owner)
            return True

    def _issue(self) -> Token:
        try:
            try:
                token = self.source.token()
            except BaseException:
                self._release()
                raise
            logs.redact_secret(token.access_token)
            self.issued += 1
            warning = scope_warning(token, self.key.client_id)
            if warning:  # once per issuance: a day's runs share the token, and the log its warning
                log.warning("%s", warning)
            self._record(token)
            self._cache(token)
        finally:
            _asking.discard(self.owner)
        return token

    def _record(self, token: Token) -> None:
        """The ledger holds every issuance (tokens are billed): its own transaction, through outages."""

        def write() -> None:
            with self.db.write() as conn:
                conn.execute(insert(token_issuances).values(**self._ledger_values(token)))

        try:
            through_outages(write)
        except DatabaseError as exc:
            log.error("a token issued at %s is not in the ledger: %s", token.issued_at.isoformat(), exc)

    def _cache(self, token: Token) -> None:
        """Cache the token while the lease is still ours; one that cannot be cached is used all the same."""
        secret_hash = fingerprint.fingerprint(self.key.secret)  # slow on purpose: before the write lock, not in it
        try:
            with self.db.write() as conn:
                conn.execute(
                    update(token_cache)
                    .where(self.key.where(), token_cache.c.lease_owner == self.owner)
                    .values(
                        access_token=token.access_token,
                        token_type=token.token_type,
                        scope=token.scope,
                        issued_at=token.issued_at,
                        expires_at=token.expires_at,
                        secret_hash=secret_hash,
                        **_NO_LEASE,
                    )
                )
        except DatabaseError as exc:
            log.warning("the new token could not be cached (%s); this process uses it, others ask for their own", exc)
            self._release()

    def _release(self) -> None:
        """Give the lease up; where the database refuses, it lapses on its own (this process is done with it)."""
        try:
            with self.db.write() as conn:
                conn.execute(
                    update(token_cache).where(self.key.where(), token_cache.c.lease_owner == self.owner).values(**_NO_LEASE)
                )
        except DatabaseError as exc:
            log.warning("could not give up the token lease (%s); it lapses on its own", exc)

    def _key_values(self) -> dict:
        return {"tenant": self.key.tenant, "client_id": self.key.client_id, "audience": self.key.audience}

    def _ledger_values(self, token: Token) -> dict:
        return {
            **self._key_values(),
            "issued_at": token.issued_at,
            "expires_at": token.expires_at,
            "scope": token.scope,
            "requested_by": self.requested_by,
            "run_id": self.run_id,
            "host": process.HOST,
            "pid": process.pid(),
        }


_NO_LEASE = {"lease_owner": None, "lease_host": None, "lease_node": None, "lease_pid": None,
             "lease_pid_started": None, "lease_expires_at": None}


def _fits(token: Token | None, now: datetime, newer_than: datetime | None) -> bool:
    return token is not None and token.valid(now) and (newer_than is None or token.issued_at >= newer_than)


def _token(row) -> Token | None:
    if row is None or not row.access_token or row.expires_at is None:
        return None
    logs.redact_secret(row.access_token)  # a bearer token, like the client secret, never reaches a log
    return Token(row.access_token, row.scope or "", row.issued_at, row.expires_at, row.token_type or "Bearer")


def _lapsed(row, db_now: datetime, asking: frozenset | set | None = None) -> bool:
    """Whether a lease is free: on this node its holder's process decides; elsewhere the database's clock."""
    if row.lease_node == process.NODE:
        if row.lease_pid == process.pid():  # this very process: held while one of its sources asks
            return row.lease_owner not in (_asking if asking is None else asking)
        return not process.is_alive(row.lease_node, row.lease_pid, row.lease_pid_started)
    return row.lease_expires_at is None or row.lease_expires_at <= db_now


def cached_source(db: Database, credentials, requested_by: str, run_id: int | None = None, session=None) -> CachedTokenSource:
    """The token source every command and job uses: Auth0 behind the shared SQL cache."""
    from batchrunner.auth0.tokens import ClientCredentialsSource

    key = CacheKey(credentials.base_url, credentials.client_id, credentials.audience, credentials.client_secret)
    return CachedTokenSource(db, key, ClientCredentialsSource(credentials, session), requested_by, run_id)


def status(db: Database, now: datetime) -> list[dict]:
    """Cached tokens, valid or expired, without the tokens themselves."""
    with db.read() as conn:
        rows = conn.execute(
            select(token_cache).where(token_cache.c.access_token.is_not(None)).order_by(token_cache.c.id)
        ).all()
    return [
        {
            "tenant": row.tenant,
            "audience": row.audience,
            "client_id": row.client_id,
            "scope": row.scope,
            "issued_at": row.issued_at,
            "expires_at": row.expires_at,
            "valid": bool(_token(row) and _token(row).valid(now)),
        }
        for row in rows
    ]


def issuances(db: Database) -> list[dict]:
    columns = [token_issuances.c[name] for name in ("issued_at", "expires_at", "tenant", "audience", "client_id", "scope", "requested_by", "run_id", "host", "pid")]
    with db.read() as conn:
        rows = conn.execute(select(*columns).order_by(token_issuances.c.issued_at.desc(), token_issuances.c.id.desc())).all()
    return [dict(row._mapping) for row in rows]


def monthly_counts(rows: list[dict]) -> list[tuple[str, int]]:
    """Issuances per calendar month (UTC), newest first: machine-to-machine tokens are billed by month."""
    counts: dict[str, int] = {}
    for row in rows:
        month = row["issued_at"].strftime("%Y-%m")
        counts[month] = counts.get(month, 0) + 1
    return sorted(counts.items(), reverse=True)

"""The Management API session (README, "How the export treats the API"): bearer tokens, retries, pacing, one pagination helper.

- 401: the token was expired or revoked; drop it from the cache, get a new one, retry once.
- 429: wait as Retry-After or x-ratelimit-reset say, then retry; the pacer keeps them rare.
- 5xx and connection errors: retried with backoff (retry.py), bounded.
- 403 insufficient_scope: one line naming the scope and where to grant it.

Every job of one process that calls one tenant shares that tenant's pacer (`tenant_pacer`), so
jobs running at once in `serve` spend one bucket between them instead of each learning it alone.
Write calls (`post`, `patch`, `delete`) carry `X-Correlation-ID: runner-<run id>`, which Auth0
records in its tenant logs, so each change links to the run that made it (README, "Write your own job").
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

import requests
import urllib3

from batchrunner import logs
from batchrunner.auth0 import buckets, retry
from batchrunner.auth0.http import TIMEOUT, decode_json, new_session, redirect_error
from batchrunner.auth0.pacing import Pacer
from batchrunner.auth0.tokens import GRANT_WHERE
from batchrunner.config import origin
from batchrunner.errors import ApiError
from batchrunner.progress import Progress
from batchrunner.repeats import Repeats

log = logging.getLogger("runner.api")

CALL_ATTEMPTS = 8
CALL_RETRY_SECONDS = 180.0
PER_PAGE = 100  # the Management API's maximum
# A gateway's answer in Auth0's place (bad gateway, gateway timeout): the request may have reached Auth0.
GATEWAY_FAILURES = (502, 504)
# Concurrent page requests of one list, which also bounds the pages held for in-order delivery (and
# so its memory): as many as the bucket holds, so that its burst goes out at once, within these.
MIN_IN_FLIGHT = 16
MAX_IN_FLIGHT = 50  # the largest bucket Auth0 publishes (Enterprise production)
# Connections kept open for reuse. A snapshot pages an offset list (MAX_IN_FLIGHT), other tables and
# 8 parents' lists at once; a pool smaller than that closes connections and logs a warning each time.
POOL_SIZE = 64
MAX_PACE_SECONDS = 120.0  # the longest one request waits for room in the rate limit
TURN_CHECK_SECONDS = 0.5  # a request waiting its turn at the pacer looks this often whether its run is ending
# A list longer than this many pages is refused before paging it: ten times the 100,000
# applications Auth0's entity limits allow an Enterprise tenant, so only a broken `total` gets here.
MAX_PAGES = 10_000
# Page 0 says how many pages there are; sent alone, it leaves the bucket full for its round trip, so
# what the bucket refills meanwhile is lost. The first list a process pages through (its pacer is
# fresh: the bucket is as full as it gets) asks for more pages beside it: as many as the pacer lets
# go before its first answer (pacing.FIRST_WAVE, or what the bucket refills in a round trip when an
# earlier process's memory of it was recalled). A short list then costs those requests more, once
# per process; later lists, whose bucket may be in use, speculate nothing.
SHOW_WAIT_SECONDS = 0.5  # a wait for the rate limit this long is worth telling a person watching


@dataclass(frozen=True)
class Reply:
    """A 200's JSON body and its `Link` header's `next` target, if any."""

    body: object
    next_url: str | None = None


_pacers: dict[tuple[str, str], Pacer] = {}
_pacers_lock = threading.Lock()


def tenant_pacer(base_url: str, bucket: str = buckets.GLOBAL) -> Pacer:
    """The one pacer of a tenant's bucket in this process: jobs running at once share it (README, "Write your own job")."""
    with _pacers_lock:
        return _pacers.setdefault((base_url.rstrip("/"), bucket), Pacer())


_told_endpoint_buckets: set[str] = set()  # tenants told once that they have a bucket per endpoint family


def _one_bucket_or_tell(base_url: str, size_before: int | None, headers) -> None:
    """Under RUNNER_RATE_LIMITS=global, answers naming buckets of two sizes come from a tenant with a
    bucket per endpoint family (Essentials' Read Users 40 beside Write Users 10): its one pacer mixes
    them and meets 429s (bench/users_cleanup.py: 26 in 100 writes). Said once per tenant and process."""
    size = headers.get("x-ratelimit-limit")
    if size_before is None or not str(size).isdigit() or int(size) == size_before:
        return
    with _pacers_lock:
        if base_url in _told_endpoint_buckets:
            return
        _told_endpoint_buckets.add(base_url)
    log.warning("the tenant's answers name rate-limit buckets of %d and %s requests, where RUNNER_RATE_LIMITS=global "
                "expects one: an Essentials, Professional or B2B tenant has a bucket per endpoint family; set "
                "RUNNER_RATE_LIMITS=endpoint (or the tenant's rate_limits = \"endpoint\"), else requests meet 429s",
                size_before, size)


def tenant_pacers(base_url: str) -> dict[str, Pacer]:
    """The pacers of a tenant's buckets this process has made so far, by bucket."""
    with _pacers_lock:
        return {bucket: pacer for (url, bucket), pacer in _pacers.items() if url == base_url.rstrip("/")}


@dataclass
class ApiStats:
    requests: int = 0
    retries: int = 0
    responses_429: int = 0
    token_refreshes: int = 0


class ManagementApi:
    def __init__(
        self,
        base_url: str,
        tokens,
        client_id: str = "",
        session: requests.Session | None = None,
        cancelled: threading.Event | None = None,
        run_id: int | None = None,
        rate_limits: str = buckets.GLOBAL,
    ):
        self.base_url = base_url.rstrip("/")
        self.rate_limits = rate_limits  # buckets.MODES: one bucket for the tenant, or one per endpoint family
        self.tokens = tokens  # a token source with invalidate()
        self.client_id = client_id
        self.session = session or new_session(pool_size=POOL_SIZE)
        self.run_id = run_id
        self.stats = ApiStats()
        self._stats_lock = threading.Lock()
        # Set by close(), or from outside (the run was marked abandoned): calls stop, waits end.
        self._cancelled = cancelled or threading.Event()
        # Told how long a request is about to wait for the rate limit (a progress line); any thread calls it.
        self.on_wait: Callable[[float], None] | None = None
        self._retry_warnings = Repeats(log)  # a storm of 429s is one warning and a count, not one a second

    def get(self, path: str, params: dict | None = None):
        """GET a Management API path (e.g. "clients") and return its JSON body."""
        return self.request("GET", path, params).body

    def post(self, path: str, body: dict):
        return self.request("POST", path, json_body=body).body

    def patch(self, path: str, body: dict):
        return self.request("PATCH", path, json_body=body).body

    def delete(self, path: str):
        return self.request("DELETE", path).body

    def request(self, method: str, path: str, params: dict | None = None, json_body: dict | None = None) -> Reply:
        """One call with the retries allowed; `path` is relative to /api/v2/ (e.g. "roles/ROLE/users")."""
        url = f"{self.base_url}/api/v2/{path.lstrip('/')}"
        try:
            return retry.retrying(CALL_ATTEMPTS, CALL_RETRY_SECONDS, self._sleep, self._on_retry)(
                self._call, method, url, params, json_body)
        except retry.Transient as exc:
            raise ApiError(f"the Management API kept failing: {exc}; Auth0 may be degraded (status.auth0.com), run again later") from None

    def follow(self, next_url: str) -> Reply:
        """GET a `Link: rel="next"` target, which must lie under this tenant's /api/v2/: the token goes nowhere else."""
        prefix = f"{self.base_url}/api/v2/"
        # The tenant names itself as it likes (`acme.eu.auth0.com`, no :443) whatever the case and
        # port AUTH0_DOMAIN was given in: compare scheme, host and port, not spellings.
        target = urlsplit(next_url)
        if origin(next_url) != origin(self.base_url) or not target.path.startswith("/api/v2/"):
            raise ApiError(f"the Management API pointed the next page at {next_url.split('?')[0]}, outside {prefix}; not following it")
        path, query = target.path[len("/api/v2/"):], target.query
        return self.request("GET", path, dict(parse_qsl(query, keep_blank_values=True)))

    def paginate(self, path: str, key: str, params: dict | None = None, on_page=None, unique: str | None = None,
                 progress: Progress | None = None) -> Iterator[dict]:
        """Every item of a paged list endpoint, in order, fetching pages concurrently within the limit.

        Offset pages shift when the list changes meanwhile; ApiError when it shows: a page reports
        another `total`, a page before the last is short (the list ended early), the count differs
        from the total, or (given the field `unique` that identifies an item) a page starts with the
        item that ended the one before. A `total` past MAX_PAGES pages is refused before paging.
        `progress` (a status line on a terminal) is told of every page and every long wait.
        """
        told = self.on_wait  # a job's own status line (exports.terminal_progress) hears of waits after the paging
        self.on_wait = progress.waiting if progress else told
        try:
            yield from self._paginate(path, key, params, on_page, unique, progress)
        finally:
            self.on_wait = told

    def _paginate(self, path, key, params, on_page, unique, progress) -> Iterator[dict]:
        base = {**(params or {}), "per_page": PER_PAGE, "include_totals": "true"}
        pacer = self._pacer("GET", path)
        speculate = pacer.first_wave_pages()
        pool = DaemonPool("page")
        try:
            window = deque(self._fetch(pool, path, base, number) for number in range(1 + speculate))
            total = _total(window[0].result(), key)
            pages = max(1, -(-total // PER_PAGE))
            if pages > MAX_PAGES:
                raise ApiError(f"the Management API reported {total} {key}, more than the {MAX_PAGES * PER_PAGE} the runner pages through; is AUTH0_DOMAIN an Auth0 tenant?")
            while len(window) > pages:  # speculated past the last page: its answer is not waited for
                window.pop().cancel()
            count, previous_last = 0, None
            in_flight = max(MIN_IN_FLIGHT, min(MAX_IN_FLIGHT, pacer.limit or 0))
            for number, body in enumerate(self._in_order(pool, window, path, base, pages, in_flight), start=1):
                items = _items(body, key)
                repeated = (unique and items and previous_last is not None
                            and items[0].get(unique) is not None and items[0].get(unique) == previous_last.get(unique))
                if body.get("total") != total or repeated:
                    raise _changed(key)
                if number < pages and len(items) < PER_PAGE:
                    # Without this a `total` larger than the list would page on through empty pages.
                    raise _changed(key, f"the pages of {key} ended early (page {number} of {pages} held {len(items)}, not {PER_PAGE})")
                if on_page:
                    on_page(number, pages)
                if progress:
                    progress.update(number, pages, count + len(items), self.stats.requests)
                count += len(items)
                previous_last = items[-1] if items else previous_last
                yield from items
            if count != total:
                raise _changed(key, f"the tenant reported {total} {key} but listed {count}")
        finally:
            # A consumer that stops early (an error, SIGTERM) must not wait for the pages in flight.
            pool.shutdown()

    def close(self) -> None:
        """End the session; page fetches still waiting (on the pacer, on a retry) give up."""
        self._cancelled.set()
        self.session.close()
        self._retry_warnings.flush()

    def _fetch(self, pool: "DaemonPool", path: str, base: dict, number: int) -> Future:
        return pool.submit(logs.tagged(self.get), path, {**base, "page": number})

    def _in_order(self, pool: "DaemonPool", window: deque, path: str, base: dict, pages: int, in_flight: int) -> Iterator[dict]:
        """The pages' bodies in order, at most `in_flight` fetched at once; `window` holds the first ones asked for."""
        following = iter(range(len(window), pages))
        for number in following:
            window.append(self._fetch(pool, path, base, number))
            if len(window) >= in_flight:
                break
        while window:
            body = window.popleft().result()
            number = next(following, None)
            if number is not None:
                window.append(self._fetch(pool, path, base, number))
            yield body

    def _call(self, method: str, url: str, params: dict | None, json_body: dict | None, refreshed: bool = False) -> Reply:
        self._check_cancelled()
        token = self.tokens.token()
        headers = {"Authorization": f"Bearer {token.access_token}"}
        if method != "GET" and self.run_id is not None:
            headers["X-Correlation-ID"] = f"runner-{self.run_id}"
        pacer = self._pacer(method, url[len(self.base_url) + len("/api/v2/"):])
        self._pace(pacer)
        seq = pacer.sent()
        try:
            response = self.session.request(
                method, url, params=params, json=json_body, timeout=TIMEOUT, allow_redirects=False, headers=headers,
            )
        except requests.RequestException as exc:
            pacer.forget(seq, time.monotonic())  # no answer will come
            if method == "POST" and _maybe_received(exc):
                raise _unanswered_post(url, exc) from None
            raise retry.connection_failure(url.split("?")[0], exc, ApiError) from None
        self._count("requests")
        size_before = pacer.limit
        pacer.observe(seq, response.headers, time.monotonic(), time.time())  # a redirect is an answer too
        if self.rate_limits == buckets.GLOBAL:
            _one_bucket_or_tell(self.base_url, size_before, response.headers)
        redirected = redirect_error(response)
        if redirected:
            raise ApiError(redirected)
        if response.status_code == 401 and not refreshed:
            log.info("token rejected (%s); getting a new one", _message(response))
            self.tokens.invalidate(token)
            self._count("token_refreshes")
            return self._call(method, url, params, json_body, refreshed=True)
        if response.status_code == 429:
            self._count("responses_429")
            # Every page thread waits as the server said, not only the one that was refused.
            pacer.hold_until(time.monotonic() + (retry.server_wait(response.headers, time.time()) or 1.0))
        if method == "POST" and response.status_code in GATEWAY_FAILURES:
            raise _post_not_again(url, f"answered HTTP {response.status_code}, a gateway's answer in place of Auth0's")
        transient = retry.transient_for(response)
        if transient:
            raise transient
        if not 200 <= response.status_code < 300:
            raise self._failure(response, token)
        try:
            body = decode_json(response) if response.content else None
        except ValueError:
            kind = response.headers.get("Content-Type", "no Content-Type").split(";")[0].strip()
            raise ApiError(
                f"{response.request.method} {_path(response)} answered HTTP {response.status_code} with {kind}, "
                "not JSON (a proxy's or firewall's page?); check AUTH0_DOMAIN and RUNNER_HTTPS_PROXY"
            ) from None
        return Reply(body, response.links.get("next", {}).get("url"))

    def _pacer(self, method: str, path: str) -> Pacer:
        """The pacer of the bucket a request to /api/v2/`path` draws from (buckets.py)."""
        return tenant_pacer(self.base_url, buckets.of(method, path, self.rate_limits))

    def _pace(self, pacer: Pacer) -> None:
        deadline = time.monotonic() + MAX_PACE_SECONDS
        # One thread at a time asks the pacer and sleeps until its request may go; the others wait
        # for their turn without waking. Each polling thread cost the GIL 20 wake-ups a second, and
        # 8 runs of 16 pages in flight spent a third of `serve`'s CPU on them (README, "Development").
        while not pacer.turn.acquire(timeout=TURN_CHECK_SECONDS):
            self._check_cancelled()
            if time.monotonic() > deadline:
                raise _no_room()
        try:
            self._check_cancelled()  # the run ended while this request waited its turn: it is not sent
            while True:
                now = time.monotonic()
                wait = pacer.wait_time(now)
                if wait <= 0:
                    return
                if now + wait > deadline:
                    raise _no_room()
                self._waiting(wait)
                self._sleep(wait)
        finally:
            pacer.turn.release()

    def _sleep(self, seconds: float) -> None:
        if self._cancelled.wait(seconds):
            self._check_cancelled()

    def _waiting(self, seconds: float) -> None:
        if self.on_wait is not None and seconds >= SHOW_WAIT_SECONDS:
            self.on_wait(seconds)

    def _check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise ApiError("the run is ending (stopped, or marked abandoned); request not sent")

    def _failure(self, response: requests.Response, token) -> ApiError:
        body = _json(response)
        path = _path(response)
        call = f"{response.request.method} {path}"
        if response.status_code == 403 and body.get("errorCode") == "insufficient_scope":
            # The cached token carries the old scopes; drop it so a newly granted scope takes effect.
            self.tokens.invalidate(token)
            # Auth0 says "Insufficient scope, expected any of: read:logs, read:logs_users": any ONE of
            # them will do, so they are named as alternatives, never as a list that reads like all.
            expected = str(body.get("message", "")).partition("expected any of:")[2]
            scopes = [scope.strip() for scope in expected.split(",") if scope.strip()] or ["the required scope"]
            grant = scopes[0] if len(scopes) == 1 else "one of them"
            return ApiError(
                f"the token lacks the scope {' or '.join(scopes)} for {call}; grant {grant} to application "
                f"{self.client_id} ({GRANT_WHERE}), then run again", status=403, code="insufficient_scope"
            )
        if response.status_code == 401:
            return ApiError(f"the Management API rejected a newly issued token for {call} ({_message(response)}); check AUTH0_AUDIENCE")
        return ApiError(f"{call} failed: HTTP {response.status_code} {_message(response)}",
                        status=response.status_code, code=body.get("errorCode"))

    def _on_retry(self, state) -> None:
        self._count("retries")
        if not self._cancelled.is_set():  # a run that is ending retries nothing
            self._retry_warnings.warning("retrying after: %s", str(state.outcome.exception()))
            if getattr(state.outcome.exception(), "retry_after", None) is not None:  # the server named the wait
                self._waiting(state.next_action.sleep)

    def _count(self, name: str) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)


class DaemonPool:
    """Threads that fetch pages (and a snapshot's tables and lists), as daemons: a process that is
    ending (SIGTERM, a failed run) must not wait for answers nobody will read. ThreadPoolExecutor's
    workers are joined at exit, so with pages answering in 25 s `run-job` ended seconds after
    SIGTERM instead of at once (issue 9). At most `limit` threads; calls beyond them queue.
    """

    def __init__(self, name: str, limit: int = MAX_IN_FLIGHT):
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._name = name
        self._limit = limit
        self._workers = 0
        self._idle = 0  # workers waiting for a call, less the calls queued for them
        self._lock = threading.Lock()

    def submit(self, call, *args) -> Future:
        """Run `call(*args)` in a worker; one is started when none is idle, up to the limit (for pages, the window).

        No more threads than calls at once: each thread that allocates may get a malloc arena of its
        own, and 50 of them where 16 pages were in flight cost 8 MB of resident memory."""
        with self._lock:
            start = self._idle <= 0 and self._workers < self._limit
            if start:
                self._workers += 1
            else:
                self._idle -= 1  # an idle worker takes it, or the next to finish
        if start:
            threading.Thread(target=self._worker, name=f"{self._name}-{self._workers}", daemon=True).start()
        future: Future = Future()
        self._work.put((future, call, args))
        return future

    def shutdown(self) -> None:
        """Cancel what has not started; each worker ends after the call it is in."""
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in range(self._workers):
            self._work.put(None)

    def _worker(self) -> None:
        while (item := self._work.get()) is not None:
            future, call, args = item
            result, error = None, None
            if future.set_running_or_notify_cancel():
                try:
                    result = call(*args)
                except BaseException as exc:  # handed to the consumer, which raises it
                    error = exc
            # Idle before the consumer hears: its next call then takes this worker, not a new thread.
            with self._lock:
                self._idle += 1
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)


def _maybe_received(exc: requests.RequestException) -> bool:
    """Whether the request may have reached Auth0: anything but a failure before it went out. With the
    session's retries at 0, urllib3 wraps only those (no connection, a connect timeout, the proxy's
    refusal) in MaxRetryError; a TLS failure is one too, and final anyway."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    cause = exc.args[0] if exc.args else None
    return not (isinstance(exc, requests.ConnectionError) and isinstance(cause, urllib3.exceptions.MaxRetryError))


def _unanswered_post(url: str, exc: requests.RequestException) -> ApiError:
    what = "timed out waiting for Auth0's answer" if isinstance(exc, requests.Timeout) else "lost the connection before Auth0's whole answer"
    return _post_not_again(url, what)


def _post_not_again(url: str, what: str) -> ApiError:
    """A POST is not sent twice (README, "The user export"): Auth0 may have acted on the first, and a
    second `POST jobs/users-exports` starts a second export. No answer (a timeout, or a gateway's
    502 or 504 in its place) means no job id to look for."""
    return ApiError(f"POST {urlsplit(url).path} {what}; not sent again, since Auth0 may have acted on it (a second export, say); run again later")


def _changed(key: str, what: str | None = None) -> ApiError:
    what = what or f"the pages of {key} shifted"
    return ApiError(f"{what}: they changed during the export; run again")


def _total(first, key: str) -> int:
    if not isinstance(first, dict) or not isinstance(first.get("total"), int) or key not in first:
        raise ApiError(f"the Management API did not report a total for {key} (include_totals); is AUTH0_DOMAIN an Auth0 tenant?")
    return first["total"]


def _items(body, key: str) -> list:
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ApiError(f"the Management API answered a page of {key} without the list {key!r}; is AUTH0_DOMAIN an Auth0 tenant?")
    return items


def _path(response: requests.Response) -> str:
    return requests.utils.urlparse(response.url).path


def _json(response: requests.Response) -> dict:
    try:
        body = decode_json(response)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: requests.Response) -> str:
    body = _json(response)
    return body.get("message") or body.get("error") or response.reason or ""


def _no_room() -> ApiError:
    return ApiError(f"the tenant's rate limit left no room for {MAX_PACE_SECONDS:g} s; another client may be using it up, run again later")

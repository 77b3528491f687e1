"""`RUNNER_METRICS_ADDRESS`: `serve`'s small HTTP server for `/metrics`, `/healthz` and the status page `/` (README, "Operating it unattended", "Status page").

A plain WSGI app on the standard library's server, answered by a few threads (idle connections
hold none and are closed when silent for REQUEST_SECONDS); prometheus_client is
imported at the first `/metrics` request, so a `serve` that is never scraped never loads it.
`/healthz` is 200 while the scheduler loop ticks and the database answers, else 503; its JSON body
says which: `{"status", "scheduler": {"ok", "last_tick_seconds_ago"}, "database": {"ok", "error"}}`.
"""

from __future__ import annotations

import json
import logging
import queue
import selectors
import socket
import threading
from dataclasses import dataclass
from typing import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy import text

from batchrunner import clock
from batchrunner.errors import ConfigError, one_line
from batchrunner.store.database import Database

log = logging.getLogger("runner.health")

VARIABLE = "RUNNER_METRICS_ADDRESS"
DATABASE_SECONDS = 3.0  # a health check answers within this, even when the database hangs
# The loop wakes at least every 60 s (serve.MAX_WAIT); a tick older than this means it is stuck.
TICK_STALE_SECONDS = 90.0
# Idle connections must not hold a thread each (500 of them were 500 threads): they wait in one
# selector, and are closed when they send nothing for REQUEST_SECONDS, before or within a request.
REQUEST_SECONDS = 10.0
HANDLERS = 4  # requests answered at once: a scrape, a probe and room to spare
MAX_WAITING = 64  # connections waiting for their request; past this the oldest is closed


@dataclass(frozen=True)
class Address:
    host: str
    port: int


def parse_address(value: str) -> Address:
    """HOST:PORT, `[::1]:PORT` for IPv6; the host is required, so binding all interfaces is a choice made in writing."""
    text_value = value.strip()
    host, sep, port = text_value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if sep and host and port.isdigit() and int(port) > 65535:
        raise ConfigError(VARIABLE, f"{value!r}: port {int(port)} is out of range; give one from 1 to 65535 (0 picks a free one)")
    if not sep or not host or not port.isdigit():
        raise ConfigError(VARIABLE, f"{value!r} is not HOST:PORT; give e.g. 127.0.0.1:9464 (0.0.0.0:9464 to listen on every interface)")
    return Address(host, int(port))


def check_database(db: Database, seconds: float = DATABASE_SECONDS) -> str | None:
    """None when the database answers within `seconds`; else why not, on one line."""
    outcome: list[str | None] = []

    def probe():
        try:
            with db.read() as conn:
                conn.execute(text("SELECT 1"))
            outcome.append(None)
        except Exception as exc:
            outcome.append(one_line(getattr(exc, "orig", exc)))

    worker = threading.Thread(target=probe, name="healthz-db", daemon=True)
    worker.start()
    worker.join(seconds)
    return outcome[0] if outcome else f"no answer within {seconds:g} s"


@dataclass
class Health:
    db: Database
    last_tick: Callable[[], float | None]  # monotonic time of the scheduler's last tick that worked

    def report(self) -> tuple[int, dict]:
        tick = self.last_tick()
        ago = None if tick is None else round(clock.monotonic() - tick, 3)
        ticking = ago is not None and ago < TICK_STALE_SECONDS
        error = check_database(self.db)
        healthy = ticking and error is None
        body = {
            "status": "ok" if healthy else "unhealthy",
            "scheduler": {"ok": ticking, "last_tick_seconds_ago": ago},
            "database": {"ok": error is None, "error": error},
        }
        return (200 if healthy else 503), body


def app(health: Health, metrics_body: Callable[[], bytes], status=None):
    """`status`: the status page (status_page.StatusPage) answering `/` and `/runs/{id}`; None: no page."""

    def wsgi(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if status is not None and (path == "/" or path.startswith("/runs/")):
            return _status_page(status, path, start_response)
        if path == "/healthz":
            code, body = health.report()
            start_response(f"{code} {'OK' if code == 200 else 'Service Unavailable'}", [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [metrics_body()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /, /metrics or /healthz\n"]

    return wsgi


def _status_page(status, path: str, start_response):
    from batchrunner.operating.status_page import CSP, not_found

    code, body = "200 OK", None
    try:
        if path == "/":
            body = status.index()
        else:
            number = path[len("/runs/"):]
            body = status.run(int(number)) if number.isdigit() and len(number) < 19 else None
            if body is None:
                code, body = "404 Not Found", not_found(f"no run {number} is recorded")
    except Exception as exc:  # the database is down or locked: say so on the page, as /healthz does
        log.debug("status page: %s failed", path, exc_info=True)
        code, body = "503 Service Unavailable", not_found(f"the database did not answer: {one_line(getattr(exc, 'orig', exc))}")
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", CSP),
               ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store")]
    start_response(code, headers)
    return [body.encode()]


class _Server(WSGIServer):
    """Accepts on the `serve_forever` thread; a connection waits for its request in one selector,
    holding no thread, then one of HANDLERS threads answers it. Idle connections are closed after
    the timeout, and past MAX_WAITING the oldest first, so no number of them stops a scrape."""

    timeout_seconds = REQUEST_SECONDS
    request_queue_size = 128  # socketserver's 5 drops connections (SYN retried after 1, 3, 7 s) in a burst

    def server_activate(self) -> None:
        super().server_activate()
        self._closing = False
        self._arrived: queue.SimpleQueue = queue.SimpleQueue()  # accepted, not yet watched
        self._ready: queue.SimpleQueue = queue.SimpleQueue()  # their request has begun to arrive
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        threading.Thread(target=self._watch, name="metrics-idle", daemon=True).start()
        for n in range(1, HANDLERS + 1):
            threading.Thread(target=self._answer, name=f"metrics-{n}", daemon=True).start()

    def process_request(self, request, client_address) -> None:
        self._arrived.put((request, client_address))
        self._wake()

    def server_close(self) -> None:
        super().server_close()
        if not hasattr(self, "_wake_w"):  # the bind failed: socketserver closes before server_activate ran
            return
        self._closing = True
        self._wake()
        for _ in range(HANDLERS):
            self._ready.put(None)

    def handle_error(self, request, client_address) -> None:
        # A client that went away or sent its request too slowly: nothing to tell the journal.
        log.debug("metrics: a request from %s failed", client_address, exc_info=True)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"!")
        except OSError:  # its buffer is full: the watcher is awake already
            pass

    def _watch(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        waiting: dict = {}  # socket -> (address, when it is closed); oldest first
        while not self._closing:
            now = clock.monotonic()
            while not self._arrived.empty():
                request, address = self._arrived.get()
                waiting[request] = (address, now + self.timeout_seconds)
                selector.register(request, selectors.EVENT_READ)
            expired = [r for r, (_, end) in waiting.items() if end <= now]
            excess = list(waiting)[:max(0, len(waiting) - MAX_WAITING)]
            for request in dict.fromkeys(expired + excess):
                del waiting[request]
                selector.unregister(request)
                self.shutdown_request(request)
            left = min((end for _, end in waiting.values()), default=now + 60.0) - now
            for key, _ in selector.select(max(0.0, left)):
                if key.fileobj is self._wake_r:
                    self._wake_r.recv(4096)
                elif key.fileobj in waiting:
                    selector.unregister(key.fileobj)
                    self._ready.put((key.fileobj, waiting.pop(key.fileobj)[0]))
        for request in waiting:
            self.shutdown_request(request)
        selector.close()

    def _answer(self) -> None:
        while (item := self._ready.get()) is not None:
            request, address = item
            try:
                self.finish_request(request, address)
            except Exception:
                self.handle_error(request, address)
            finally:
                self.shutdown_request(request)


class _QuietHandler(WSGIRequestHandler):
    def setup(self) -> None:
        self.timeout = self.server.timeout_seconds  # each read of the request, and write of the answer
        super().setup()

    def log_message(self, *args):  # scrapes every 15 s would flood the journal
        pass


def start(address: Address, wsgi_app, poll_seconds: float = 60.0, timeout_seconds: float = REQUEST_SECONDS) -> WSGIServer:
    """Listen and serve in a daemon thread; ConfigError when the address cannot be bound.

    A request wakes the server at once; `poll_seconds` only bounds how long `shutdown()` waits,
    and a long one keeps an idle `serve` idle. A connection that sends nothing for `timeout_seconds`
    is closed.
    """
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    server_class = type("Server", (_Server,), {"address_family": family, "timeout_seconds": timeout_seconds})
    try:
        server = make_server(address.host, address.port, wsgi_app, server_class=server_class, handler_class=_QuietHandler)
    except OSError as exc:
        raise ConfigError(VARIABLE, f"cannot listen on {address.host}:{address.port}: {exc.strerror or exc}; choose another address") from None
    threading.Thread(target=server.serve_forever, args=(poll_seconds,), name="metrics", daemon=True).start()
    return server


def serve_for(scheduler) -> WSGIServer | None:
    """Start the server for a `serve` scheduler when RUNNER_METRICS_ADDRESS is set; None otherwise."""
    value = scheduler.settings.env.get(VARIABLE, "").strip()
    if not value:
        return None
    from batchrunner.operating import metrics
    from batchrunner.runs.registry import discover

    address = parse_address(value)
    # Every registered job, those turned off too (their series stay, without a next run).
    jobs = metrics.scheduled_jobs(scheduler.settings, discover(scheduler.settings.job_paths))
    from batchrunner.operating.status_page import StatusPage

    health = Health(scheduler.db, lambda: scheduler.last_tick)
    status = StatusPage(scheduler.db, lambda: {entry.key: entry.next_at for entry in scheduler.entries}, scheduler.now)
    server = start(address, app(health, lambda: metrics.exposition(scheduler.db, jobs, scheduler.now), status))
    host = f"[{address.host}]" if ":" in address.host else address.host
    log.info("metrics on http://%s:%d/metrics, health on /healthz, status page on /", host, server.server_port)
    return server

"""`RUNNER_METRICS_ADDRESS`: `serve`'s small HTTP server for `/metrics` and `/healthz` (SPEC section 16).

A plain WSGI app on the standard library's server, one thread per request; prometheus_client is
imported at the first `/metrics` request, so a `serve` that is never scraped never loads it.
`/healthz` is 200 while the scheduler loop ticks and the database answers, else 503; its JSON body
says which: `{"status", "scheduler": {"ok", "last_tick_seconds_ago"}, "database": {"ok", "error"}}`.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy import text

from . import clock
from .db import Database
from .errors import ConfigError, one_line

log = logging.getLogger("runner.health")

VARIABLE = "RUNNER_METRICS_ADDRESS"
DATABASE_SECONDS = 3.0  # a health check answers within this, even when the database hangs
# The loop wakes at least every 60 s (serve.MAX_WAIT); a tick older than this means it is stuck.
TICK_STALE_SECONDS = 90.0


@dataclass(frozen=True)
class Address:
    host: str
    port: int


def parse_address(value: str) -> Address:
    """HOST:PORT, `[::1]:PORT` for IPv6; the host is required, so binding all interfaces is a choice made in writing."""
    text_value = value.strip()
    host, sep, port = text_value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
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


def app(health: Health, metrics_body: Callable[[], bytes]):
    def wsgi(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            code, body = health.report()
            start_response(f"{code} {'OK' if code == 200 else 'Service Unavailable'}", [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [metrics_body()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]

    return wsgi


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # scrapes every 15 s would flood the journal
        pass


def start(address: Address, wsgi_app, poll_seconds: float = 60.0) -> WSGIServer:
    """Listen and serve in a daemon thread; ConfigError when the address cannot be bound.

    A request wakes the server at once; `poll_seconds` only bounds how long `shutdown()` waits,
    and a long one keeps an idle `serve` idle.
    """
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    server_class = type("Server", (_Server,), {"address_family": family})
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
    from . import metrics
    from .registry import discover

    address = parse_address(value)
    # Every registered job, those turned off too (their series stay, without a next run).
    jobs = metrics.scheduled_jobs(scheduler.settings, discover(scheduler.settings.job_paths))
    health = Health(scheduler.db, lambda: scheduler.last_tick)
    server = start(address, app(health, lambda: metrics.exposition(scheduler.db, jobs, scheduler.now)))
    host = f"[{address.host}]" if ":" in address.host else address.host
    log.info("metrics on http://%s:%d/metrics, health on /healthz", host, server.server_port)
    return server

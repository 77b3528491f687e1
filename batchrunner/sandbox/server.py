"""The stand-in tenant on loopback: a threaded HTTP/1.1 server (keep-alive) in front of the tenant's
parts, dispatching by a route table (method, path pattern -> handler)."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

from . import checks, contract
from . import management as api
from .clock import SandboxClock
from .directory import Directory
from .encoded import JsonBytes
from .exports import Exports, FileBody
from .logs import LogStore
from .management import Request
from .ratelimits import EndpointBuckets, tighter
from .sizes import Sizes
from .tenant import DEFAULT_CLIENT_ID, Reply, SandboxApp, _api_error

NOT_FOUND = Reply(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})
TOO_MANY = "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers."
CHUNK = 256 * 1024


@dataclass
class Route:
    """`scopes`: a Management API call needing any of them (authenticated, scope-checked, rate-limited
    here before `handler` runs); None: the handler does its own checking, or none is due."""

    method: str
    pattern: str
    handler: Callable
    scopes: tuple[str, ...] | None = None
    bucket: str | None = None

    def __post_init__(self):
        self.regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern) + "$")


def _token(sb: "Sandbox", req: Request) -> Reply:
    app = sb.tenant
    app.count("token_requests")
    _wait(app.token_latency)
    return app.injected_failure(req.path) or app.token(req.json if req.json is not None else (req.form or {}))


def _clients(sb: "Sandbox", req: Request) -> Reply:
    """GET /api/v2/clients: the tenant's own checks (tenant.py), then the Read Clients bucket."""
    app = sb.tenant
    app.count("api_requests")
    reply = app.injected_failure(req.path) or app.list_clients(_authorization(req), req.query, lambda: _refused(CLIENTS, req))
    if reply.status in (401, 403, 429):
        return reply
    return _endpoint_bucket(sb, "Read Clients", reply.headers) or _with_headers(reply, tighter(reply.headers, sb._last_taken.value))


CLIENTS = Route("GET", "/api/v2/clients", _clients)
ROUTES = [
    Route("POST", "/oauth/token", _token),
    CLIENTS,
    Route("GET", "/api/v2/client-grants", api.client_grants, ("read:client_grants",)),
    Route("GET", "/api/v2/resource-servers", api.resource_servers, ("read:resource_servers",)),
    Route("GET", "/api/v2/roles", api.roles, ("read:roles",)),
    Route("GET", "/api/v2/roles/{id}/permissions", api.role_permissions, ("read:roles",)),
    Route("GET", "/api/v2/roles/{id}/users", api.role_users, ("read:users", "read:roles", "read:role_members")),
    Route("GET", "/api/v2/organizations", api.organizations, ("read:organizations", "read:organizations_summary"), "Read Organizations"),
    Route("GET", "/api/v2/organizations/{id}/members", api.organization_members, ("read:organization_members",), "Read Organization Members"),
    Route("GET", "/api/v2/connections", api.connections, ("read:connections",), "Read Connections"),
    Route("GET", "/api/v2/clients/{client_id}/credentials", api.client_credentials, ("read:client_credentials",)),
    Route("GET", "/api/v2/log-streams", api.log_streams, ("read:log_streams",)),
    Route("GET", "/api/v2/custom-domains", api.custom_domains, ("read:custom_domains",)),
    Route("GET", "/api/v2/keys/signing", api.signing_keys, ("read:signing_keys",)),
    Route("GET", "/api/v2/logs", api.logs, ("read:logs", "read:logs_users"), "Read Logs"),
    Route("GET", "/api/v2/logs/{id}", api.log, ("read:logs", "read:logs_users"), "Read Logs"),
    Route("POST", "/api/v2/jobs/users-exports", api.create_users_export, ("read:users",)),
    Route("GET", "/api/v2/jobs/{id}", api.job, ("create:users", "read:users", "create:passwords_checking_job")),
    Route("GET", "/api/v2/users/{id}", api.get_user, ("read:users", "read:current_user", "read:user_idp_tokens"), "Read Users"),
    Route("PATCH", "/api/v2/users/{id}", api.patch_user, ("update:users", "update:users_app_metadata", "update:current_user_metadata"), "Write Users"),
    Route("DELETE", "/api/v2/users/{id}", api.delete_user, ("delete:users", "delete:current_user"), "Delete Users"),
    Route("GET", "/user-exports/{job}/{file}", api.download),  # the "signed storage URL": no bearer token
]


def _authorization(req: Request) -> str:
    return next((v for k, v in req.headers.items() if k.lower() == "authorization"), "")


def _refused(route: Route, req: Request) -> Reply | None:
    """Auth0's 400 for a request its published description does not allow (contract.py), else None."""
    operation = contract.operation(route.method, route.pattern)
    problem = operation and contract.check(operation, req.params, req.pairs, req.json)
    if not problem:
        return None
    return Reply(400, _api_error(400, "Bad Request", problem.text(), problem.code))


def _with_headers(reply: Reply, headers: dict) -> Reply:
    reply.headers.update(headers)
    return reply


def _endpoint_bucket(sb: "Sandbox", name: str, global_headers: dict) -> Reply | None:
    """Take from the endpoint's bucket (when they are on); a 429 when it is empty, else None."""
    now = sb.clock()
    taken = sb.buckets.take(name, now)
    sb._last_taken.value = taken
    if taken is None or taken.allowed:
        return None
    sb.tenant.count("responses_429")
    headers = taken.headers()
    if sb.tenant.retry_after_on_429:
        headers["Retry-After"] = str(max(1, taken.reset - int(now)))
    return Reply(429, _api_error(429, "Too Many Requests", TOO_MANY, "too_many_requests"), headers)


def _management(sb: "Sandbox", route: Route, req: Request) -> Reply:
    """Auth0's order: the token, its scope, the global bucket, the endpoint's bucket, then the answer."""
    app = sb.tenant
    app.count("api_requests")
    failure = app.injected_failure(req.path)
    if failure:
        return failure
    claims, problem = app._authenticate(_authorization(req))
    if problem:
        return problem
    if not set(route.scopes) & set(claims["scope"].split()):
        return Reply(403, _api_error(403, "Forbidden", "Insufficient scope, expected any of: " + ", ".join(route.scopes), "insufficient_scope"))
    refused = _refused(route, req)
    if refused:
        return refused
    limited, headers = app._take_from_bucket()
    if limited:
        return limited
    refused = _endpoint_bucket(sb, route.bucket or "", headers)
    if refused:
        return refused
    with sb.directory.lock:
        reply = route.handler(sb, req)
    reply.headers.update(tighter(headers, sb._last_taken.value))
    if reply.status < 300:
        app._count_success()
    return reply


@dataclass
class Exchange:
    """A request as sent (`target`: path and query) and the stand-in's answer, for `Sandbox.transcript`."""

    method: str
    target: str
    json: object
    status: int
    headers: dict
    body: object  # as answered, as data: a dict or list for JSON (a pre-encoded page decoded)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # fifty processes may knock at once

    def __init__(self, address, sandbox: "Sandbox"):
        super().__init__(address, _Handler)
        self.sandbox = sandbox
        self.app = sandbox.tenant

    def handle_error(self, request, client_address):
        # A client that went away mid-answer (a run killed or ended early) is no error of the tenant's.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


_date = (0, "")  # (epoch second, the Date header's text for it)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "auth0-stand-in/1"
    # Headers and body go out in two writes; with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers (40 ms on Linux), which no real tenant adds to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # quiet: tests and `runner sandbox` read their own output
        pass

    def date_time_string(self, timestamp=None) -> str:
        # The Date header formatted once a second rather than once an answer: the stand-in shares the
        # machine with the runner (README, "The stand-in tenant").
        global _date
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second, text = _date
        if second != int(time.time()):
            second = int(time.time())
            text = super().date_time_string(second)
            _date = (second, text)
        return text

    def do_POST(self):
        self._dispatch()

    def do_GET(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        body = self._body()
        sb = self.server.sandbox
        form = payload = None
        pairs = parse_qsl(url.query, keep_blank_values=True)
        if self.command in ("POST", "PATCH"):
            form, payload = self._parse(body)
            entry = self._entry(url, form=form, json_body=payload)
        else:
            entry = self._entry(url, query=dict(pairs))
        self._wait(sb.tenant.latency / 2)
        reply = NOT_FOUND
        for route in ROUTES:
            match = route.regex.match(url.path)
            if match and route.method == self.command:
                req = Request(self.command, url.path, match.groupdict(), dict(pairs), dict(self.headers.items()), payload, form, pairs)
                reply = _management(sb, route, req) if route.scopes else route.handler(sb, req)
                break
        self._send(reply, entry)

    def _send(self, reply: Reply, entry: dict) -> None:
        self._wait(self.server.app.latency / 2)
        transcript = self.server.sandbox.transcript
        if transcript is not None:
            answered = reply.body.value() if isinstance(reply.body, JsonBytes) else reply.body
            transcript.append(Exchange(self.command, self.path, entry["json"], reply.status, dict(reply.headers), answered))
        body = reply.body
        headers = dict(reply.headers)
        kind = headers.pop("Content-Type", "application/json; charset=utf-8")
        if isinstance(body, FileBody):
            size = body.size
        else:
            # A text body is a page as a proxy would send it (its Content-Type among the headers).
            body = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else json.dumps(body).encode()
            size = len(body)
        entry["status"] = reply.status
        self.server.app.record(entry)
        self.send_response(reply.status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(size))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if isinstance(body, FileBody):
            self._stream(body)
        else:
            self.wfile.write(body)

    def _stream(self, body: FileBody) -> None:
        fd, offset = body.file.fileno(), 0
        while offset < body.size:
            chunk = os.pread(fd, min(CHUNK, body.size - offset), offset)
            if not chunk:
                break
            self.wfile.write(chunk)
            offset += len(chunk)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _parse(self, body: bytes) -> tuple[dict | None, dict | None]:
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                value = json.loads(body or b"{}")
                return None, value if isinstance(value, dict) else {}
            except ValueError:
                return None, {}
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)), None

    def _entry(self, url, query=None, form=None, json_body=None) -> dict:
        return {"at": time.time(), "method": self.command, "path": url.path, "query": query or dict(parse_qsl(url.query)),
                "headers": dict(self.headers.items()), "form": form, "json": json_body, "status": None}

    @staticmethod
    def _wait(seconds: float) -> None:
        _wait(seconds)


def _wait(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


class Sandbox:
    """A stand-in tenant: `Sandbox(clients=50).start()`, then point AUTH0_DOMAIN at `.base_url`.

    Its parts: `.tenant` (credentials, tokens, applications, the global bucket, failure switches),
    `.directory` (grants, APIs, roles, organizations, connections), `.checks` (log streams, custom
    domains, signing keys, client credentials, the certificates' connections), `.logs`, `.exports`, `.buckets`
    (per-endpoint rate limits, off by default) and `.clock` (`advance(seconds)` moves it on).
    """

    def __init__(self, clients: int = 50, port: int = 0, seed: int = 1, sizes: Sizes | None = None,
                 client_id: str | None = None):  # None: DEFAULT_CLIENT_ID
        self.sizes = sizes or Sizes()
        self.seed, self.clients = seed, clients
        self.clock = SandboxClock()
        self.tenant = SandboxApp(clients=clients, seed=seed, clock=self.clock, client_id=client_id or DEFAULT_CLIENT_ID)
        self.buckets = EndpointBuckets()
        self.logs = LogStore(seed, self.clock, self.sizes.log_events, self.sizes.log_retention_days, clients, self.sizes.users)
        self.exports = Exports(seed, self.clock, self.sizes.export_users)
        self._last_taken = threading.local()
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.checks = checks.TenantChecks(seed, clients, self.clock())
        self.directory = self._directory()
        self.transcript: list[Exchange] | None = None  # a list: every exchange is added to it (off by default)

    def start(self) -> "Sandbox":
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self.tenant.audience = f"{self.base_url}/api/v2/"
        self.tenant.issuer = f"{self.base_url}/"
        self.directory = self._directory()  # the Management API's identifier is the audience
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name="sandbox")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Every part back to its defaults (the same data, switches off, the clock at the wall's)."""
        self.clock.reset()
        self.tenant.reset()
        self.buckets.reset()
        self.logs.reset()
        self.exports.reset()
        self.checks = checks.TenantChecks(self.seed, self.clients, self.clock())
        self.directory = self._directory()
        self.transcript = None

    def set_scopes(self, scopes: list[str]) -> None:
        """The scopes granted to the default machine-to-machine application (tokens issued from now on)."""
        self.tenant.add_m2m(self.client_id, self.client_secret, scopes)

    def describe(self) -> list[str]:
        """What the tenant holds, a line per part, for `runner sandbox` to print."""
        d, sizes = self.directory, self.sizes
        big_role = next((r["name"] for r in d.roles if r["id"] == d.big_role), None)
        big_org = next((o["name"] for o in d.organizations if o["id"] == d.big_organization), None)
        rate = f"{self.logs.rate:g} a second arriving" if self.logs.rate else "none arriving"
        return [
            f"{self.clients} applications, {len(d.client_grants)} client grants, {len(d.resource_servers)} APIs, "
            f"{len(d.connections)} connections ({', '.join(c['name'] for c in d.connections)})",
            f"{len(d.roles)} roles" + (f" ({big_role}: {len(d.role_members[d.big_role]):,} members)" if big_role else ""),
            f"{len(d.organizations)} organizations" + (f" ({big_org}: {len(d.organization_members[d.big_organization]):,} members)" if big_org else ""),
            f"{len(self.logs.held()):,} log events ({rate}, kept {sizes.log_retention_days:g} day{'' if sizes.log_retention_days == 1 else 's'})",
            f"a bulk user export of {self.exports.users:,} users",
            f"for tenant-checks: {len(self.checks.log_streams)} log streams, {len(self.checks.custom_domains)} custom domains, "
            f"{len(self.checks.signing_keys)} signing keys, {len(self.checks.credentials)} private_key_jwt applications",
            "rate limits: " + (f"{self.tenant.rate:g} requests/s, burst {self.tenant.burst}" if self.tenant.rate else "none global")
            + ("; Essentials' per-endpoint buckets" if self.buckets.enabled else ""),
            "scopes of the application: " + " ".join(self.tenant.m2m[self.client_id].scopes),
        ]

    def _directory(self) -> Directory:
        own = (self.tenant.client_id, self.tenant.m2m[self.tenant.client_id].scopes)
        return Directory(self.seed, self.sizes, self.clients, self.tenant.audience, own, self.checks.connections)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    domain = base_url

    @property
    def audience(self) -> str:
        return self.tenant.audience

    @property
    def client_id(self) -> str:
        return self.tenant.client_id

    @property
    def client_secret(self) -> str:
        return self.tenant.client_secret

    def settings(self) -> dict[str, str]:
        """The environment variables that point the runner at this tenant."""
        return {"AUTH0_DOMAIN": self.base_url, "AUTH0_CLIENT_ID": self.client_id, "AUTH0_CLIENT_SECRET": self.client_secret}

"""The stand-in tenant on loopback: a threaded HTTP/1.1 server (keep-alive) in front of SandboxApp."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from .tenant import Reply, SandboxApp


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # fifty processes may knock at once

    def __init__(self, address, app: SandboxApp):
        super().__init__(address, _Handler)
        self.app = app

    def handle_error(self, request, client_address):
        # A client that went away mid-answer (a run killed or ended early) is no error of the tenant's.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "auth0-stand-in/1"

    def log_message(self, format, *args):  # quiet: tests and `runner sandbox` read their own output
        pass

    def do_POST(self):
        url = urlsplit(self.path)
        body = self._body()
        form, payload = self._parse(body)
        app = self.server.app
        entry = self._entry(url, form=form, json_body=payload)
        self._wait(app.latency / 2)
        if url.path == "/oauth/token":
            app.count("token_requests")
            self._wait(app.token_latency)
            reply = app.injected_failure(url.path) or app.token(payload if payload is not None else (form or {}))
        else:
            reply = Reply(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})
        self._send(reply, entry)

    def do_GET(self):
        url = urlsplit(self.path)
        self._body()
        app = self.server.app
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        entry = self._entry(url, query=query)
        self._wait(app.latency / 2)
        if url.path == "/api/v2/clients":
            app.count("api_requests")
            reply = app.injected_failure(url.path) or app.list_clients(self.headers.get("Authorization", ""), query)
        else:
            reply = Reply(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})
        self._send(reply, entry)

    def _send(self, reply: Reply, entry: dict) -> None:
        self._wait(self.server.app.latency / 2)
        # A text body is a page as a proxy would send it (its Content-Type among the headers).
        data = reply.body.encode() if isinstance(reply.body, str) else json.dumps(reply.body).encode()
        entry["status"] = reply.status
        self.server.app.record(entry)
        self.send_response(reply.status)
        if "Content-Type" not in reply.headers:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

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
        if seconds > 0:
            time.sleep(seconds)


class Sandbox:
    """A stand-in tenant: `Sandbox(clients=50).start()`, then point AUTH0_DOMAIN at `.base_url`."""

    def __init__(self, clients: int = 50, port: int = 0, seed: int = 1):
        self.tenant = SandboxApp(clients=clients, seed=seed)
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "Sandbox":
        self._server = _Server(("127.0.0.1", self.port), self.tenant)
        self.port = self._server.server_address[1]
        self.tenant.audience = f"{self.base_url}/api/v2/"
        self.tenant.issuer = f"{self.base_url}/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name="sandbox")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        self.tenant.reset()

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

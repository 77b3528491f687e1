"""The way to Auth0 through a proxy and a CA of one's own (RUNNER_HTTPS_PROXY, RUNNER_CA_BUNDLE).

A stand-in tenant behind TLS with a certificate of its own for `tenant.test`, a name only the test's
CONNECT proxy on loopback knows: a run that reaches it went through the proxy, and trusted the
certificate only through the bundle.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from batchrunner.auth0.pacing import FIRST_WAVE
from batchrunner.sandbox import Sandbox
from batchrunner.sandbox.server import _Server
from conftest import JOBS

HOST = "tenant.test"

# Nothing here concerns the database: SQLite alone keeps the suite short.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}",
         "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
        check=True, capture_output=True,
    )
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture(scope="module")
def tls_sandbox():
    return Sandbox(clients=30, seed=3)


@pytest.fixture(scope="module")
def tls_tenant(certificate, tls_sandbox):
    sandbox = tls_sandbox
    app = sandbox.tenant
    app.audience, app.issuer = f"https://{HOST}/api/v2/", f"https://{HOST}/"
    server = _Server(("127.0.0.1", 0), sandbox)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    # The handshake happens in the request's own thread, on its first read.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app, server.server_address[1]
    server.shutdown()
    server.server_close()


class ConnectProxy:
    """A CONNECT proxy on loopback that knows one name, tenant.test:443, and records what it was asked."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.asked: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return client.close()
            head += chunk
        request_line = head.split(b"\r\n")[0].decode()
        self.asked.append(request_line)
        if request_line.split()[:2] != ["CONNECT", f"{HOST}:443"]:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return client.close()
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def close(self):
        self.listener.close()


def _pipe(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def proxy(tls_tenant):
    app, port = tls_tenant
    app.reset()
    proxy = ConnectProxy(port)
    yield proxy
    proxy.close()


@pytest.fixture
def tls_env(local_env, tls_tenant, proxy):
    app, _ = tls_tenant
    return {**local_env, "AUTH0_DOMAIN": HOST, "AUTH0_CLIENT_ID": app.client_id, "AUTH0_CLIENT_SECRET": app.client_secret,
            "RUNNER_HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"}


@SQLITE_ONLY
def test_an_export_through_the_proxy_trusting_the_bundle(local_runner, tls_env, tls_tenant, proxy, certificate, tmp_path):
    app, _ = tls_tenant
    result = local_runner("run-job", "export-clients", extra_env={**tls_env, "RUNNER_CA_BUNDLE": str(certificate[0])})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("export-clients succeeded (run 1): 30 rows written to ")
    assert proxy.asked and all(line.startswith(f"CONNECT {HOST}:443 HTTP/") for line in proxy.asked)
    assert app.token_requests == 1 and app.api_requests <= FIRST_WAVE  # one page, and one asked beside it
    printed = local_runner("token", "print", extra_env={**tls_env, "RUNNER_CA_BUNDLE": str(certificate[0])})
    assert printed.returncode == 0, printed.stderr  # `token print` takes the same way


@SQLITE_ONLY
def test_without_the_bundle_the_certificate_is_refused_in_one_line(local_runner, tls_env, proxy):
    result = local_runner("run-job", "export-clients", extra_env=tls_env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"runner: export-clients failed (run 1): TLS with https://{HOST}/oauth/token failed; check AUTH0_DOMAIN, "
        "and that this machine trusts the tenant's certificate (RUNNER_CA_BUNDLE)"
    )
    assert proxy.asked  # it got as far as the tenant, through the proxy


@SQLITE_ONLY
def test_proxies_of_the_environment_are_not_used_nor_for_plain_http_to_loopback(runner, tenant, proxy):
    everywhere = f"http://127.0.0.1:{proxy.port}"
    result = runner("run-job", "export-clients", extra_env={
        "RUNNER_HTTPS_PROXY": everywhere, "HTTPS_PROXY": everywhere, "HTTP_PROXY": everywhere, "ALL_PROXY": everywhere,
        "https_proxy": everywhere, "http_proxy": everywhere})
    assert result.returncode == 0, result.stderr
    assert proxy.asked == []


@pytest.mark.parametrize("variable, value, message", [
    ("RUNNER_CA_BUNDLE", "{tmp}/missing.pem",
     "RUNNER_CA_BUNDLE: {tmp}/missing.pem is not a file; give the path of a PEM file of the CA certificates to trust"),
    ("RUNNER_CA_BUNDLE", "{tmp}/not.pem",
     "RUNNER_CA_BUNDLE: cannot use {tmp}/not.pem: it holds no PEM certificate; give a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)"),
    ("RUNNER_HTTPS_PROXY", "socks5://me:hunter2-secret@proxy:1080",
     "RUNNER_HTTPS_PROXY: expected the URL of an HTTP proxy, e.g. http://proxy.internal:3128 (optionally with user:password@)"),
])
@SQLITE_ONLY
def test_a_bad_network_setting_is_exit_2_in_one_line(runner, tmp_path, variable, value, message):
    (tmp_path / "not.pem").write_text("not a certificate\n")
    result = runner("run-job", "export-clients", extra_env={variable: value.format(tmp=tmp_path)})
    assert (result.returncode, result.stderr) == (2, f"runner: {message.format(tmp=tmp_path)}\n")


@SQLITE_ONLY
def test_the_user_export_downloads_through_the_proxy_without_the_token(local_runner, tls_env, tls_sandbox, proxy, certificate):
    tls_sandbox.exports.reset()
    tls_sandbox.set_scopes(["read:users"])
    tls_sandbox.exports.download_base = f"https://{HOST}"  # the storage host: only the proxy knows its name
    result = local_runner("run-job", "export-users", extra_env={**tls_env, "RUNNER_CA_BUNDLE": str(certificate[0])})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("export-users succeeded (run 1): 300 rows written to ")
    assert [d["status"] for d in tls_sandbox.exports.downloads] == [200]
    assert not tls_sandbox.exports.downloads[0]["authorization"]
    assert proxy.asked and all(line.startswith(f"CONNECT {HOST}:443 HTTP/") for line in proxy.asked)


@SQLITE_ONLY
def test_pings_and_notifications_go_through_the_proxy_trusting_the_bundle(local_runner, tls_env, tls_tenant, proxy, certificate):
    app, _ = tls_tenant
    hooks = {"RUNNER_PING_URL": f"https://{HOST}/ping/{{job}}", "RUNNER_NOTIFY_URL": f"https://{HOST}/notify",
             "RUNNER_CA_BUNDLE": str(certificate[0]), "RUNNER_JOBS": JOBS}
    result = local_runner("run-job", "failing", extra_env={**tls_env, **hooks})  # a job that needs no API
    assert result.returncode == 1
    assert [(r["method"], r["path"]) for r in app.received] == [
        ("POST", "/ping/failing/start"), ("POST", "/ping/failing/fail"), ("POST", "/notify")]
    assert len(proxy.asked) >= 1 and all(line.startswith(f"CONNECT {HOST}:443 HTTP/") for line in proxy.asked)

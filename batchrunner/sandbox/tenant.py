"""The stand-in tenant's state and rules, without sockets: credentials, JWTs, applications, the
Management API's token bucket, switches for failures, and counters a test can read.

It follows Auth0's documented behaviour for the parts the runner uses (client-credentials tokens,
GET /api/v2/clients, rate-limit headers and error bodies). Time comes from `clock` (epoch seconds).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from .encoded import EncodedApplications, selection
from .encoded import page as encoded_page

DEFAULT_CLIENT_ID = "sandboxM2MClient0000000000000001"
SECRET_PREFIX = "SANDBOXSECRET"
KEY_MARK = "SANDBOXKEY"
APP_TYPES = ["regular_web", "spa", "native", "non_interactive"]
GRANTS = {
    "regular_web": ["authorization_code", "refresh_token", "implicit"],
    "spa": ["authorization_code", "refresh_token", "implicit"],
    "native": ["authorization_code", "refresh_token", "implicit", "password"],
    "non_interactive": ["client_credentials"],
}
FORMULAS = ['=HYPERLINK("http://evil.example/","click")', "+1+1", "-2+3", "@SUM(A1:A2)", "\tTabbed"]
RECEIVED_LIMIT = 10_000
# The selection a client that must not hold secrets asks (export-clients does; README, "The export:
# `export-clients`"), encoded ahead by set_clients beside each whole application.
WITHOUT_SECRETS = (frozenset({"client_secret", "signing_keys", "encryption_key", "client_authentication_methods"}), False)
HTML_PAGE = "<html><head><title>Request blocked</title></head><body><h1>Access denied</h1></body></html>"


@dataclass
class M2M:
    secret: str
    scopes: list[str]
    authorised: bool = True


@dataclass
class Reply:
    status: int
    body: object
    headers: dict[str, str] = field(default_factory=dict)


class SandboxApp:
    def __init__(self, clients: int = 50, seed: int = 1, clock: Callable[[], float] = time.time, client_id: str = DEFAULT_CLIENT_ID):
        self.seed, self.initial_clients, self.clock = seed, clients, clock
        self.audience = "http://127.0.0.1/api/v2/"  # set by the server once it knows its port
        self.issuer = "http://127.0.0.1/"
        self.client_id = client_id
        self.client_secret = _secret(f"default-m2m-{seed}")[:48]
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._encoded = EncodedApplications()  # kept through reset(): an entry never goes stale (encoded.py)
        self.reset()

    # --- switches and counters -------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.clients = self.initial_clients
            self.prepended = 0  # applications created since, listed before the others
            self.m2m = {self.client_id: M2M(self.client_secret, ["read:clients"])}
            self.latency = 0.0
            self.token_latency = 0.0
            self.rate: float | None = None
            self.burst = 10
            self.retry_after_on_429 = False
            self.unlisted_clients = 0  # counted in the clients' `total` but never listed (a broken server)
            self.token_lifetime = 86400
            self._failures: deque = deque()
            self._tokens_issued = 0
            self._expired_upto = 0
            self._revoked_upto = 0
            self._expire_countdown: int | None = None
            self._bucket: float | None = None
            self._bucket_at = 0.0
            self.token_requests = 0
            self.api_requests = 0
            self.responses_429 = 0
            self.received: deque = deque(maxlen=RECEIVED_LIMIT)

    def add_m2m(self, client_id: str, client_secret: str, scopes: list[str], authorised: bool = True) -> None:
        with self._lock:
            self.m2m[client_id] = M2M(client_secret, list(scopes), authorised)

    def set_clients(self, n: int) -> None:
        """n applications from now on, each encoded here, before any page asks for it (encoded.py):
        a bench's night then costs the stand-in its answers, not the making of its applications."""
        self.clients = n
        keys = "read:client_keys" in self.m2m[self.client_id].scopes
        for i in range(n):
            self._encoded.encoded((self.seed, i, keys), self._made, WITHOUT_SECRETS)

    def prepend_application(self) -> None:
        """An application created now, listed first: every later page shifts by one (offset paging)."""
        with self._lock:
            self.prepended += 1

    def fail_next(self, path_prefix: str, statuses: list[int], retry_after: int | str | None = None) -> None:
        """The next answers on the path: these statuses, with Auth0's error body and `Retry-After` as given."""
        with self._lock:
            self._failures.extend((path_prefix, status, retry_after) for status in statuses)

    def answer_html_next(self, path_prefix: str, count: int = 1) -> None:
        """The next answers on the path: 200 with an HTML page, as a proxy or a web firewall sends."""
        self.fail_next(path_prefix, [200] * count)

    def expire_all_tokens(self) -> None:
        with self._lock:
            self._expired_upto = self._tokens_issued

    def revoke_all_tokens(self) -> None:
        with self._lock:
            self._revoked_upto = self._tokens_issued

    def expire_tokens_after(self, n_requests: int) -> None:
        with self._lock:
            self._expire_countdown = n_requests

    # --- the applications ------------------------------------------------------------------

    def application(self, i: int, keys: bool = True) -> dict:
        """Application number i (0-based), the same every time for the same seed."""
        return application(self.seed, i, keys)

    def _made(self, key: tuple) -> dict:
        """The application an encoded entry is keyed by (seed, its number or "global", keys)."""
        _, number, keys = key
        return self.global_client(keys) if number == "global" else self.application(number, keys)

    def global_client(self, keys: bool) -> dict:
        app = application(self.seed, -1, keys)
        app.update(name="All Applications", **{"global": True})
        del app["app_type"], app["description"]  # unset: Auth0 leaves a field out rather than send null
        return app

    # --- requests --------------------------------------------------------------------------

    def count(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def record(self, entry: dict) -> None:
        with self._lock:
            self.received.append(entry)

    def injected_failure(self, path: str) -> Reply | None:
        with self._lock:
            if not self._failures or not path.startswith(self._failures[0][0]):
                return None
            _, status, retry_after = self._failures.popleft()
            if status == 429:
                self.responses_429 += 1
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if status == 200:
            return Reply(200, HTML_PAGE, {"Content-Type": "text/html; charset=utf-8"})
        return Reply(status, _api_error(status, _REASONS.get(status, "Error"), _REASONS.get(status, "Error")), headers)

    def token(self, params: dict) -> Reply:
        """POST /oauth/token with the client-credentials grant, as Auth0 answers it."""
        grant = params.get("grant_type")
        if not grant:
            return Reply(400, _oauth_error("invalid_request", "Missing required parameter: grant_type"))
        if grant != "client_credentials":
            return Reply(403, _oauth_error("unauthorized_client", f"Grant type '{grant}' not allowed for the client."))
        app = self.m2m.get(str(params.get("client_id") or ""))
        if app is None or not hmac.compare_digest(app.secret.encode(), str(params.get("client_secret") or "").encode()):
            return Reply(401, _oauth_error("access_denied", "Unauthorized"))
        audience = params.get("audience")
        if not audience:
            return Reply(403, _oauth_error("access_denied", "No audience parameter was provided, and no default audience has been configured"))
        if audience != self.audience:
            return Reply(403, _oauth_error("access_denied", f"Service not found: {audience}"))
        if not app.authorised:
            return Reply(403, _oauth_error(
                "access_denied",
                f'Client is not authorized to access "{audience}". You need to create a "client-grant" associated to this API. '
                "See: https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants",
            ))
        scope = " ".join(app.scopes)
        return Reply(200, {"access_token": self._jwt(params["client_id"], scope), "scope": scope,
                           "expires_in": self.token_lifetime, "token_type": "Bearer"})

    def list_clients(self, authorization: str, query: dict, refused: Callable[[], Reply | None] = lambda: None) -> Reply:
        """GET /api/v2/clients: authentication, scope, `refused` (the request's check), rate limit, then the page."""
        claims, problem = self._authenticate(authorization)
        if problem:
            return problem
        scopes = claims["scope"].split()
        if "read:clients" not in scopes:
            return Reply(403, _api_error(403, "Forbidden", "Insufficient scope, expected any of: read:clients", "insufficient_scope"))
        problem = refused()
        if problem:
            return problem
        limited, headers = self._take_from_bucket()
        if limited:
            return limited
        reply = self._page(query, "read:client_keys" in scopes)
        reply.headers.update(headers)
        if reply.status == 200:
            self._count_success()
        return reply

    # --- internals -------------------------------------------------------------------------

    def _jwt(self, client_id: str, scope: str) -> str:
        now = int(self.clock())
        with self._lock:
            self._tokens_issued += 1
            number = self._tokens_issued
        header = {"alg": "HS256", "typ": "JWT", "kid": "sandbox"}
        claims = {"iss": self.issuer, "sub": f"{client_id}@clients", "aud": self.audience, "iat": now,
                  "exp": now + self.token_lifetime, "scope": scope, "gty": "client-credentials",
                  "azp": client_id, "jti": f"{number}.{os.urandom(6).hex()}"}
        signing_input = f"{_b64(json.dumps(header))}.{_b64(json.dumps(claims))}"
        return f"{signing_input}.{_b64(self._sign(signing_input))}"

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()

    def _authenticate(self, authorization: str) -> tuple[dict | None, Reply | None]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None, Reply(401, _api_error(401, "Unauthorized", "Missing authentication"))
        try:
            head, payload, signature = token.split(".")
            valid = hmac.compare_digest(_unb64(signature), self._sign(f"{head}.{payload}"))
            claims = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            valid, claims = False, {}
        if not valid or claims.get("aud") != self.audience:
            return None, Reply(401, _api_error(401, "Unauthorized", "Invalid token"))
        number = int(claims["jti"].split(".")[0])
        if number <= self._revoked_upto:
            return None, Reply(401, _api_error(401, "Unauthorized", "Invalid token"))
        if number <= self._expired_upto or claims["exp"] <= self.clock():
            message = "Expired token received for JSON Web Token validation"
            return None, Reply(401, {**_api_error(401, "Unauthorized", message), "attributes": {"error": message}})
        return claims, None

    def _take_from_bucket(self) -> tuple[Reply | None, dict]:
        if not self.rate:
            return None, {}
        with self._lock:
            now = self.clock()
            if self._bucket is None:
                self._bucket, self._bucket_at = float(self.burst), now
            self._bucket = min(float(self.burst), self._bucket + (now - self._bucket_at) * self.rate)
            self._bucket_at = now
            allowed = self._bucket >= 1
            if allowed:
                self._bucket -= 1
            # x-ratelimit-reset: the epoch second at which a request is next added to the bucket.
            reset = math.ceil(now + max(0.0, 1 - self._bucket) / self.rate)
            headers = {"x-ratelimit-limit": str(self.burst), "x-ratelimit-remaining": str(int(self._bucket)),
                       "x-ratelimit-reset": str(reset)}
            if allowed:
                return None, headers
            self.responses_429 += 1
        if self.retry_after_on_429:
            headers["Retry-After"] = str(max(1, reset - int(now)))
        return Reply(429, _api_error(429, "Too Many Requests", "Global limit has been reached", "too_many_requests"), headers), headers

    def _count_success(self) -> None:
        with self._lock:
            if self._expire_countdown is not None:
                self._expire_countdown -= 1
                if self._expire_countdown <= 0:
                    self._expired_upto, self._expire_countdown = self._tokens_issued, None

    def _page(self, query: dict, keys: bool) -> Reply:
        try:
            page = int(query.get("page", "0"))
            per_page = int(query.get("per_page", "50"))
        except ValueError:
            return Reply(400, _api_error(400, "Bad Request", "Query validation error: page and per_page must be integers", "invalid_query_string"))
        if page < 0 or not 0 <= per_page <= 100:
            return Reply(400, _api_error(400, "Bad Request", f"Query validation error: 'Invalid value \"{per_page}\" for parameter \"per_page\"'", "invalid_query_string"))
        with_global = query.get("is_global", "").lower() != "false"
        prepended = self.prepended
        total = prepended + self.clients + (1 if with_global else 0)
        reported = total + self.unlisted_clients
        start = page * per_page
        chosen = selection(query)
        items, encoded, made, seed = [], self._encoded.encoded, self._made, self.seed
        for position in range(start, min(start + per_page, total)):
            index = position - 1 if with_global else position
            number = "global" if index < 0 else -1000 - index if index < prepended else index - prepended
            items.append(encoded((seed, number, keys), made, chosen))
        totals = (start, per_page, reported) if query.get("include_totals", "").lower() == "true" else None
        return Reply(200, encoded_page(items, totals, "clients"))


_REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _oauth_error(error: str, description: str) -> dict:
    return {"error": error, "error_description": description}


def _api_error(status: int, error: str, message: str, code: str | None = None) -> dict:
    body = {"statusCode": status, "error": error, "message": message}
    if code:
        body["errorCode"] = code
    return body


def _select_fields(app: dict, query: dict) -> dict:
    fields = {f for f in query.get("fields", "").split(",") if f}
    if not fields:
        return app
    if query.get("include_fields", "true").lower() == "false":
        return {k: v for k, v in app.items() if k not in fields}
    return {k: v for k, v in app.items() if k in fields}


def _b64(data) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _secret(seed_text: str) -> str:
    digest = hashlib.sha256(seed_text.encode()).digest() + hashlib.sha256(b"2" + seed_text.encode()).digest()
    return SECRET_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")[: 64 - len(SECRET_PREFIX)]


def _client_id(seed: int, i: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    number = int.from_bytes(hashlib.sha256(f"client:{seed}:{i}".encode()).digest(), "big")
    chars = []
    for _ in range(32):
        number, rest = divmod(number, len(alphabet))
        chars.append(alphabet[rest])
    return "".join(chars)


def _name(i: int) -> str:
    name = f"App {i:05d}"
    if i % 5 == 0:
        name = f"Café Ørsted 東京 {i}"
    if i % 7 == 0:
        name += ", Inc."
    if i % 11 == 0:
        name += ' "Quoted"'
    if i % 13 == 0:
        name += "\nsecond line"
    if i % 17 == 0:
        name = FORMULAS[(i // 17) % len(FORMULAS)] + " " + name
    return name


def application(seed: int, i: int, keys: bool) -> dict:
    """Application number i of the tenant seeded `seed` (a copy of its top level, which the caller may
    change; the lists and objects inside are shared with every other copy)."""
    return dict(_application(seed, i, keys))


# Made once: an application took 30 µs to make, 3 ms a page, and the stand-in shares the machine
# with the runner it stands in for (a burst of 50 pages cost 0.15 s of its CPU in the export bench).
@functools.lru_cache(maxsize=20_000)
def _application(seed: int, i: int, keys: bool) -> dict:
    rnd = random.Random(seed * 1_000_003 + i)
    app_type = APP_TYPES[i % len(APP_TYPES)]
    host = f"app{i}.example.com"
    urls = [] if i % 3 == 0 else [f"https://{host}/callback", f"https://{host}/auth/cb"][: 1 + i % 2]
    app = {
        "tenant": "sandbox",
        "global": False,
        "is_token_endpoint_ip_header_trusted": False,
        "name": _name(i),
        "description": "=cmd|' /C calc'!A0" if i % 19 == 0 else f"Application number {i}",
        "client_id": _client_id(seed, i),
        "app_type": app_type,
        "is_first_party": i % 4 != 3,
        "oidc_conformant": rnd.random() < 0.9,
        "callbacks": urls,
        "allowed_origins": [f"https://{host}"] if app_type == "spa" else [],
        "web_origins": [f"https://{host}"] if app_type in ("spa", "regular_web") else [],
        "allowed_logout_urls": [f"https://{host}/"] if urls else [],
        "initiate_login_uri": f"https://{host}/login" if i % 6 == 1 else "",
        "grant_types": GRANTS[app_type],
        "token_endpoint_auth_method": "none" if app_type in ("spa", "native") else "client_secret_post",
        "jwt_configuration": {"alg": "RS256", "lifetime_in_seconds": 36000, "secret_encoded": False},
        "refresh_token": {"rotation_type": "rotating" if app_type == "spa" else "non-rotating",
                          "expiration_type": "expiring" if app_type == "spa" else "non-expiring",
                          "leeway": 0, "token_lifetime": 2592000, "infinite_token_lifetime": True},
        "organization_usage": "deny",
        "cross_origin_authentication": app_type == "spa",
        "sso_disabled": False,
        "callback_url_template": False,
        "custom_login_page_on": True,
    }
    if i % 2:  # the others have none: Auth0 leaves an unset field out rather than send null
        app["logo_uri"] = f"https://{host}/logo.png"
    # What tenant-checks finds (README, "Tenant checks: `tenant-checks`"): a plain-http callback to a
    # real host, a loopback one (fine but in production), a private_key_jwt application (checks.py).
    if urls and i % 10 == 2:
        app["callbacks"] = [*urls, f"http://{host}/legacy-callback"]
    if urls and i % 10 == 4:
        app["callbacks"] = [*urls, "http://localhost:3000/callback"]
    if app_type == "non_interactive" and i % 8 == 7:
        app["client_authentication_methods"] = {"private_key_jwt": {"credentials": [{"id": f"cred_planted{i}"}]}}
    if keys:
        app["client_secret"] = _secret(f"{seed}:{i}")
        app["signing_keys"] = [{"cert": f"-----BEGIN CERTIFICATE-----{KEY_MARK}{i}-----END CERTIFICATE-----",
                                "pkcs7": f"-----BEGIN PKCS7-----{KEY_MARK}{i}-----END PKCS7-----", "subject": "/CN=sandbox"}]
        app["encryption_key"] = {"pub": f"-----BEGIN PUBLIC KEY-----{KEY_MARK}{i}", "cert": f"{KEY_MARK}cert{i}", "subject": "/CN=sandbox"}
        app.setdefault("client_authentication_methods", {"private_key_jwt": {"credentials": [{"id": f"cred_{KEY_MARK}{i}"}]}})
    return app

"""The HTTP session every call to Auth0 goes through: keep-alive, a User-Agent, timeouts, and the
proxy and CA bundle the settings name (RUNNER_HTTPS_PROXY, RUNNER_CA_BUNDLE), none other.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from batchrunner import __version__
from batchrunner.logs import redact_secret

USER_AGENT = f"auth0-runner/{__version__} python-requests/{requests.__version__}"

# Connect quickly or not at all; a Management API page can take a while under load.
TIMEOUT = (5.0, 30.0)
# The token endpoint answers in well under a second; its bound also keeps an issuance within its lease.
TOKEN_TIMEOUT = (5.0, 15.0)


def decode_json(response: requests.Response):
    """The answer's JSON; ValueError where it is none.

    orjson reads a page in a third of the time the json module takes: in a `serve` of many tenants,
    decoding was about a fifth of the time it held the interpreter (README, "Several tenants", "What
    a night of many tenants costs"). It reads UTF-8 only, so an answer that declares another charset,
    and what orjson refuses that the json module reads (NaN, a lone surrogate such as half an emoji in
    a user's name), are read as before, by requests: no answer reads differently than it did.
    """
    if response.encoding and response.encoding.lower().replace("_", "-") not in _UTF8:
        return response.json()
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


_UTF8 = ("utf-8", "utf8")


def redirect_error(response: requests.Response) -> str | None:
    """The runner follows no redirect: one could carry the client secret or a token to another host."""
    if not response.is_redirect:
        return None
    target = response.headers.get("Location", "?")
    return (
        f"{response.request.method} {response.url.split('?')[0]} answered HTTP {response.status_code}, "
        f"redirecting to {target}; set AUTH0_DOMAIN to the tenant's own domain (redirects are not followed)"
    )


def new_session(pool_size: int = 10, settings=None) -> requests.Session:
    """A session; given `settings`, with its https proxy and CA bundle."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # Proxies and CA bundles from the environment (HTTPS_PROXY, REQUESTS_CA_BUNDLE, .netrc) are not
    # picked up unseen: a proxy sees where the runner connects, so it is named in the settings.
    session.trust_env = False
    proxy = getattr(settings, "https_proxy", None)
    if proxy:
        redact_secret(urlsplit(proxy).password or "")
        # https only: TLS is tunnelled through it (CONNECT) end to end. Plain http goes to loopback
        # alone (config.parse_domain), which no proxy needs to reach.
        session.proxies = {"https": proxy}
    ca_bundle = getattr(settings, "ca_bundle", None)
    if ca_bundle:
        session.verify = str(ca_bundle)
    return session

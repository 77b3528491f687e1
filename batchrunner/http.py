"""The HTTP session every call to Auth0 goes through: keep-alive, a User-Agent, timeouts."""

import requests
from requests.adapters import HTTPAdapter

from . import __version__

USER_AGENT = f"auth0-runner/{__version__} python-requests/{requests.__version__}"

# Connect quickly or not at all; a Management API page can take a while under load.
TIMEOUT = (5.0, 30.0)
# The token endpoint answers in well under a second; its bound also keeps an issuance within its lease.
TOKEN_TIMEOUT = (5.0, 15.0)


def redirect_error(response: requests.Response) -> str | None:
    """The runner follows no redirect: one could carry the client secret or a token to another host."""
    if not response.is_redirect:
        return None
    target = response.headers.get("Location", "?")
    return (
        f"{response.request.method} {response.url.split('?')[0]} answered HTTP {response.status_code}, "
        f"redirecting to {target}; set AUTH0_DOMAIN to the tenant's own domain (redirects are not followed)"
    )


def new_session(pool_size: int = 10) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # Proxies from the environment would see the bearer token; the runner talks to Auth0 directly.
    session.trust_env = False
    return session

"""Management API tokens: one small interface, `source.token() -> Token`, and its implementations.

- `ClientCredentialsSource` asks Auth0 (`POST /oauth/token`), with retries; it only fetches.
- `CachedTokenSource` (tokencache.py) wraps any source with the SQL cache and single-flight.
- `StaticTokenSource` hands out one fixed token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Protocol

import requests

from batchrunner import clock
from batchrunner.auth0 import retry
from batchrunner.auth0.http import TOKEN_TIMEOUT, new_session, redirect_error
from batchrunner.config import Credentials
from batchrunner.errors import CredentialsRejected, TokenError

# Reuse a token until this long before it expires, so that a job which starts with it does not
# see it expire a few pages in, and clocks that disagree by a minute or two do no harm. Short-lived
# tokens get a tenth of their lifetime instead (README, "Tokens").
MAX_MARGIN = timedelta(minutes=5)

# Auth0 caps an API's token lifetime at 30 days; anything longer is not a real answer.
MAX_LIFETIME_SECONDS = 30 * 24 * 3600

TOKEN_ATTEMPTS = 5
TOKEN_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    scope: str
    issued_at: datetime
    expires_at: datetime
    token_type: str = "Bearer"

    @classmethod
    def from_response(cls, body: object, now: datetime) -> Token:
        """The one parser of Auth0's token response."""
        if not isinstance(body, dict):
            raise TokenError("Auth0's token response is not a JSON object; is AUTH0_DOMAIN an Auth0 tenant?")
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise TokenError("Auth0's token response has no access_token; is AUTH0_DOMAIN an Auth0 tenant?")
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or not 1 <= lifetime <= MAX_LIFETIME_SECONDS:
            raise TokenError(f"Auth0's token response has an unusable expires_in ({lifetime!r}); expected 1 to {MAX_LIFETIME_SECONDS} seconds")
        token_type = body.get("token_type") or "Bearer"
        if str(token_type).lower() != "bearer":
            raise TokenError(f"Auth0 issued a {token_type!r} token; the Management API takes Bearer tokens")
        scope = body.get("scope") if isinstance(body.get("scope"), str) else ""
        return cls(access_token, scope, now, now + timedelta(seconds=lifetime))

    @property
    def margin(self) -> timedelta:
        return min(MAX_MARGIN, (self.expires_at - self.issued_at) / 10)

    def valid(self, now: datetime) -> bool:
        return now < self.expires_at - self.margin


# Scopes the runner's token should never hold. With read:client_keys the Management API returns every
# application's secret and keys; the README ("The export", Least privilege) says never to grant it.
NEVER_GRANT = ("read:client_keys",)
GRANT_WHERE = "Dashboard > Applications > APIs > Auth0 Management API > Machine To Machine Applications"


def scope_warning(token: Token, client_id: str) -> str | None:
    """One line when the token holds a scope it should not; None when it holds none of them."""
    held = [scope for scope in NEVER_GRANT if scope in token.scope.split()]
    if not held:
        return None
    return (f"the token holds {', '.join(held)}, with which the Management API returns every application's "
            f"secret and keys; no job needs it: remove it from application {client_id} ({GRANT_WHERE})")


class TokenSource(Protocol):
    def token(self) -> Token: ...


class StaticTokenSource:
    def __init__(self, token: Token):
        self._token = token

    def token(self) -> Token:
        return self._token

    def invalidate(self, token: Token) -> None:
        pass


class ClientCredentialsSource:
    """Asks Auth0 for a token with the client-credentials grant; no caching here."""

    def __init__(
        self,
        credentials: Credentials,
        session: requests.Session | None = None,
        now: Callable[[], datetime] = clock.utcnow,
        sleep: Callable[[float], None] = clock.sleep,
    ):
        self.credentials = credentials
        self.session = session or new_session(pool_size=1)
        self.now = now
        self.sleep = sleep
        self.requests = 0

    def token(self) -> Token:
        try:
            return retry.retrying(TOKEN_ATTEMPTS, TOKEN_RETRY_SECONDS, self.sleep)(self._attempt)
        except retry.Transient as exc:
            domain = f"the domain of {self.credentials.where}" if self.credentials.where else "AUTH0_DOMAIN"
            raise TokenError(
                f"could not get a token from {self.credentials.token_url} after retrying: {exc}; "
                f"check {domain} and the network, then run again"
            ) from None

    def invalidate(self, token: Token) -> None:
        pass

    def _attempt(self) -> Token:
        creds = self.credentials
        self.requests += 1
        try:
            response = self.session.post(
                creds.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": creds.client_id,
                    "client_secret": creds.client_secret,
                    "audience": creds.audience,
                },
                timeout=TOKEN_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise retry.connection_failure(creds.token_url, exc, TokenError) from None
        redirected = redirect_error(response)
        if redirected:
            raise TokenError(redirected)
        transient = retry.transient_for(response)
        if transient:
            raise transient
        if response.status_code != 200:
            raise rejection(response, creds)
        try:
            body = response.json()
        except ValueError:
            raise TokenError(f"{creds.token_url} answered with something other than JSON; is AUTH0_DOMAIN an Auth0 tenant?") from None
        return Token.from_response(body, self.now())


def rejection(response: requests.Response, creds: Credentials) -> TokenError:
    """One line: Auth0's own error and description, and what the operator should check."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    # Auth0's words, on one line whatever they hold.
    error = " ".join(str(body.get("error") or "error").split())
    description = " ".join(str(body.get("error_description") or response.reason or "").split())
    kind = CredentialsRejected if response.status_code in (400, 401, 403) else TokenError
    return kind(
        f"Auth0 refused the token request (HTTP {response.status_code} {error}: {description}); "
        f"{_hint(error, description, creds)}"
    )


def _hint(error: str, description: str, creds: Credentials) -> str:
    text = description.lower()
    if "client-grant" in text or "not authorized to access" in text:
        return (
            f"authorise application {creds.client_id} for the API {creds.audience} ({GRANT_WHERE})"
        )
    if "service not found" in text:
        return f"check {f'the audience of {creds.where}' if creds.where else 'AUTH0_AUDIENCE'}: no API has the identifier {creds.audience}"
    if error in ("unauthorized_client", "unsupported_grant_type"):
        return (
            f"enable the Client Credentials grant for application {creds.client_id} "
            "(Dashboard > Applications > Advanced Settings > Grant Types)"
        )
    if creds.where:
        return f"check the client_id, the client secret (were they rotated?) and the domain of {creds.where}"
    return "check AUTH0_CLIENT_ID and the client secret (were they rotated?) and AUTH0_DOMAIN"

"""Settings from the environment (SPEC section 2), checked once, with one-line errors that name the variable.

Two groups: `Settings` (database, export directory, time zone, extra jobs) which every command
needs, and `Credentials` (tenant, client id, secret, audience) which only commands that call
Auth0 need, so `runner history` works on a machine that holds no secret.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

SECRET_CREDENTIAL_NAME = "auth0_client_secret"


@dataclass(frozen=True)
class Settings:
    database_url: str
    export_dir: Path
    timezone: ZoneInfo
    job_paths: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False, compare=False)
    https_proxy: str | None = field(default=None, repr=False)  # may carry a password
    ca_bundle: Path | None = None


@dataclass(frozen=True)
class Credentials:
    base_url: str  # https://tenant.example.auth0.com, no trailing slash
    client_id: str
    client_secret: str = field(repr=False)
    audience: str

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"


def state_dir(env: Mapping[str, str]) -> Path:
    # systemd's StateDirectory= sets STATE_DIRECTORY (possibly several, colon-separated).
    given = env.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(given) if given else Path("var")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    state = state_dir(env)
    return Settings(
        database_url=_nonblank(env, "RUNNER_DATABASE_URL") or f"sqlite:///{state / 'runner.db'}",
        export_dir=Path(_nonblank(env, "RUNNER_EXPORT_DIR") or state / "exports"),
        timezone=_timezone(env),
        job_paths=tuple(p for p in env.get("RUNNER_JOBS", "").split(":") if p.strip()),
        env=env,
        https_proxy=_https_proxy(env),
        ca_bundle=_ca_bundle(env),
    )


def load_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    env = os.environ if env is None else env
    base_url = parse_domain(_required(env, "AUTH0_DOMAIN"))
    client_id = _required(env, "AUTH0_CLIENT_ID")
    if any(c.isspace() for c in client_id):
        raise ConfigError("AUTH0_CLIENT_ID", "contains white space; paste the Client ID from the application's settings")
    audience = _nonblank(env, "AUTH0_AUDIENCE") or f"{base_url}/api/v2/"
    return Credentials(base_url, client_id, _client_secret(env), audience)


def parse_domain(value: str) -> str:
    """The tenant's base URL from a bare domain or a URL; plain http only to loopback."""
    text = value.strip()
    url = urlsplit(text if "://" in text else f"https://{text}")
    if url.scheme not in ("https", "http") or not url.hostname or any(c.isspace() for c in text):
        raise ConfigError("AUTH0_DOMAIN", f"{value!r} is not a domain or base URL; expected e.g. acme.eu.auth0.com")
    if "@" in url.netloc:
        raise ConfigError("AUTH0_DOMAIN", "has a user name or password in it; give only the domain, e.g. acme.eu.auth0.com (the secret goes in AUTH0_CLIENT_SECRET)")
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ConfigError("AUTH0_DOMAIN", f"{value!r} has a path or query; give only the domain, e.g. acme.eu.auth0.com")
    try:
        url.port
    except ValueError:
        raise ConfigError("AUTH0_DOMAIN", f"{value!r} has an invalid port") from None
    if url.scheme == "http" and not is_loopback(url.hostname):
        raise ConfigError(
            "AUTH0_DOMAIN",
            f"refusing plain http to {url.hostname}: the client secret would travel in clear; use https://",
        )
    return f"{url.scheme}://{url.netloc}"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _client_secret(env: Mapping[str, str]) -> str:
    if env.get("AUTH0_CLIENT_SECRET", "") != "":
        return _checked_secret(env["AUTH0_CLIENT_SECRET"], "AUTH0_CLIENT_SECRET")
    path = env.get("AUTH0_CLIENT_SECRET_FILE", "")
    if path:
        return _checked_secret(_read_secret(Path(path), "AUTH0_CLIENT_SECRET_FILE"), "AUTH0_CLIENT_SECRET_FILE")
    creds = env.get("CREDENTIALS_DIRECTORY", "")
    if creds and (Path(creds) / SECRET_CREDENTIAL_NAME).exists():
        variable = f"CREDENTIALS_DIRECTORY/{SECRET_CREDENTIAL_NAME}"
        return _checked_secret(_read_secret(Path(creds) / SECRET_CREDENTIAL_NAME, variable), variable)
    raise ConfigError(
        "AUTH0_CLIENT_SECRET",
        "not set; set it, or AUTH0_CLIENT_SECRET_FILE to a file holding it, "
        f"or a systemd credential named {SECRET_CREDENTIAL_NAME}",
    )


def _read_secret(path: Path, variable: str) -> str:
    try:
        # Files written by editors and `echo` end in a newline that is not part of the secret.
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(variable, f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(variable, f"{path} is not UTF-8 text") from None


def _checked_secret(secret: str, variable: str) -> str:
    if not secret.strip():
        raise ConfigError(variable, "is empty; give the application's client secret")
    if any(c.isspace() for c in secret):
        raise ConfigError(variable, "contains white space; a client secret has none (a stray quote or newline?)")
    return secret


def _timezone(env: Mapping[str, str]) -> ZoneInfo:
    name = _nonblank(env, "RUNNER_TIMEZONE") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("RUNNER_TIMEZONE", f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from None


def _https_proxy(env: Mapping[str, str]) -> str | None:
    """RUNNER_HTTPS_PROXY: the one proxy the runner uses, named on purpose (the environment's are not)."""
    value = _nonblank(env, "RUNNER_HTTPS_PROXY")
    if not value:
        return None
    # The value is never echoed: it may hold the proxy's password.
    problem = "expected the URL of an HTTP proxy, e.g. http://proxy.internal:3128 (optionally with user:password@)"
    url = urlsplit(value)
    try:
        url.port
    except ValueError:
        raise ConfigError("RUNNER_HTTPS_PROXY", f"has an invalid port; {problem}") from None
    if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/") or url.query or url.fragment:
        raise ConfigError("RUNNER_HTTPS_PROXY", problem)
    return value


def _ca_bundle(env: Mapping[str, str]) -> Path | None:
    """RUNNER_CA_BUNDLE: a PEM file of the CAs to trust, loaded once now so a bad one fails at start."""
    value = _nonblank(env, "RUNNER_CA_BUNDLE")
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise ConfigError("RUNNER_CA_BUNDLE", f"{path} is not a file; give the path of a PEM file of the CA certificates to trust")
    try:
        ssl.create_default_context(cafile=str(path))
    except OSError as exc:  # ssl.SSLError is an OSError too
        reason = exc.strerror if not isinstance(exc, ssl.SSLError) else "it holds no PEM certificate"
        raise ConfigError("RUNNER_CA_BUNDLE", f"cannot use {path}: {reason}; give a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)") from None
    return path


def _nonblank(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _required(env: Mapping[str, str], name: str) -> str:
    value = _nonblank(env, name)
    if not value:
        raise ConfigError(name, "not set; it is required to call Auth0 (see README, Configuration)")
    return value

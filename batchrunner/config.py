"""Settings from the environment (README, "Configuration"), checked once, with one-line errors that name the variable.

Two groups: `Settings` (database, export directory, time zone, extra jobs) which every command
needs, and `Credentials` (tenant, client id, secret, audience) which only commands that call
Auth0 need, so `runner history` works on a machine that holds no secret.
"""

from __future__ import annotations

import ipaddress
import math
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from batchrunner.errors import ConfigError

SECRET_CREDENTIAL_NAME = "auth0_client_secret"

# Every RUNNER_* variable the runner reads (a test checks this against the code). A variable close
# to one of them is a typo, refused, since it would otherwise be ignored without a word.
KNOWN_SETTINGS = (
    "RUNNER_DATABASE_URL", "RUNNER_EXPORT_DIR", "RUNNER_TIMEZONE", "RUNNER_JOBS",
    "RUNNER_STOP_TIMEOUT", "RUNNER_LOG_FORMAT", "RUNNER_TENANTS_FILE", "RUNNER_MAX_RUNS",
    # operating it unattended (README, "Operating it unattended")
    "RUNNER_RETENTION_DAYS", "RUNNER_LOGS_RETENTION_DAYS", "RUNNER_METRICS_ADDRESS", "RUNNER_PING_URL", "RUNNER_NOTIFY_URL",
    # talking to Auth0 through a proxy or a corporate CA
    "RUNNER_HTTPS_PROXY", "RUNNER_CA_BUNDLE", "RUNNER_RATE_LIMITS",
    # the bundled jobs' own
    "RUNNER_SNAPSHOT_RESOURCES", "RUNNER_LOGS_START", "RUNNER_LOGS_TENANT_RETENTION_DAYS", "RUNNER_LOGS_FILE_EVENTS",
    "RUNNER_USERS_FIELDS",
    "RUNNER_USERS_CLEANUP_RULES",
)
# The AUTH0_* ones: other tools (Auth0's SDKs, the Deploy CLI) read AUTH0_* variables of their own,
# so one that is no typo of these is left alone, not named.
KNOWN_CREDENTIALS = ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "AUTH0_CLIENT_SECRET_FILE", "AUTH0_AUDIENCE")
KNOWN_PREFIXES = ("RUNNER_SCHEDULE_", "RUNNER_TIMEOUT_", "RUNNER_PING_URL_", "RUNNER_PARAMS_")  # followed by a job's name
NOT_OURS_PREFIXES = ("RUNNER_TEST_",)  # the test suite's own (RUNNER_TEST_POSTGRES_URL)
TYPO_DISTANCE = 2
LOG_FORMATS = ("text", "json")
DEFAULT_STOP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Settings:
    database_url: str
    export_dir: Path
    timezone: ZoneInfo
    job_paths: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False, compare=False)
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    log_format: str = "text"
    unknown: tuple[str, ...] = ()  # RUNNER_* variables that are no setting (and no typo of one): ignored
    warnings: tuple[str, ...] = ()  # settings that work but are likely not what was meant, one line each
    https_proxy: str | None = field(default=None, repr=False)  # may carry a password
    ca_bundle: Path | None = None
    rate_limits: str = "global"  # Auth0's buckets: one for the tenant, or one per endpoint family (buckets.py)


@dataclass(frozen=True)
class Credentials:
    base_url: str  # https://tenant.example.auth0.com, no trailing slash
    client_id: str
    client_secret: str = field(repr=False)
    audience: str
    # Where a person mends them: None for the AUTH0_* variables, else e.g. "tenant prod in RUNNER_TENANTS_FILE".
    where: str | None = field(default=None, compare=False)

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
        # Absolute: the paths in run results must still lead to the file from another directory.
        export_dir=Path(_nonblank(env, "RUNNER_EXPORT_DIR") or state / "exports").absolute(),
        timezone=_timezone(env),
        job_paths=tuple(p for p in env.get("RUNNER_JOBS", "").split(":") if p.strip()),
        env=env,
        stop_timeout=_stop_timeout(env),
        log_format=_log_format(env),
        unknown=unknown_variables(env),
        warnings=_warnings(env) + _job_variables_beside_tenants(env),
        https_proxy=_https_proxy(env),
        ca_bundle=_ca_bundle(env),
        rate_limits=_rate_limits(env),
    )


def _warnings(env: Mapping[str, str]) -> tuple[str, ...]:
    _metrics_address(env)  # checked with the others, so `serve` refuses a bad one before it asks for a token
    _retention(env)  # and `run-job` from cron, which never prunes, says a malformed one too (README, "Retention")
    if _nonblank(env, "RUNNER_TENANTS_FILE") and _nonblank(env, "AUTH0_DOMAIN"):
        return ("AUTH0_DOMAIN is set beside RUNNER_TENANTS_FILE and not used: the tenants file names every tenant "
                "(name one default there to keep the AUTH0_* tenant's runs and exports); unset AUTH0_DOMAIN",)
    if env.get("AUTH0_CLIENT_SECRET", "") != "" and env.get("AUTH0_CLIENT_SECRET_FILE", ""):
        return ("AUTH0_CLIENT_SECRET and AUTH0_CLIENT_SECRET_FILE are both set; AUTH0_CLIENT_SECRET is used and "
                "the file is not read: unset one",)
    return ()


JOB_VARIABLES = ("RUNNER_SCHEDULE_", "RUNNER_TIMEOUT_", "RUNNER_PARAMS_")


def _job_variables_beside_tenants(env: Mapping[str, str]) -> tuple[str, ...]:
    """RUNNER_SCHEDULE_/TIMEOUT_/PARAMS_<JOB> are the tenant `default`'s alone (README, "Several tenants"):
    beside a tenants file that names no `default` they apply to no tenant, which would go unnoticed."""
    given = sorted(name for name in env if name.startswith(JOB_VARIABLES) and env[name].strip())
    if not given or not _nonblank(env, "RUNNER_TENANTS_FILE"):
        return ()
    from batchrunner.tenants import DEFAULT, names_in  # only then: it reads the file

    if DEFAULT in names_in(env["RUNNER_TENANTS_FILE"].strip()):
        return ()
    return tuple(f"{name} is set beside RUNNER_TENANTS_FILE and applies to no tenant (none is named default); "
                 f"per-tenant settings go in the tenants file's [tenants.NAME.jobs.JOB]" for name in given)


def _retention(env: Mapping[str, str]) -> None:
    if _nonblank(env, "RUNNER_RETENTION_DAYS") or _nonblank(env, "RUNNER_LOGS_RETENTION_DAYS"):
        from batchrunner.operating.retention import retention  # only then: it loads SQLAlchemy

        retention(env)


def _metrics_address(env: Mapping[str, str]) -> None:
    if _nonblank(env, "RUNNER_METRICS_ADDRESS"):
        from batchrunner.operating.health import parse_address  # only then: it loads SQLAlchemy, which not every command needs

        parse_address(env["RUNNER_METRICS_ADDRESS"])


def _rate_limits(env: Mapping[str, str]) -> str:
    value = _nonblank(env, "RUNNER_RATE_LIMITS") or "global"
    if value not in ("global", "endpoint"):
        raise ConfigError("RUNNER_RATE_LIMITS", f"{value!r} is neither global (Free, Enterprise) nor endpoint (Essentials, Professional, B2B)")
    return value


def unknown_variables(env: Mapping[str, str]) -> tuple[str, ...]:
    """RUNNER_* variables that are no setting; ConfigError for one that looks like a typo of a setting."""
    unknown = []
    for name in sorted(env):
        if name.startswith("AUTH0_") and name not in KNOWN_CREDENTIALS:
            meant = _closest(name, KNOWN_CREDENTIALS)
            if meant:
                raise ConfigError(name, f"not a setting of the runner; did you mean {meant}?")
        if not name.startswith("RUNNER_") or name in KNOWN_SETTINGS or name.startswith(KNOWN_PREFIXES + NOT_OURS_PREFIXES):
            continue
        meant = closest_setting(name)
        if meant:
            raise ConfigError(name, f"not a setting of the runner; did you mean {meant}?")
        unknown.append(name)
    return tuple(unknown)


def closest_setting(name: str) -> str | None:
    """The setting `name` is a likely typo of (RUNNER_SCHEDUEL_X -> RUNNER_SCHEDULE_X), else None."""
    meant = _closest(name, KNOWN_SETTINGS)
    best = _edit_distance(name, meant) if meant else TYPO_DISTANCE + 1
    for prefix in KNOWN_PREFIXES:
        if _edit_distance(name, prefix) < best:  # the prefix alone: RUNNER_SCHEDULE
            best, meant = _edit_distance(name, prefix), f"{prefix}<JOB>"
        # Where the prefix ends in the typed name is unknown: try cuts near its length, at a '_' first.
        cuts = range(len(prefix) - TYPO_DISTANCE, min(len(name), len(prefix) + TYPO_DISTANCE + 1))
        for cut in sorted(cuts, key=lambda c: (name[c - 1] != "_", abs(c - len(prefix)))):
            distance = _edit_distance(name[:cut], prefix)
            if distance < best:
                best, meant = distance, prefix + name[cut:]
    return meant


def _closest(name: str, known: tuple[str, ...]) -> str | None:
    """The one of `known` within TYPO_DISTANCE edits of `name` (AUTH0_CLIENTID -> AUTH0_CLIENT_ID), else None."""
    best, meant = TYPO_DISTANCE + 1, None
    for candidate in known:
        distance = _edit_distance(name, candidate)
        if distance < best:
            best, meant = distance, candidate
    return meant


def _edit_distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap of neighbours) that turn a into b."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def _stop_timeout(env: Mapping[str, str]) -> float:
    text = _nonblank(env, "RUNNER_STOP_TIMEOUT")
    if not text:
        return DEFAULT_STOP_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError("RUNNER_STOP_TIMEOUT", f"{text!r} is not a number of seconds; e.g. 60")
    return seconds


def chosen_log_format(env: Mapping[str, str]) -> str:
    """RUNNER_LOG_FORMAT read without judging it, to set up logging before the settings are checked
    (a bad value is text, and `load_settings` then says why)."""
    text = _nonblank(env, "RUNNER_LOG_FORMAT").lower()
    return text if text in LOG_FORMATS else "text"


def _log_format(env: Mapping[str, str]) -> str:
    text = _nonblank(env, "RUNNER_LOG_FORMAT") or "text"
    if text.lower() not in LOG_FORMATS:
        raise ConfigError("RUNNER_LOG_FORMAT", f"{text!r} is not a log format; use text or json")
    return text.lower()


def load_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    env = os.environ if env is None else env
    _all_required_set(env)
    base_url = parse_domain(_required(env, "AUTH0_DOMAIN"))
    client_id = _required(env, "AUTH0_CLIENT_ID")
    if any(c.isspace() for c in client_id):
        raise ConfigError("AUTH0_CLIENT_ID", "contains white space; paste the Client ID from the application's settings")
    audience = _nonblank(env, "AUTH0_AUDIENCE") or f"{_canonical(base_url)}/api/v2/"
    return Credentials(base_url, client_id, _client_secret(env), audience)


def _canonical(base_url: str) -> str:
    """The base URL as Auth0 names the tenant's Management API: host in lower case, no default port
    (an audience of https://Acme.eu.auth0.com:443/api/v2/ is no API of the tenant)."""
    scheme, host, port = origin(base_url)
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}" + ("" if port == {"https": 443, "http": 80}[scheme] else f":{port}")


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


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host (lower case) and port (the scheme's default filled in) of a URL: what makes two
    spellings of AUTH0_DOMAIN (`Acme.eu.auth0.com`, `acme.eu.auth0.com:443`) one tenant."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"https": 443, "http": 80}.get(scheme)


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


def _all_required_set(env: Mapping[str, str]) -> None:
    """ConfigError naming every missing credential at once, when more than one is (one alone has its own line)."""
    missing = [name for name in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID") if not _nonblank(env, name)]
    creds = env.get("CREDENTIALS_DIRECTORY", "")
    if env.get("AUTH0_CLIENT_SECRET", "") == "" and not env.get("AUTH0_CLIENT_SECRET_FILE", "") and not (
            creds and (Path(creds) / SECRET_CREDENTIAL_NAME).exists()):
        missing.append("AUTH0_CLIENT_SECRET")
    if len(missing) > 1:
        secret = (f"; the secret may instead be in AUTH0_CLIENT_SECRET_FILE or a systemd credential {SECRET_CREDENTIAL_NAME}"
                  if "AUTH0_CLIENT_SECRET" in missing else "")
        raise ConfigError(", ".join(missing), f"not set; each is required to call Auth0 (see README, Configuration){secret}")


def _required(env: Mapping[str, str], name: str) -> str:
    value = _nonblank(env, name)
    if not value:
        raise ConfigError(name, "not set; it is required to call Auth0 (see README, Configuration)")
    return value

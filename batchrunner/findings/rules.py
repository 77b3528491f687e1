"""The rules `tenant-checks` applies, as data (README, "Tenant checks: `tenant-checks`"): each an id, a
severity, why it matters and the fix; the posture rules each with one small function of an
application (or a client grant) that yields what it found.

A finding's identity, for telling new from resolved between runs, is its rule, its subject and the
`item` within it (a URL, a certificate's fingerprint, a credential's id): its detail may change
from day to day ("expires in 12 days") without making it a new finding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Callable, Iterable, Iterator
from urllib.parse import urlsplit

CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITIES = (CRITICAL, WARNING, INFO)  # most urgent first
BY_EXPIRY = "by expiry"  # critical within critical_days, warning within warning_days


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    subject_type: str  # client, client_grant, connection, custom_domain, signing_key, log_stream
    subject_id: str
    subject_name: str
    detail: str
    item: str = ""
    expires_at: str | None = None  # ISO 8601, for an expiry finding

    @property
    def key(self) -> str:
        return "\x1f".join((self.rule, self.subject_type, self.subject_id, self.item))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # a severity, or BY_EXPIRY
    why: str
    fix: str


RULES = [
    Rule("expiring-certificate", BY_EXPIRY, "a SAML or WS-Federation partner's signing certificate, or a custom domain's certificate, "
         "runs out: logins through it fail", "get the partner's new certificate into the connection; renew or re-verify the custom domain"),
    Rule("expiring-signing-key", BY_EXPIRY, "the tenant's token signing key runs out: applications that check its certificate refuse tokens",
         "rotate the signing key (Settings > Signing Keys) and let applications fetch the new one from the JWKS"),
    Rule("expiring-client-credential", BY_EXPIRY, "a private_key_jwt application's credential expires: it can no longer get tokens",
         "add a new credential to the application, deploy its key, then delete the old credential"),
    Rule("log-stream-not-active", CRITICAL, "Auth0 paused or suspended the log stream (after 7 days of failed deliveries): the SIEM sees nothing",
         "fix the destination, then set the stream active again (Monitoring > Streams)"),
    Rule("implicit-grant", WARNING, "the implicit grant puts tokens in the URL, where history, logs and referrers keep them",
         "turn the Implicit grant off; use the authorization code flow with PKCE"),
    Rule("insecure-url", CRITICAL, "an http:// callback, origin or logout URL to another host than loopback sends codes and tokens in clear",
         "change the URL to https://"),
    Rule("loopback-url-in-production", WARNING, "a localhost callback in a production tenant lets anything on a user's machine receive codes",
         "remove loopback URLs from production applications; keep them in a development tenant"),
    Rule("non-rotating-refresh-token", WARNING, "an SPA or native application keeps refresh tokens that do not rotate: a stolen one works until it expires",
         "turn on refresh token rotation for the application"),
    Rule("not-oidc-conformant", INFO, "the application uses legacy, non-OIDC-conformant flows", "turn on OIDC Conformant (Advanced Settings > OAuth)"),
    Rule("broad-user-grant", WARNING, "an application not listed as trusted may read, change or delete users (a scope ending :users or starting delete:)",
         "narrow the grant's scopes, or add the application to trusted"),
]
BY_ID = {rule.id: rule for rule in RULES}
URL_FIELDS = ("callbacks", "allowed_origins", "web_origins", "allowed_logout_urls")
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def severity_order(finding: Finding) -> tuple:
    return (SEVERITIES.index(finding.severity), finding.rule, finding.subject_type, finding.subject_name, finding.subject_id, finding.item)


# --- expiry ---------------------------------------------------------------------------------------------

def expiry_severity(expires_at: datetime, now: datetime, critical_days: float, warning_days: float) -> str | None:
    """`critical` when it expires within critical_days (or has expired), `warning` within warning_days, else None."""
    left = (expires_at - now).total_seconds()
    if left <= critical_days * 86400:
        return CRITICAL
    if left <= warning_days * 86400:
        return WARNING
    return None


def expiry_detail(what: str, expires_at: datetime, now: datetime) -> str:
    days = (expires_at - now).total_seconds() / 86400
    when = f"{expires_at:%Y-%m-%d %H:%M}Z"
    if days < 0:
        return f"{what} expired on {when}"
    return f"{what} expires on {when}, in {days:.0f} day{'' if round(days) == 1 else 's'}"


# --- posture rules of an application ----------------------------------------------------------------

def _urls(client: dict) -> Iterator[tuple[str, str]]:
    for field in URL_FIELDS:
        for url in client.get(field) or []:
            if isinstance(url, str):
                yield field, url


def _host(url: str) -> str:
    try:
        return (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return ""


def is_loopback(url: str) -> bool:
    host = _host(url)
    return host in LOOPBACK or host.startswith("127.") or host.endswith(".localhost")


def implicit_grant(client: dict, settings) -> Iterator[tuple[str, str]]:
    if "implicit" in (client.get("grant_types") or []):
        yield "", "allows the implicit grant"


def insecure_url(client: dict, settings) -> Iterator[tuple[str, str]]:
    for field, url in _urls(client):
        if url.strip().lower().startswith("http://") and not is_loopback(url):
            yield f"{field} {url}", f"{field} has {url}"


def loopback_url_in_production(client: dict, settings) -> Iterator[tuple[str, str]]:
    if settings.production:
        for field, url in _urls(client):
            if is_loopback(url):
                yield f"{field} {url}", f"{field} has {url} in a production tenant"


def non_rotating_refresh_token(client: dict, settings) -> Iterator[tuple[str, str]]:
    rotation = (client.get("refresh_token") or {}).get("rotation_type")
    if client.get("app_type") in ("spa", "native") and "refresh_token" in (client.get("grant_types") or []) and rotation != "rotating":
        yield "", f"{client.get('app_type')} application with refresh tokens that do not rotate ({rotation or 'rotation unset'})"


def not_oidc_conformant(client: dict, settings) -> Iterator[tuple[str, str]]:
    if client.get("oidc_conformant") is False:
        yield "", "OIDC Conformant is off"


CLIENT_RULES: dict[str, Callable[[dict, object], Iterable[tuple[str, str]]]] = {
    "implicit-grant": implicit_grant,
    "insecure-url": insecure_url,
    "loopback-url-in-production": loopback_url_in_production,
    "non-rotating-refresh-token": non_rotating_refresh_token,
    "not-oidc-conformant": not_oidc_conformant,
}


def client_findings(client: dict, settings) -> Iterator[Finding]:
    for rule_id, check in CLIENT_RULES.items():
        if rule_id in settings.disabled:
            continue
        for item, detail in check(client, settings):
            yield Finding(rule_id, BY_ID[rule_id].severity, "client", str(client.get("client_id", "")),
                          str(client.get("name", "")), detail, item)


def broad_scopes(scopes: Iterable[str]) -> list[str]:
    return sorted(s for s in scopes if isinstance(s, str) and (s.endswith(":users") or s.startswith("delete:")))


def grant_findings(grant: dict, client_name: str, settings) -> Iterator[Finding]:
    """broad-user-grant: a grant of user-wide scopes to an application neither trusted nor the runner's own."""
    if "broad-user-grant" in settings.disabled or grant.get("client_id") in settings.trusted:
        return
    broad = broad_scopes(grant.get("scope") or [])
    if broad:
        yield Finding("broad-user-grant", BY_ID["broad-user-grant"].severity, "client_grant", str(grant.get("id", "")), client_name,
                      f"{client_name or grant.get('client_id')} may {', '.join(broad)} on {grant.get('audience', '')}")

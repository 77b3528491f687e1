"""What `tenant-checks` asks Auth0, check by check, and the findings each check makes (README,
"Tenant checks: `tenant-checks`"). Read-only: every call is a GET.

A check the token has no scope for is skipped and reported with the scope to grant, never passed
in silence. Of a SAML or WS-Federation connection only the public signing certificate is read:
`options` (which also holds private keys and secrets) is reduced to the certificates' expiry at
once and never kept, logged or written. Of a log stream only its id, name, type and status.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable
from urllib.parse import quote

from batchrunner import clock
from batchrunner.auth0 import lists
from batchrunner.auth0.lists import CHECKPOINT, OFFSET, Listing
from batchrunner.errors import ApiError
from batchrunner.findings import rules
from batchrunner.findings.certificates import NotACertificate, not_after
from batchrunner.findings.rules import Finding

log = logging.getLogger("runner.checks")

CLIENT_FIELDS = ("client_id", "name", "app_type", "grant_types", "callbacks", "allowed_origins", "web_origins",
                 "allowed_logout_urls", "refresh_token", "oidc_conformant", "client_authentication_methods")
CLIENTS = Listing("clients", "clients", OFFSET, ("read:clients",), unique="client_id",
                  params={"fields": ",".join(CLIENT_FIELDS), "include_fields": "true", "is_global": "false"})
GRANTS = Listing("client-grants", "client_grants", CHECKPOINT, ("read:client_grants",))
# SAML (samlp, pingfederate) and WS-Federation (adfs) connections: the only ones with a partner's signing certificate.
CERTIFICATE_STRATEGIES = ("samlp", "pingfederate", "adfs")
CONNECTIONS = Listing("connections", "connections", CHECKPOINT, ("read:connections",),
                      params={"strategy": list(CERTIFICATE_STRATEGIES), "fields": "id,name,strategy,options", "include_fields": "true"})
DOMAINS = Listing("custom-domains", "custom_domains", CHECKPOINT, ("read:custom_domains",))
_X509 = re.compile(r"<(?:\w+:)?X509Certificate>\s*([A-Za-z0-9+/=\s]+?)\s*</(?:\w+:)?X509Certificate>")


@dataclass
class Gathered:
    findings: list[Finding] = field(default_factory=list)
    expiries: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> the soonest expiry, ISO 8601
    skipped: list[dict] = field(default_factory=list)
    checked: set[tuple[str, str]] = field(default_factory=set)  # (rule, subject_type) pairs looked at this run


@dataclass(frozen=True)
class Check:
    name: str
    scope: str  # the scope to grant when the token lacks it
    covers: tuple[tuple[str, str], ...]  # (rule, subject_type) it decides
    run: Callable[["Run"], None]


@dataclass
class Run:
    api: object
    settings: object
    now: datetime
    own_client: str
    out: Gathered
    clients: dict[str, dict] = field(default_factory=dict)  # client_id -> the fields asked for

    def expiring(self, rule: str, kind: str, subject: tuple[str, str], item: str, what: str, expires_at: datetime) -> None:
        """Record an expiry for the metric, and a finding when it falls within the windows."""
        name = subject[1] if kind != "client_credential" else f"{subject[1]}/{item}"
        iso = expires_at.isoformat().replace("+00:00", "Z")
        known = self.out.expiries.get((kind, name))
        if known is None or iso < known:
            self.out.expiries[(kind, name)] = iso
        severity = rules.expiry_severity(expires_at, self.now, self.settings.critical_days, self.settings.warning_days)
        if severity and rule not in self.settings.disabled:
            self.out.findings.append(Finding(rule, severity, kind, subject[0], subject[1], rules.expiry_detail(what, expires_at, self.now),
                                             item, iso))


# --- the checks -----------------------------------------------------------------------------------------

def _applications(run: Run) -> None:
    for client in lists.items(run.api, CLIENTS):
        run.clients[client.get("client_id", "")] = client
        run.out.findings.extend(rules.client_findings(client, run.settings))


def _grants(run: Run) -> None:
    for grant in lists.items(run.api, GRANTS):
        name = str((run.clients.get(grant.get("client_id")) or {}).get("name", ""))
        if grant.get("client_id") != run.own_client:  # the runner's own application: trusted by running it
            run.out.findings.extend(rules.grant_findings(grant, name, run.settings))


def _credentials(run: Run) -> None:
    for client_id, client in sorted(run.clients.items()):
        if not (client.get("client_authentication_methods") or {}).get("private_key_jwt"):
            continue
        for credential in run.api.get(f"clients/{quote(client_id, safe='')}/credentials") or []:
            expires = clock.parse(credential.get("expires_at"))
            if expires is not None:
                label = credential.get("name") or credential.get("id", "")
                run.expiring("expiring-client-credential", "client_credential", (client_id, str(client.get("name", ""))),
                             str(credential.get("id", "")), f"credential {label}", expires)


def _connections(run: Run) -> None:
    for connection in lists.items(run.api, CONNECTIONS):
        subject = (str(connection.get("id", "")), str(connection.get("name", "")))
        certificates = signing_certificates(connection)
        del connection  # `options` goes no further than this line
        for where, text in certificates:
            _certificate(run, subject, where, text)


def _certificate(run: Run, subject: tuple[str, str], where: str, text: str) -> None:
    try:
        expires = not_after(text)
    except NotACertificate:
        if "expiring-certificate" not in run.settings.disabled:
            run.out.findings.append(Finding("expiring-certificate", rules.WARNING, "connection", *subject,
                                            f"the signing certificate in {where} cannot be read", f"unreadable {where}"))
        return
    run.expiring("expiring-certificate", "connection", subject, fingerprint(text), f"signing certificate ({where})", expires)


def _domains(run: Run) -> None:
    for domain in lists.items(run.api, DOMAINS):
        subject = (str(domain.get("custom_domain_id", "")), str(domain.get("domain", "")))
        certificate = domain.get("certificate") or {}
        if certificate.get("status") in ("renewing_failed", "provisioning_failed") and "expiring-certificate" not in run.settings.disabled:
            run.out.findings.append(Finding("expiring-certificate", rules.CRITICAL, "custom_domain", *subject,
                                            f"certificate {certificate['status']}: {certificate.get('error_msg', 'no reason given')}",
                                            certificate["status"]))
        renews = clock.parse(certificate.get("renews_before"))
        if renews is not None:
            run.expiring("expiring-certificate", "custom_domain", subject, "renews_before", "certificate (renewed before)", renews)


def _signing_keys(run: Run) -> None:
    for key in run.api.get("keys/signing") or []:
        if key.get("revoked") or not (key.get("current") or key.get("next")):
            continue  # a previous or revoked key signs nothing any more
        subject = (str(key.get("kid", "")), str(key.get("kid", "")))
        try:
            run.expiring("expiring-signing-key", "signing_key", subject, str(key.get("fingerprint", "")), "signing key certificate",
                         not_after(key.get("cert", "")))
        except NotACertificate:
            log.warning("signing key %s: its certificate cannot be read", subject[0])
        until = clock.parse(key.get("current_until"))
        if until is not None:
            run.expiring("expiring-signing-key", "signing_key", subject, "current_until", "signing key (current until)", until)


def _log_streams(run: Run) -> None:
    for stream in run.api.get("log-streams") or []:
        status = stream.get("status")
        if status != "active" and "log-stream-not-active" not in run.settings.disabled:
            run.out.findings.append(Finding("log-stream-not-active", rules.CRITICAL, "log_stream", str(stream.get("id", "")),
                                            str(stream.get("name", "")), f"{stream.get('type', 'stream')} stream is {status or 'without a status'}"))


CLIENT_RULES = tuple((rule, "client") for rule in rules.CLIENT_RULES)
CHECKS = [
    Check("applications", "read:clients", CLIENT_RULES, _applications),
    Check("client-grants", "read:client_grants", (("broad-user-grant", "client_grant"),), _grants),
    Check("client-credentials", "read:client_credentials", (("expiring-client-credential", "client_credential"),), _credentials),
    Check("connections", "read:connections", (("expiring-certificate", "connection"),), _connections),
    Check("custom-domains", "read:custom_domains", (("expiring-certificate", "custom_domain"),), _domains),
    Check("signing-keys", "read:signing_keys", (("expiring-signing-key", "signing_key"),), _signing_keys),
    Check("log-streams", "read:log_streams", (("log-stream-not-active", "log_stream"),), _log_streams),
]


def gather(api, settings, now: datetime, own_client: str = "") -> Gathered:
    """Every check whose rules are not all turned off; a check refused for want of a scope is skipped."""
    run = Run(api, settings, now, own_client, Gathered())
    for check in CHECKS:
        if all(rule in settings.disabled for rule, _ in check.covers):
            continue
        if check.name == "client-credentials" and "applications" in {s["check"] for s in run.out.skipped}:
            run.out.skipped.append(_skip(check, "needs the applications, which were skipped"))
            continue
        before = len(run.out.findings)
        try:
            check.run(run)
        except ApiError as exc:
            if exc.code != "insufficient_scope":
                raise
            del run.out.findings[before:]  # half a check is no check
            run.out.skipped.append(_skip(check, str(exc)))
            log.warning("check %s skipped: %s", check.name, exc)
            continue
        run.out.checked.update(check.covers)
    return run.out


def _skip(check: Check, reason: str) -> dict:
    return {"check": check.name, "missing_scope": check.scope, "reason": reason}


def signing_certificates(connection: dict) -> list[tuple[str, str]]:
    """(where, text) of each public signing certificate in a connection's options; nothing else of them."""
    options = connection.get("options") or {}
    found = []
    for name in ("signingCert", "cert"):  # SAML: PEM, and the same as bare DER
        if isinstance(options.get(name), str) and options[name].strip():
            found.append((f"options.{name}", options[name]))
    metadata = options.get("fedMetadataXml") or options.get("metadataXml")  # WS-Federation's (ADFS) federation metadata
    if isinstance(metadata, str):
        found += [("federation metadata", match.group(1)) for match in _X509.finditer(metadata)]
    unique: dict[str, tuple[str, str]] = {}
    for where, text in found:
        unique.setdefault(fingerprint(text), (where, text))
    return list(unique.values())


def fingerprint(text: str) -> str:
    """The SHA-256 of the certificate's DER, shortened: the same certificate in PEM or bare base64 is one."""
    body = re.sub(r"-----(BEGIN|END) [A-Z0-9 ]+-----|\s", "", text or "")
    try:
        der = base64.b64decode(body, validate=True)
    except ValueError:
        der = body.encode()
    return hashlib.sha256(der).hexdigest()[:16]


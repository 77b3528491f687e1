"""What `tenant-checks` reads from the stand-in tenant (README, "Tenant checks: `tenant-checks`"), in
Auth0's shapes: log streams, custom domains, the tenant's signing keys, private_key_jwt applications'
credentials, and real certificates in SAML and WS-Federation connections, with a finding of every
kind among them. Dates are set from the stand-in's clock when the tenant is (re)built.

Secrets are planted beside what the checks read, marked so a test can search every output for
them: a SAML connection's private keys beside its public certificate, log streams' tokens.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from . import certificates
from .directory import CONNECTION_SECRET, ident
from .tenant import APP_TYPES, _client_id

STREAM_SECRET = "SANDBOXSTREAMSECRET"
DAY = timedelta(days=1)


def private_key_jwt(i: int) -> bool:
    """Application number i authenticates with private_key_jwt (a machine-to-machine one, every eighth)."""
    return APP_TYPES[i % len(APP_TYPES)] == "non_interactive" and i % 8 == 7


class TenantChecks:
    def __init__(self, seed: int, clients: int, now: float):
        self.seed = seed
        self.now = datetime.fromtimestamp(int(now), timezone.utc)
        self.log_streams = self._log_streams()
        self.custom_domains = self._custom_domains()
        self.signing_keys = self._signing_keys()
        self.credentials = {_client_id(seed, i): self._credentials(i) for i in range(clients) if private_key_jwt(i)}

    def at(self, days: float) -> datetime:
        return self.now + days * DAY

    def iso(self, days: float) -> str:
        return self.at(days).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # --- connections with a signing certificate ------------------------------------------------

    def connections(self, conn) -> list[dict]:
        """The SAML and WS-Federation connections (`conn` makes one as the directory does)."""
        s = self.seed
        acme = certificates.pem(certificates.certificate("idp.acme.example", self.at(3)))
        partner = certificates.bare(certificates.certificate("adfs.partner.example", self.at(20), serial=2))
        healthy = certificates.pem(certificates.certificate("sso.globex.example", self.at(400), serial=3))
        metadata = ('<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><RoleDescriptor><KeyDescriptor use="signing">'
                    '<KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>'
                    f'{partner}</X509Certificate></X509Data></KeyInfo></KeyDescriptor></RoleDescriptor></EntityDescriptor>')
        return [
            conn("acme-saml", "samlp", {
                "signInEndpoint": "https://idp.acme.example/sso/saml", "signatureAlgorithm": "rsa-sha256", "signingCert": acme,
                "signing_key": {"key": f"-----BEGIN PRIVATE KEY-----{CONNECTION_SECRET}-saml-{ident('', s, 'saml-key')}-----END PRIVATE KEY-----",
                                "cert": "-----BEGIN CERTIFICATE-----MIIC-----END CERTIFICATE-----"},
                "decryptionKey": {"key": f"-----BEGIN PRIVATE KEY-----{CONNECTION_SECRET}-decrypt-{ident('', s, 'saml-dec')}-----END PRIVATE KEY-----",
                                  "cert": acme}}, "ACME SSO"),
            conn("partner-adfs", "adfs", {"fedMetadataXml": metadata, "signInEndpoint": "https://adfs.partner.example/adfs/ls",
                                          "thumbprints": [], "tenant_domain": "partner.example"}, "Partner ADFS"),
            conn("globex-ping", "pingfederate", {"signingCert": healthy, "signInEndpoint": "https://sso.globex.example/idp/SSO.saml2",
                                                 "pingFederateBaseUrl": "https://sso.globex.example"}, "Globex"),
        ]

    # --- the rest --------------------------------------------------------------------------------

    def _log_streams(self) -> list[dict]:
        s = self.seed
        return [
            {"id": "lst_0000000000000001", "name": "SIEM", "type": "http", "status": "active", "filters": [],
             "sink": {"httpEndpoint": "https://siem.example.com/auth0", "httpContentType": "application/json",
                      "httpContentFormat": "JSONLINES", "httpAuthorization": f"Bearer {STREAM_SECRET}-http-{ident('', s, 'http')}"}},
            {"id": "lst_0000000000000002", "name": "Datadog", "type": "datadog", "status": "paused",
             "sink": {"datadogApiKey": f"{STREAM_SECRET}-datadog-{ident('', s, 'dd')}", "datadogRegion": "eu"}},
            {"id": "lst_0000000000000003", "name": "Splunk", "type": "splunk", "status": "suspended",
             "sink": {"splunkDomain": "splunk.example.com", "splunkPort": "8088", "splunkSecure": True,
                      "splunkToken": f"{STREAM_SECRET}-splunk-{ident('', s, 'splunk')}"}},
        ]

    def _custom_domains(self) -> list[dict]:
        def domain(n, name, certificate):
            return {"custom_domain_id": f"cd_{ident('', self.seed, 'domain', n)}", "domain": name, "primary": n == 0,
                    "status": "ready", "type": "auth0_managed_certs", "origin_domain_name": f"sandbox-cd-{n}.edge.tenants.auth0.com",
                    "tls_policy": "recommended", "certificate": certificate}

        return [
            domain(0, "login.example.com", {"status": "provisioned", "certificate_authority": "letsencrypt", "renews_before": self.iso(60)}),
            domain(1, "auth.example.org", {"status": "renewing_failed", "certificate_authority": "letsencrypt", "renews_before": self.iso(12),
                                           "error_msg": "The CNAME record no longer points at the edge"}),
        ]

    def _signing_keys(self) -> list[dict]:
        def key(n, days, **state):
            der = certificates.certificate(f"sandbox-{self.seed}.auth0.example", self.at(days), serial=10 + n)
            digest = hashlib.sha1(der).hexdigest().upper()
            return {"kid": ident("", self.seed, "kid", n), "cert": certificates.pem(der),
                    "pkcs7": "-----BEGIN PKCS7-----\r\nMIIDPA==\r\n-----END PKCS7-----", "fingerprint": ":".join(digest[i:i + 2] for i in range(0, 40, 2)),
                    "thumbprint": digest, **state}

        return [
            key(0, -30, previous=True, revoked=False, current_since=self.iso(-400), current_until=self.iso(-40)),
            key(1, 25, current=True, current_since=self.iso(-40)),
            key(2, 800, next=True),
        ]

    def _credentials(self, i: int) -> list[dict]:
        days = {7: [6], 15: [29]}.get(i, [90, None])  # critical, warning, then one far off and one that never expires
        found = []
        for n, left in enumerate(days):
            credential = {"id": f"cred_{ident('', self.seed, 'cred', i, n)[:22]}", "name": f"key {n + 1}", "credential_type": "public_key",
                          "kid": ident("", self.seed, "cred-kid", i, n), "alg": "RS256", "created_at": self.iso(-100), "updated_at": self.iso(-100)}
            if left is not None:
                credential["expires_at"] = self.iso(left)
            found.append(credential)
        return found

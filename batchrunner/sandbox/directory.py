"""What an access review reads from the stand-in tenant: connections, resource servers (APIs), client
grants, roles with their permissions and members, organizations with their members. Deterministic
from the seed, sized by `Sizes`, rows kept sorted by id (the order both kinds of paging use).

Secrets are planted where Auth0 keeps them, marked so a test can search an export for them:
connections' `options` (a social connection's `client_secret`, a SAML signing key: checks.py) and resource
servers' `signing_secret`.
"""

from __future__ import annotations

import hashlib
import random
import threading
from typing import Sequence

from .sizes import Sizes
from .tenant import APP_TYPES
from .users import Everyone, member, user_id

CONNECTION_SECRET = "SANDBOXCONNSECRET"
API_SECRET = "SANDBOXAPISECRET"
MANAGEMENT_SCOPES = ["read:clients", "read:client_grants", "read:resource_servers", "read:roles",
                     "read:users", "read:connections", "read:organizations", "read:organization_members", "read:logs"]
ROLE_NAMES = ["support-agents", "admins", "billing-readers", "auditors", "developers", "viewers", "editors", "owners"]
ORG_NAMES = ["acme-corp", "globex", "initech", "umbrella", "hooli", "stark-industries", "wayne-enterprises"]


def ident(prefix: str, *parts) -> str:
    """An Auth0-looking id (`rol_` + 16 letters and digits), the same for the same parts."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    number = int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest(), "big")
    chars = []
    for _ in range(16):
        number, rest = divmod(number, len(alphabet))
        chars.append(alphabet[rest])
    return prefix + "".join(chars)


def _secret(*parts) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:40]


class Directory:
    """The tenant's access data. `apply_changes()` makes a known set of edits for drift tests."""

    def __init__(self, seed: int, sizes: Sizes, clients: int, audience: str, own_client: tuple[str, list[str]], planted=None):
        self.seed, self.sizes, self.clients, self.audience = seed, sizes, clients, audience
        self.planted = planted  # makes the connections with certificates (checks.py): planted(conn) -> [connection, ...]
        self.lock = threading.Lock()
        self.connections = sorted(self._connections(), key=_id)
        self.resource_servers = sorted(self._resource_servers(), key=_id)
        self.client_grants = sorted(self._grants(own_client), key=_id)
        self.roles, self.role_permissions, self.role_members = self._roles()
        self.organizations, self.organization_members = self._organizations()
        self.big_role = ident("rol_", seed, "role", 0)  # the role with `big_role_members`
        self.big_organization = ident("org_", seed, "org", 0)

    # --- lookups the endpoints use ---------------------------------------------------------

    def role(self, role_id: str) -> dict | None:
        return next((r for r in self.roles if r["id"] == role_id), None)

    def organization(self, org_id: str) -> dict | None:
        return next((o for o in self.organizations if o["id"] == org_id), None)

    def member_key(self, i: int) -> str:
        return user_id(self.seed, i)

    def member(self, i: int) -> dict:
        return member(self.seed, i)

    # --- building --------------------------------------------------------------------------

    def _connections(self) -> list[dict]:
        s = self.seed

        def conn(name, strategy, options, display=None):
            return {"id": ident("con_", s, "connection", name), "name": name, "display_name": display or name,
                    "strategy": strategy, "options": options, "is_domain_connection": False, "realms": [name], "metadata": {}}

        certified = self.planted(conn) if self.planted else []
        return [
            conn("Username-Password-Authentication", "auth0", {
                "passwordPolicy": "good", "brute_force_protection": True, "password_complexity_options": {"min_length": 8},
                "mfa": {"active": True, "return_enroll_settings": True}}, "Database"),
            conn("google-oauth2", "google-oauth2", {
                "client_id": f"{s}-sandbox.apps.googleusercontent.com",
                "client_secret": f"{CONNECTION_SECRET}-google-{_secret(s, 'google')}",
                "email": True, "profile": True, "scope": ["email", "profile"]}, "Google"),
            conn("github", "github", {"client_id": f"Iv1.{_secret(s, 'gh-id')[:16]}",
                                      "client_secret": f"{CONNECTION_SECRET}-github-{_secret(s, 'github')}", "scope": ["user:email"]}, "GitHub"),
            conn("corp-azure", "waad", {"client_id": ident("", s, "azure-app"), "tenant_domain": "corp.example.onmicrosoft.com",
                                        "client_secret": f"{CONNECTION_SECRET}-azure-{_secret(s, 'azure')}", "waad_protocol": "openid-connect"}, "Corp Azure AD"),
            conn("partner-oidc", "oidc", {"client_id": "partner-client", "issuer": "https://login.partner.example/",
                                          "client_secret": f"{CONNECTION_SECRET}-oidc-{_secret(s, 'oidc')}", "type": "back_channel",
                                          "discovery_url": "https://login.partner.example/.well-known/openid-configuration"}, "Partner"),
            conn("email", "email", {"from": "{{ application.name }} <login@example.com>", "subject": "Your code",
                                    "syntax": "liquid", "totp": {"time_step": 180, "length": 6}}, "Passwordless email"),
        ] + certified

    def _apis(self) -> list[tuple[str, str, list[str]]]:
        """(name, identifier, scopes) of the custom APIs."""
        apis = [("Orders API", "https://orders.example.com/api", ["read:orders", "create:orders", "update:orders", "delete:orders"]),
                ("Reports API", "https://reports.example.com", ["read:reports", "export:reports"])]
        apis += [(f"API {k}", f"https://api{k}.example.com", [f"read:things{k}", f"write:things{k}"]) for k in range(2, self.sizes.custom_apis)]
        return apis[: self.sizes.custom_apis]

    def _resource_servers(self) -> list[dict]:
        s = self.seed
        management = {"id": hashlib.sha256(f"{s}:api:management".encode()).hexdigest()[:24], "name": "Auth0 Management API",
                      "identifier": self.audience, "is_system": True, "allow_offline_access": False,
                      "skip_consent_for_verifiable_first_party_clients": False, "token_lifetime": 86400,
                      "token_lifetime_for_web": 7200, "signing_alg": "RS256",
                      "scopes": [{"value": v, "description": v.replace(":", " ")} for v in MANAGEMENT_SCOPES]}
        servers = [management]
        for k, (name, identifier, scopes) in enumerate(self._apis()):
            hs = k % 2 == 1  # an HS256 API carries a signing secret
            server = {"id": hashlib.sha256(f"{s}:api:{k}".encode()).hexdigest()[:24], "name": name, "identifier": identifier,
                      "is_system": False, "allow_offline_access": k == 0, "skip_consent_for_verifiable_first_party_clients": True,
                      "token_lifetime": 86400, "token_lifetime_for_web": 7200, "signing_alg": "HS256" if hs else "RS256",
                      "signing_secret": f"{API_SECRET}-{_secret(s, 'api', k)}", "enforce_policies": True,
                      "token_dialect": "access_token_authz", "scopes": [{"value": v, "description": f"{v} ({name})"} for v in scopes]}
            servers.append(server)
        return servers

    def _grants(self, own_client: tuple[str, list[str]]) -> list[dict]:
        audiences = [(self.audience, MANAGEMENT_SCOPES)] + [(identifier, scopes) for _, identifier, scopes in self._apis()]
        from .tenant import _client_id

        grants = [self._grant(own_client[0], self.audience, list(own_client[1]), "own")]
        for i in range(self.clients):
            if APP_TYPES[i % len(APP_TYPES)] != "non_interactive":
                continue
            for a, (audience, scopes) in enumerate(audiences[: self.sizes.grants_per_m2m]):
                grants.append(self._grant(_client_id(self.seed, i), audience, scopes[: 1 + (i // 4 + a) % len(scopes)], i, a))
        return grants

    def _grant(self, client_id: str, audience: str, scope: list[str], *parts) -> dict:
        return {"id": ident("cgr_", self.seed, "grant", *parts), "client_id": client_id, "audience": audience,
                "scope": scope, "allow_any_organization": False, "is_system": False, "subject_type": "client"}

    def _roles(self):
        s, sizes = self.seed, self.sizes
        apis = self._apis()
        roles, permissions, members = [], {}, {}
        for r in range(sizes.roles):
            name = ROLE_NAMES[r] if r < len(ROLE_NAMES) else f"role-{r}"
            role = {"id": ident("rol_", s, "role", r), "name": name, "description": f"Members of {name}"}
            roles.append(role)
            perms = []
            if apis:
                api_name, identifier, scopes = apis[r % len(apis)]
                perms = [self._permission(api_name, identifier, v) for v in scopes[: 1 + r % len(scopes)]]
            permissions[role["id"]] = sorted(perms, key=_permission_key)
            count = sizes.big_role_members if r == 0 else sizes.role_members
            members[role["id"]] = self._people(("role", r), count)
        return sorted(roles, key=_id), permissions, members

    @staticmethod
    def _permission(api_name: str, identifier: str, value: str) -> dict:
        return {"permission_name": value, "description": value.replace(":", " "),
                "resource_server_name": api_name, "resource_server_identifier": identifier}

    def _organizations(self):
        s, sizes = self.seed, self.sizes
        orgs, members = [], {}
        for o in range(sizes.organizations):
            name = ORG_NAMES[o] if o < len(ORG_NAMES) else f"org-{o}"
            org = {"id": ident("org_", s, "org", o), "name": name,
                   "display_name": name.replace("-", " ").title() + (", Inc." if o % 3 == 1 else ""),
                   "branding": {"colors": {"primary": "#0059d6", "page_background": "#ffffff"}}, "metadata": {"tier": "gold" if o == 0 else "standard"}}
            orgs.append(org)
            members[org["id"]] = self._people(("org", o), sizes.big_org_members if o == 0 else sizes.org_members)
        return sorted(orgs, key=_id), members

    def _people(self, what: tuple, count: int) -> Sequence[int]:
        """`count` distinct users, as numbers sorted by user_id (the order Auth0 pages members in).
        All the users are all of them whatever the draw: computed on demand, not held (a million)."""
        if count >= self.sizes.users:
            return Everyone(self.sizes.users)
        chosen = random.Random(f"{self.seed}:{what}").sample(range(self.sizes.users), min(count, self.sizes.users))
        return sorted(chosen, key=self.member_key)

    # --- drift ------------------------------------------------------------------------------

    def apply_changes(self) -> dict[str, dict[str, list]]:
        """A known set of edits across resources; returns {resource: {"added", "removed", "changed"}: [key, ...]}
        with keys as the snapshot's key columns (one value, or the pair/triple for the pair files)."""
        from .drift import apply_changes

        with self.lock:
            return apply_changes(self)


def _id(row: dict) -> str:
    return row["id"]


def _permission_key(row: dict) -> str:
    return f"{row['resource_server_identifier']}\x00{row['permission_name']}"

"""The nightly application inventory: every client of the tenant in one CSV (README, "The export: `export-clients`").

Columns are documented in the README ("The export"). The secret fields are left out by name
(`include_fields=false`), so secret material is never requested; should the API send it anyway,
no column reads it. Asking for the columns by name is not possible: Auth0's published `fields`
pattern lists neither cross_origin_authentication nor sso_disabled, and a tenant that validates
its query answers such a request 400 (README, "How the export treats the API").
"""

from __future__ import annotations

from batchrunner.jobkit import OFFSET, JobContext, Listing, Table, export_csv, items, job, terminal_progress

COLUMNS = [
    ("client_id", "client_id"),
    ("name", "name"),
    ("app_type", "app_type"),
    ("description", "description"),
    ("is_first_party", "is_first_party"),
    ("oidc_conformant", "oidc_conformant"),
    ("token_endpoint_auth_method", "token_endpoint_auth_method"),
    ("grant_types", "grant_types"),
    ("callbacks", "callbacks"),
    ("allowed_origins", "allowed_origins"),
    ("web_origins", "web_origins"),
    ("allowed_logout_urls", "allowed_logout_urls"),
    ("initiate_login_uri", "initiate_login_uri"),
    ("logo_uri", "logo_uri"),
    ("organization_usage", "organization_usage"),
    ("cross_origin_authentication", "cross_origin_authentication"),
    ("sso_disabled", "sso_disabled"),
    ("jwt_alg", "jwt_configuration.alg"),
    ("refresh_token_rotation", "refresh_token.rotation_type"),
]

# Never asked for, read or written, whatever the API returns.
SECRET_FIELDS = ("client_secret", "signing_keys", "encryption_key", "client_authentication_methods")
assert not {source.split(".")[0] for _, source in COLUMNS} & set(SECRET_FIELDS)

CLIENTS = Table(
    "clients",
    # is_global=false leaves out the legacy "All Applications" client.
    Listing("clients", "clients", OFFSET, ("read:clients",), unique="client_id",
            params={"fields": ",".join(SECRET_FIELDS), "include_fields": "false", "is_global": "false"}),
    columns=COLUMNS,
    key=("client_id",),
)


@job("export-clients", schedule="0 2 * * *", description="Export every application (client) of the tenant to CSV.", params=(),
     timeout=3600)  # 10,000 applications take seconds; an hour means something is stuck
def export_clients(ctx: JobContext) -> dict:
    with terminal_progress("export-clients") as progress:
        applications = items(ctx.api, CLIENTS.listing, progress=progress)
        result = export_csv(ctx, "clients", COLUMNS, applications)
    stats = ctx.api.stats
    return {**result, "pages": max(1, -(-result["rows"] // 100)), "requests": stats.requests, "retries": stats.retries}

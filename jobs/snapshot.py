"""The access snapshot: everything an access review reads, in one directory that appears whole
(README, "The access snapshot: `snapshot`"). Each table below says where its rows come from, its columns and its key (the
sort order); batchrunner/outputs/snapshots.py and tables.py do the fetching, sorting and writing.

Never read, never written: client secrets and keys, a resource server's signing_secret, a
connection's options (they hold social and enterprise connections' secrets).
"""

from __future__ import annotations

from batchrunner.jobkit import CHECKPOINT, OFFSET, Listing, Table, job
# Not the job author's toolkit: the snapshot's pipeline (snapshots/, latest, drift) is this job's own.
from batchrunner.outputs import snapshots

from .export_clients import CLIENTS

CLIENT_GRANTS = Table(
    "client_grants",
    Listing("client-grants", "client_grants", CHECKPOINT, ("read:client_grants",)),
    columns=[("id", "id"), ("client_id", "client_id"), ("client_name", "client.name"), ("audience", "audience"),
             ("scope", "scope"), ("subject_type", "subject_type")],
    key=("id",),
    join=("client", "clients", "client_id"),
)

RESOURCE_SERVERS = Table(
    "resource_servers",
    Listing("resource-servers", "resource_servers", OFFSET, ("read:resource_servers",), unique="id"),
    columns=[("id", "id"), ("identifier", "identifier"), ("name", "name"),
             ("scopes", lambda rs: [s.get("value") for s in rs.get("scopes") or []]),
             ("signing_alg", "signing_alg"), ("token_lifetime", "token_lifetime"),
             ("allow_offline_access", "allow_offline_access"), ("is_system", "is_system")],
    key=("id",),
)

ROLES = Table(
    "roles",
    Listing("roles", "roles", OFFSET, ("read:roles",), unique="id"),
    columns=[("id", "id"), ("name", "name"), ("description", "description")],
    key=("id",),
)

ROLE_PERMISSIONS = Table(
    "role_permissions",
    Listing("roles/{id}/permissions", "permissions", OFFSET, ("read:roles",)),
    columns=[("role_id", "role.id"), ("role_name", "role.name"),
             ("resource_server_identifier", "resource_server_identifier"), ("permission_name", "permission_name"),
             ("resource_server_name", "resource_server_name"), ("description", "description")],
    key=("role_id", "resource_server_identifier", "permission_name"),
    parent=("roles", "role"),
)

ROLE_MEMBERS = Table(
    "role_members",
    Listing("roles/{id}/users", "users", CHECKPOINT, ("read:users", "read:roles", "read:role_members")),
    columns=[("role_id", "role.id"), ("role_name", "role.name"), ("user_id", "user_id"), ("email", "email"), ("name", "name")],
    key=("role_id", "user_id"),
    parent=("roles", "role"),
)

ORGANIZATIONS = Table(
    "organizations",
    Listing("organizations", "organizations", CHECKPOINT, ("read:organizations",)),
    columns=[("id", "id"), ("name", "name"), ("display_name", "display_name")],
    key=("id",),
)

ORGANIZATION_MEMBERS = Table(
    "organization_members",
    Listing("organizations/{id}/members", "members", CHECKPOINT, ("read:organization_members",)),
    columns=[("organization_id", "organization.id"), ("organization_name", "organization.name"),
             ("user_id", "user_id"), ("email", "email"), ("name", "name")],
    key=("organization_id", "user_id"),
    parent=("organizations", "organization"),
)

CONNECTIONS = Table(
    "connections",
    # `options` (social and enterprise connections' secrets) is left out by name: Auth0's `fields`
    # pattern has no is_domain_connection or realms to ask for them instead (README, "No secret").
    Listing("connections", "connections", CHECKPOINT, ("read:connections",),
            params={"fields": "options", "include_fields": "false"}),
    columns=[("id", "id"), ("name", "name"), ("strategy", "strategy"), ("display_name", "display_name"),
             ("is_domain_connection", "is_domain_connection"), ("realms", "realms")],
    key=("id",),
)

TABLES = [CLIENTS, CLIENT_GRANTS, RESOURCE_SERVERS, ROLES, ROLE_PERMISSIONS, ROLE_MEMBERS,
          ORGANIZATIONS, ORGANIZATION_MEMBERS, CONNECTIONS]


def check(env, params) -> None:
    snapshots.choose(TABLES, env, params)


@job("snapshot", schedule="30 2 * * *", params=("resources",), check=check, timeout=4 * 3600,
     description="Snapshot applications, grants, APIs, roles and members, organizations and connections to CSV.")
def snapshot(ctx) -> dict:
    return snapshots.take(ctx, TABLES)

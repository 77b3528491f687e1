"""The known set of edits `Directory.apply_changes()` makes, for drift tests: rows added, removed and
changed in several resources, a member added to a role and a grant's scope changed among them."""

from __future__ import annotations

from bisect import insort

from .directory import Directory, _id, _permission_key, ident


def apply_changes(d: Directory) -> dict[str, dict[str, list]]:
    summary = {name: {"added": [], "removed": [], "changed": []} for name in (
        "client_grants", "resource_servers", "roles", "role_permissions", "role_members",
        "organizations", "organization_members", "connections")}
    _roles(d, summary)
    _grants(d, summary)
    _organizations(d, summary)
    _connections(d, summary)
    _resource_servers(d, summary)
    return summary


def _roles(d: Directory, summary: dict) -> None:
    if d.roles:
        gone = d.roles.pop()  # the last by id, with its permissions and members
        summary["roles"]["removed"].append([gone["id"]])
        for p in d.role_permissions.pop(gone["id"]):
            summary["role_permissions"]["removed"].append([gone["id"], p["resource_server_identifier"], p["permission_name"]])
        for i in d.role_members.pop(gone["id"]):
            summary["role_members"]["removed"].append([gone["id"], d.member_key(i)])
    if d.roles:
        first = d.roles[0]
        first["description"] += " (reviewed)"
        summary["roles"]["changed"].append([first["id"]])
        members = d.role_members[first["id"]]
        present = set(members)
        newcomer = next(i for i in range(d.sizes.users + 1) if i not in present)
        insort(members, newcomer, key=d.member_key)
        summary["role_members"]["added"].append([first["id"], d.member_key(newcomer)])
        permission = d._permission("Reports API", "https://reports.example.com", "audit:reports")
        insort(d.role_permissions[first["id"]], permission, key=_permission_key)
        summary["role_permissions"]["added"].append([first["id"], permission["resource_server_identifier"], permission["permission_name"]])
    if len(d.roles) > 1 and d.role_members[d.roles[1]["id"]]:
        second = d.roles[1]["id"]
        leaver = d.role_members[second].pop(0)
        summary["role_members"]["removed"].append([second, d.member_key(leaver)])
    added = {"id": ident("rol_", d.seed, "role", "contractors"), "name": "contractors", "description": "Temporary staff"}
    insort(d.roles, added, key=_id)
    d.role_permissions[added["id"]] = []
    d.role_members[added["id"]] = sorted([1, 2], key=d.member_key)
    summary["roles"]["added"].append([added["id"]])
    summary["role_members"]["added"] += [[added["id"], d.member_key(i)] for i in d.role_members[added["id"]]]


def _grants(d: Directory, summary: dict) -> None:
    if len(d.client_grants) > 1:
        changed = d.client_grants[0]
        changed["scope"] = changed["scope"] + ["read:logs"] if "read:logs" not in changed["scope"] else changed["scope"][:-1]
        summary["client_grants"]["changed"].append([changed["id"]])
        gone = d.client_grants.pop()
        summary["client_grants"]["removed"].append([gone["id"]])
    own = next((g["client_id"] for g in d.client_grants), "sandbox")
    added = d._grant(own, "https://reports.example.com", ["read:reports"], "drift")
    insort(d.client_grants, added, key=_id)
    summary["client_grants"]["added"].append([added["id"]])


def _organizations(d: Directory, summary: dict) -> None:
    if d.organizations:
        first = d.organizations[0]
        first["display_name"] += " (renamed)"
        summary["organizations"]["changed"].append([first["id"]])
        members = d.organization_members[first["id"]]
        if members:
            leaver = members.pop()
            summary["organization_members"]["removed"].append([first["id"], d.member_key(leaver)])
    added = {"id": ident("org_", d.seed, "org", "newco"), "name": "newco", "display_name": "NewCo",
             "branding": {}, "metadata": {}}
    insort(d.organizations, added, key=_id)
    d.organization_members[added["id"]] = [0]
    summary["organizations"]["added"].append([added["id"]])
    summary["organization_members"]["added"].append([added["id"], d.member_key(0)])


def _connections(d: Directory, summary: dict) -> None:
    for conn in list(d.connections):
        if conn["name"] == "github":
            d.connections.remove(conn)
            summary["connections"]["removed"].append([conn["id"]])
        elif conn["name"] == "google-oauth2":
            conn["display_name"] = "Google Workspace"
            summary["connections"]["changed"].append([conn["id"]])
    added = {"id": ident("con_", d.seed, "connection", "partner-two"), "name": "partner-two", "display_name": "Partner Two",
             "strategy": "oidc", "options": {"client_id": "p2", "client_secret": "SANDBOXCONNSECRET-partner-two"},
             "is_domain_connection": False, "realms": ["partner-two"], "metadata": {}}
    insort(d.connections, added, key=_id)
    summary["connections"]["added"].append([added["id"]])


def _resource_servers(d: Directory, summary: dict) -> None:
    custom = [rs for rs in d.resource_servers if not rs["is_system"]]
    if custom:
        custom[0]["scopes"] = custom[0]["scopes"] + [{"value": "audit:all", "description": "audit"}]
        summary["resource_servers"]["changed"].append([custom[0]["id"]])

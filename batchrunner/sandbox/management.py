"""The Management API endpoints of the stand-in beyond /clients: what each answers, given a request
that server.py has already authenticated, checked for scope and let through the rate buckets."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlencode

from .paging import Listing, _integer, bad_query, list_reply
from .tenant import Reply, _api_error, _select_fields

LOGS_WALL = 1000


@dataclass
class Request:
    method: str
    path: str
    params: dict  # from the path pattern, e.g. {"id": "rol_..."}
    query: dict
    headers: dict
    json: object = None
    form: dict | None = None
    pairs: list = field(default_factory=list)  # the query as sent, a parameter given twice twice


def _not_found(message: str, code: str) -> Reply:
    return Reply(404, _api_error(404, "Not Found", message, code))


def origin(sb, req: Request) -> str:
    """The origin the client asked, from its Host header, for links it must follow: behind a proxy or
    a port forward the address the stand-in is bound to is not the one the client can reach."""
    host = next((v for k, v in req.headers.items() if k.lower() == "host"), "")
    scheme = next((v for k, v in req.headers.items() if k.lower() == "x-forwarded-proto"), "http")
    return f"{scheme}://{host}" if host else sb.base_url


def _ids(row: dict) -> str:
    return row["id"]


# --- the snapshot's resources (README, "The access snapshot: `snapshot`") ---------------------------------------------------

def client_grants(sb, req: Request) -> Reply:
    rows = sb.directory.client_grants
    for name in ("audience", "client_id"):
        if req.query.get(name):
            rows = [g for g in rows if g[name] == req.query[name]]
    return list_reply(Listing("client_grants", checkpoint=True), req.query, rows, _ids)


def resource_servers(sb, req: Request) -> Reply:
    return list_reply(Listing("resource_servers"), req.query, sb.directory.resource_servers, _ids)


def roles(sb, req: Request) -> Reply:
    rows = sb.directory.roles
    if req.query.get("name_filter"):
        rows = [r for r in rows if req.query["name_filter"].lower() in r["name"].lower()]
    return list_reply(Listing("roles"), req.query, rows, _ids)


def role_permissions(sb, req: Request) -> Reply:
    role = sb.directory.role(req.params["id"])
    if role is None:
        return _not_found("The role does not exist.", "inexistent_role")
    return list_reply(Listing("permissions"), req.query, sb.directory.role_permissions[role["id"]], _ids)


def role_users(sb, req: Request) -> Reply:
    d = sb.directory
    return _members(req, "users", d.role(req.params["id"]), d.role_members, d, ("The role does not exist.", "inexistent_role"))


def organizations(sb, req: Request) -> Reply:
    return list_reply(Listing("organizations", checkpoint=True, wall=True), req.query, sb.directory.organizations, _ids)


def organization_members(sb, req: Request) -> Reply:
    d = sb.directory
    return _members(req, "members", d.organization(req.params["id"]), d.organization_members, d,
                    ("No organization found by that id or name", "inexistent_organization"))


def _members(req: Request, key: str, parent: dict | None, members: dict, d, missing: tuple[str, str]) -> Reply:
    """A role's or an organization's members: offset up to Auth0's 1,000-record wall, checkpoint past it."""
    if parent is None:
        return _not_found(*missing)
    return list_reply(Listing(key, checkpoint=True, wall=True), req.query, members[parent["id"]], d.member_key, d.member)


def connections(sb, req: Request) -> Reply:
    rows = sb.directory.connections
    if req.query.get("name"):
        rows = [c for c in rows if c["name"] == req.query["name"]]
    wanted = {s for name, value in req.pairs if name == "strategy" for s in value.split(",") if s}
    if wanted:
        rows = [c for c in rows if c["strategy"] in wanted]
    return list_reply(Listing("connections", checkpoint=True), req.query, rows, _ids)


# --- what tenant-checks reads (README, "Tenant checks: `tenant-checks`"; checks.py) ----------------------------------

def client_credentials(sb, req: Request) -> Reply:
    client_id = req.params["client_id"]
    if client_id in sb.checks.credentials:
        return Reply(200, sb.checks.credentials[client_id])
    known = any(sb.tenant.application(i, keys=False)["client_id"] == client_id for i in range(sb.tenant.clients))
    return Reply(200, []) if known else _not_found("The client does not exist", "inexistent_client")


def log_streams(sb, req: Request) -> Reply:
    return Reply(200, sb.checks.log_streams)


def custom_domains(sb, req: Request) -> Reply:
    """The whole list, or with `take` a checkpoint page (`{custom_domains, next}`)."""
    domains = sorted(sb.checks.custom_domains, key=lambda d: d["domain"])
    if "take" not in req.query and "from" not in req.query:
        return Reply(200, domains)
    take = _integer(req.query, "take", 50, 1, 100)
    if isinstance(take, Reply):
        return take
    start = next((n for n, d in enumerate(domains) if d["custom_domain_id"] == req.query.get("from")), -1) + 1 if req.query.get("from") else 0
    batch = domains[start:start + take]
    body = {"custom_domains": batch}
    if start + take < len(domains):
        body["next"] = batch[-1]["custom_domain_id"]
    return Reply(200, body)


def signing_keys(sb, req: Request) -> Reply:
    return Reply(200, sb.checks.signing_keys)


# --- logs (README, "The log archive: `export-logs`") ----------------------------------------------------------------------

def logs(sb, req: Request) -> Reply:
    """Checkpoint paging when `from` or `take` is given ("Any parameter other than from and take will
    be ignored"), with a Link header to the next batch; otherwise search paging, newest first."""
    if "from" in req.query or "take" in req.query:
        return _log_batch(sb, req)
    page = _integer(req.query, "page", 0, 0, None)
    per_page = _integer(req.query, "per_page", 50, 1, 100)
    for value in (page, per_page):
        if isinstance(value, Reply):
            return value
    if page * per_page + per_page > LOGS_WALL:
        return Reply(400, _api_error(400, "Bad Request", "You can only page through the first 1000 records. "
                                     "See https://auth0.com/docs/logs/retrieve-log-events-using-mgmt-api", "invalid_paging"))
    events, total = sb.logs.newest_first(page * per_page, per_page)
    events = [_select_fields(e, req.query) for e in events]
    if req.query.get("include_totals", "").lower() == "true":
        return Reply(200, {"start": page * per_page, "limit": per_page, "total": total, "logs": events})
    return Reply(200, events)


def _log_batch(sb, req: Request) -> Reply:
    take = _integer(req.query, "take", 50, 1, 100)
    if isinstance(take, Reply):
        return take
    start = req.query.get("from") or None
    events = sb.logs.after(start, take)
    if events is None:
        return bad_query(f"The log with id {start} given in 'from' is no longer held; logs are kept as the plan's retention allows")
    # As Auth0: the next batch starts after the last event; an empty batch points at the same place.
    following = events[-1]["log_id"] if events else start
    params = {"take": take, **({"from": following} if following else {})}
    link = f'<{origin(sb, req)}/api/v2/logs?{urlencode(params)}>; rel="next"'
    return Reply(200, events, {"Link": link})


def log(sb, req: Request) -> Reply:
    event = sb.logs.get(req.params["id"])
    if event is None:
        return _not_found("log not found", "inexistent_log")
    return Reply(200, event)


# --- bulk user export (README, "The user export: `export-users`") -----------------------------------------------------------

def create_users_export(sb, req: Request) -> Reply:
    return sb.exports.create(req.json, sb.directory.connections)


def job(sb, req: Request) -> Reply:
    return sb.exports.status(req.params["id"], origin(sb, req))


def download(sb, req: Request) -> Reply:
    return sb.exports.download(req.path, req.query, req.headers)


# --- one user (README, "User maintenance: `users-cleanup`") ----------------------------------------------------------------

def _user_id(req: Request) -> str:
    return unquote(req.params["id"])  # `auth0|...`, `samlp|acme|x@y`: sent percent-encoded


def get_user(sb, req: Request) -> Reply:
    found = sb.exports.find(_user_id(req))
    return Reply(200, found) if found is not None else _not_found("The user does not exist.", "inexistent_user")


def patch_user(sb, req: Request) -> Reply:
    body = req.json if isinstance(req.json, dict) else {}
    found = sb.exports.patch(_user_id(req), body)
    return Reply(200, found) if found is not None else _not_found("The user does not exist.", "inexistent_user")


def delete_user(sb, req: Request) -> Reply:
    sb.exports.delete(_user_id(req))  # Auth0 answers 204 whether or not the user was there
    return Reply(204, b"")

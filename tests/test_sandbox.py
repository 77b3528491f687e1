"""The stand-in tenant over real HTTP: the endpoints the snapshot, export-logs and export-users jobs
read, with Auth0's shapes, both kinds of paging, the 1,000-record wall, scopes, rate buckets, log
retention and the bulk export's lifecycle."""

from __future__ import annotations

import gzip
import json

import pytest
import requests

from batchrunner.sandbox.tenant import _select_fields
from batchrunner.sandbox.users import user_id

ALL_SCOPES = ["read:clients", "read:client_grants", "read:resource_servers", "read:roles", "read:users",
              "read:connections", "read:organizations", "read:organization_members", "read:logs"]


class Api:
    """Calls to the stand-in with a token for `scopes`."""

    def __init__(self, tenant, scopes):
        self.tenant = tenant
        tenant.set_scopes(scopes)
        body = {"grant_type": "client_credentials", "client_id": tenant.client_id,
                "client_secret": tenant.client_secret, "audience": tenant.audience}
        self.token = requests.post(f"{tenant.base_url}/oauth/token", data=body, timeout=5).json()["access_token"]

    def get(self, path, **params):
        return requests.get(self.url(path), params=params, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def post(self, path, body):
        return requests.post(self.url(path), json=body, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def url(self, path):
        return path if path.startswith("http") else f"{self.tenant.base_url}/api/v2/{path}"


@pytest.fixture
def api(tenant):
    return Api(tenant, ALL_SCOPES)


def checkpoint_all(api, path, key, take=7):
    """Every item by following `next` until it is left out; the number of requests made."""
    items, params, calls = [], {"take": take}, 0
    while True:
        reply = api.get(path, **params)
        calls += 1
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert set(body) <= {key, "next"}
        items += body[key]
        if "next" not in body:
            return items, calls
        params = {"take": take, "from": body["next"]}


# --- routes and shapes -------------------------------------------------------------------------------

def test_an_unknown_path_or_method_is_auth0s_404(api):
    assert api.get("no-such-thing").status_code == 404
    assert requests.get(f"{api.tenant.base_url}/oauth/token", timeout=5).json() == {
        "statusCode": 404, "error": "Not Found", "message": "Not Found"}


@pytest.mark.parametrize("path, key", [("client-grants", "client_grants"), ("resource-servers", "resource_servers"),
                                       ("roles", "roles"), ("organizations", "organizations"), ("connections", "connections")])
def test_offset_lists_answer_an_array_or_with_totals_an_object(api, path, key):
    held = getattr(api.tenant.directory, key)
    bare = api.get(path, per_page=100).json()
    assert isinstance(bare, list) and [row["id"] for row in bare] == [row["id"] for row in held]
    paged = api.get(path, page=1, per_page=2, include_totals="true").json()
    assert paged == {"start": 2, "limit": 2, "total": len(held), key: bare[2:4]}
    assert api.get(path).json() == bare[:50]  # per_page defaults to 50
    assert api.get(path, per_page=101).status_code == 400


def test_the_default_tenant_has_a_snapshot_worth_looking_at(api):
    d = api.tenant.directory
    audiences = {g["audience"] for g in d.client_grants}
    assert api.tenant.audience in audiences and "https://orders.example.com/api" in audiences
    assert len(d.roles) >= 3 and len(d.organizations) >= 2 and len(d.connections) >= 5
    assert len(d.role_members[d.big_role]) > 100
    management = next(rs for rs in api.get("resource-servers").json() if rs["is_system"])
    assert management["identifier"] == api.tenant.audience
    grant = api.get("client-grants", audience=api.tenant.audience).json()[0]
    assert set(grant) >= {"id", "client_id", "audience", "scope"} and isinstance(grant["scope"], list)


def test_role_permissions_and_members_have_auth0s_fields(api):
    role = api.get("roles").json()[0]
    assert set(role) == {"id", "name", "description"}
    permission = api.get(f"roles/{role['id']}/permissions").json()[0]
    assert set(permission) == {"permission_name", "description", "resource_server_name", "resource_server_identifier"}
    user = api.get(f"roles/{role['id']}/users", per_page=1).json()[0]
    assert set(user) == {"user_id", "email", "picture", "name"}
    org = api.get("organizations").json()[0]
    member = api.get(f"organizations/{org['id']}/members", per_page=1).json()[0]
    assert set(member) == {"user_id", "email", "picture", "name"}
    assert api.get("roles/rol_nosuchrole0000/users").json()["errorCode"] == "inexistent_role"
    assert api.get("organizations/org_nosuchorg00000/members").status_code == 404


# --- paging ------------------------------------------------------------------------------------------

def test_checkpoint_paging_brings_every_member_once_in_user_id_order(api):
    d = api.tenant.directory
    role = d.big_role
    members, calls = checkpoint_all(api, f"roles/{role}/users", "users")
    ids = [m["user_id"] for m in members]
    assert len(ids) == len(d.role_members[role]) == api.tenant.sizes.big_role_members
    assert ids == sorted(set(ids))
    assert calls == -(-len(ids) // 7)  # `next` is left out on the last page, not after an empty one
    org = d.big_organization
    members, _ = checkpoint_all(api, f"organizations/{org}/members", "members")
    assert len({m["user_id"] for m in members}) == len(d.organization_members[org])


def test_an_organization_of_every_user_is_computed_not_held_and_pages_in_user_id_order(api):
    from batchrunner.sandbox.users import Everyone

    sizes = api.tenant.sizes
    before = sizes.big_org_members
    sizes.big_org_members = sizes.users  # everyone: a million of them cost no memory
    try:
        d = api.tenant.directory = api.tenant._directory()
        org = d.big_organization
        assert isinstance(d.organization_members[org], Everyone)
        members, _ = checkpoint_all(api, f"organizations/{org}/members", "members")
        assert [m["user_id"] for m in members] == sorted(user_id(api.tenant.seed, i) for i in range(sizes.users))
        assert Everyone(10 ** 6)[-1] == 10 ** 6 - 1 and len(Everyone(10 ** 6)[5:105]) == 100
    finally:
        sizes.big_org_members = before
        api.tenant.reset()


@pytest.mark.parametrize("path, key", [("organizations", "organizations"), ("client-grants", "client_grants"),
                                       ("connections", "connections")])
def test_checkpoint_paging_of_other_lists(api, path, key):
    items, _ = checkpoint_all(api, path, key, take=2)
    assert [i["id"] for i in items] == [row["id"] for row in getattr(api.tenant.directory, key)]


def test_a_bad_checkpoint_or_take_is_refused(api):
    assert api.get("organizations", take=101).status_code == 400
    assert api.get("organizations", take=2, **{"from": "%%%"}).json()["errorCode"] == "invalid_query_string"


def wall(page):
    return {"statusCode": 400, "error": "Bad Request", "errorCode": "invalid_paging",
            "message": f"Requesting page {page} exceeds the allowed maximum of 1000 records. "
                       "To fetch results beyond 1000, use the checkpoint pagination method."}


def test_offset_paging_stops_at_1000_records_whatever_the_count(api):
    d = api.tenant.directory
    role, org = d.roles[0]["id"], d.organizations[0]["id"]
    for path in (f"roles/{role}/users", "organizations", f"organizations/{org}/members"):
        assert api.get(path, page=9, per_page=100).status_code == 200
        reply = api.get(path, page=10, per_page=100)
        assert (reply.status_code, reply.json()) == (400, wall(10)), path
        assert api.get(path, page=20, per_page=50).json() == wall(20)  # 20 * 50 + 50 > 1000
    assert api.get("client-grants", page=10, per_page=100).status_code == 200  # no wall there


# --- scopes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, expected", [
    ("client-grants", "read:client_grants"), ("resource-servers", "read:resource_servers"), ("roles", "read:roles"),
    ("roles/ID/permissions", "read:roles"), ("roles/ID/users", "read:users, read:roles, read:role_members"),
    ("organizations", "read:organizations, read:organizations_summary"),
    ("organizations/ORG/members", "read:organization_members"), ("connections", "read:connections"),
    ("logs", "read:logs, read:logs_users"), ("jobs/job_0000000000000000", "create:users, read:users, create:passwords_checking_job")])
def test_each_endpoint_wants_its_scope(tenant, path, expected):
    path = path.replace("ID", tenant.directory.roles[0]["id"]).replace("ORG", tenant.directory.organizations[0]["id"])
    reply = Api(tenant, ["read:clients"]).get(path)
    assert (reply.status_code, reply.json()) == (403, {
        "statusCode": 403, "error": "Forbidden", "message": f"Insufficient scope, expected any of: {expected}",
        "errorCode": "insufficient_scope"})
    assert Api(tenant, [expected.split(", ")[-1]]).get(path).status_code in (200, 404)


def test_an_expired_token_is_refused_on_the_new_endpoints_too(api):
    api.tenant.tenant.expire_all_tokens()
    assert api.get("roles").status_code == 401


# --- secrets -----------------------------------------------------------------------------------------

def test_connections_hold_secrets_in_options_and_apis_a_signing_secret(api):
    connections = api.get("connections").json()
    google = api.get("connections", name="google-oauth2").json()
    assert [c["name"] for c in google] == ["google-oauth2"]
    assert google[0]["options"]["client_secret"].startswith("SANDBOXCONNSECRET")
    assert sum("SANDBOXCONNSECRET" in json.dumps(c["options"]) for c in connections) >= 4
    assert {c["strategy"] for c in api.get("connections", strategy="samlp,waad").json()} == {"samlp", "waad"}
    custom = [rs for rs in api.get("resource-servers").json() if not rs["is_system"]]
    assert custom and all(rs["signing_secret"].startswith("SANDBOXAPISECRET") for rs in custom)


# --- rate buckets ------------------------------------------------------------------------------------

def test_endpoint_buckets_are_off_by_default(api):
    for _ in range(12):
        reply = api.get("connections")
        assert reply.status_code == 200 and "x-ratelimit-limit" not in reply.headers


def test_an_endpoint_bucket_refuses_past_its_burst_and_refills_with_the_clock(api):
    api.tenant.buckets.enabled = True
    for left in (4, 3, 2, 1, 0):  # Read Connections: 5 at once, 50 a minute
        reply = api.get("connections")
        assert (reply.status_code, reply.headers["x-ratelimit-limit"], reply.headers["x-ratelimit-remaining"]) == (200, "5", str(left))
    refused = api.get("connections")
    assert refused.status_code == 429 and refused.json()["errorCode"] == "too_many_requests"
    assert int(refused.headers["x-ratelimit-reset"]) > api.tenant.clock()
    assert api.get("roles").status_code == 200  # another bucket ("All other Endpoints Combined", 10)
    assert api.get("roles").headers["x-ratelimit-limit"] == "10"
    api.tenant.clock.advance(1.3)  # 50 a minute: one more after 1.2 s
    assert api.get("connections").status_code == 200
    assert api.get("connections").status_code == 429
    assert api.tenant.tenant.responses_429 == 2


def test_read_clients_has_its_own_bucket(api):
    api.tenant.buckets.enabled = True
    statuses = [api.get("clients").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def test_the_headers_come_from_the_tighter_bucket(api):
    api.tenant.buckets.enabled = True
    api.tenant.tenant.rate, api.tenant.tenant.burst = 1000, 3  # the global bucket: 3 at once
    first = api.get("organizations/" + api.tenant.directory.organizations[0]["id"] + "/members")
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == ("3", "2")
    api.tenant.tenant.burst = 1000
    api.tenant.tenant._bucket = None
    second = api.get("connections")
    assert (second.headers["x-ratelimit-limit"], second.headers["x-ratelimit-remaining"]) == ("5", "4")


# --- the applications: pages joined from each application's JSON encoded once ---------------------------

SECRET_FIELDS = "client_secret,signing_keys,encryption_key,client_authentication_methods"


def expected_clients(tenant, keys, query, with_global=True) -> list[dict]:
    """The listed applications as the tenant holds them: the global one, those created since, the rest."""
    app = tenant.tenant
    listed = [app.global_client(keys)] if with_global else []
    listed += [app.application(-1000 - k, keys) for k in range(app.prepended)]
    listed += [app.application(i, keys) for i in range(app.clients)]
    return [_select_fields(a, query) for a in listed]


@pytest.mark.parametrize("scopes", [["read:clients"], ["read:clients", "read:client_keys"]])
@pytest.mark.parametrize("query", [
    {"per_page": "100", "page": "1", "include_totals": "true"},
    {"fields": SECRET_FIELDS, "include_fields": "false", "is_global": "false", "per_page": "100", "include_totals": "true"},
    {"fields": "client_id,name,client_authentication_methods", "include_fields": "true", "per_page": "30", "page": "2"},
    {"fields": "name", "include_fields": "false", "per_page": "100", "page": "9", "include_totals": "true"},  # past the end
])
def test_a_page_of_applications_is_byte_for_byte_what_json_dumps_writes(tenant, scopes, query):
    api = Api(tenant, scopes)
    tenant.tenant.set_clients(150)
    tenant.tenant.prepend_application()
    page, per_page = int(query.get("page", 0)), int(query["per_page"])
    listed = expected_clients(tenant, "read:client_keys" in scopes, query, query.get("is_global") != "false")
    chosen = listed[page * per_page:(page + 1) * per_page]
    body = {"start": page * per_page, "limit": per_page, "total": len(listed), "clients": chosen} if "include_totals" in query else chosen
    assert api.get("clients", **query).content == json.dumps(body).encode()


def test_a_change_to_the_applications_shows_in_the_next_page(tenant):
    api, app = Api(tenant, ["read:clients"]), tenant.tenant
    query = {"fields": SECRET_FIELDS, "include_fields": "false", "per_page": "100", "include_totals": "true"}

    def listed():
        body = api.get("clients", **query).json()
        assert body["clients"] == expected_clients(tenant, False, query)[:100]
        return [a["client_id"] for a in body["clients"]], body["total"]

    app.set_clients(40)
    ids, total = listed()
    assert total == 41
    app.prepend_application()  # created: first after the global one, every other one a place later
    assert listed() == ([ids[0], app.application(-1000)["client_id"], *ids[1:]], 42)
    app.set_clients(20)  # deleted at the end
    assert listed() == ([ids[0], app.application(-1000)["client_id"], *ids[1:21]], 22)
    app.set_clients(120)
    assert listed()[0][1:] == [app.application(-1000)["client_id"]] + [app.application(i)["client_id"] for i in range(98)]
    tenant.reset()
    api = Api(tenant, ["read:clients", "read:client_keys"])  # the same applications, their keys shown now
    assert all("client_secret" in a for a in api.get("clients", per_page="100").json())
    assert listed()[1] == tenant.clients + 1


# --- drift -------------------------------------------------------------------------------------------

def test_apply_changes_edits_several_resources_as_it_reports(api):
    d = api.tenant.directory
    before_grant = api.get("client-grants", per_page=1).json()[0]
    summary = d.apply_changes()
    assert all(summary[r]["added"] for r in ("roles", "role_members", "client_grants", "organizations", "connections"))
    assert all(summary[r]["removed"] for r in ("roles", "role_members", "client_grants", "connections"))
    assert [before_grant["id"]] in summary["client_grants"]["changed"]
    assert api.get("client-grants", per_page=1).json()[0]["scope"] != before_grant["scope"]
    role, user = next(k for k in summary["role_members"]["added"] if k[0] == d.roles[0]["id"])
    members, _ = checkpoint_all(api, f"roles/{role}/users", "users", take=50)
    assert user in {m["user_id"] for m in members}
    names = {c["name"] for c in api.get("connections").json()}
    assert "github" not in names and "partner-two" in names
    api.tenant.reset()
    assert "github" in {c["name"] for c in api.get("connections").json()}


# --- logs --------------------------------------------------------------------------------------------

def follow_logs(api, take=50, first=None):
    """Checkpoint batches by the Link header until one comes back empty; the events and the last Link."""
    events, url = [], api.url("logs") + f"?take={take}" + (f"&from={first}" if first else "")
    while True:
        reply = api.get(url)
        assert reply.status_code == 200, reply.text
        if not reply.json():
            return events, reply.links["next"]["url"], url
        events += reply.json()
        url = reply.links["next"]["url"]


def test_logs_by_checkpoint_start_at_the_oldest_held_and_follow_link_until_empty(api):
    held = api.tenant.logs.held()
    events, last_link, last_url = follow_logs(api, take=30)
    assert [e["log_id"] for e in events] == held and len(held) == api.tenant.sizes.log_events
    assert last_link == last_url  # an empty batch points at the same place
    assert last_link == f"{api.tenant.base_url}/api/v2/logs?take=30&from={held[-1]}"


def test_log_events_look_like_auth0s(api):
    events = api.get("logs", take=100).json()
    ids = [e["log_id"] for e in events]
    assert ids == sorted(ids) and all(len(i) == 56 and i.isdigit() and i.startswith("900") for i in ids)
    assert {"s", "ssa", "sertft", "f", "seacft", "sapi", "seccft"} <= {e["type"] for e in events}
    login = next(e for e in events if e["type"] == "s")
    assert {"date", "type", "client_id", "ip", "user_agent", "details", "user_id", "connection", "log_id"} <= set(login)
    assert login["date"].endswith("Z")


def test_new_events_come_after_the_checkpoint(api):
    newest = api.tenant.logs.held()[-1]
    assert api.get("logs", take=100, **{"from": newest}).json() == []
    added = api.tenant.logs.add(3)
    assert [e["log_id"] for e in api.get("logs", take=100, **{"from": newest}).json()] == added
    api.tenant.logs.set_rate(2.0)  # two a second, read from the clock
    api.tenant.clock.advance(10)
    assert len(api.get("logs", take=100, **{"from": added[-1]}).json()) == 20


def test_take_is_at_most_100_and_a_tenant_may_cap_it_lower(api):
    assert api.get("logs", take=101).status_code == 400
    api.tenant.logs.max_take = 20
    events, _, _ = follow_logs(api, take=100)
    assert len(events) == api.tenant.sizes.log_events  # short batches, but on until an empty one


def test_retention_drops_old_events_and_a_from_no_longer_held_is_refused(api):
    logs = api.tenant.logs
    oldest = logs.held()[0]
    assert api.get(f"logs/{oldest}").json()["log_id"] == oldest
    logs.drop_oldest(5)
    reply = api.get("logs", take=10, **{"from": oldest})
    assert reply.status_code == 400 and reply.json()["errorCode"] == "invalid_query_string"
    assert api.get(f"logs/{oldest}").json() == {"statusCode": 404, "error": "Not Found", "message": "log not found",
                                                "errorCode": "inexistent_log"}
    assert api.get("logs", take=10).json()[0]["log_id"] == logs.held()[0]
    logs.retention_seconds = 60  # a plan that keeps a minute: a minute on, all are gone
    api.tenant.clock.advance(61)
    assert logs.held() == []
    assert api.get("logs", take=10, **{"from": oldest}).status_code == 400


def test_logs_without_a_checkpoint_are_searched_newest_first_up_to_1000(api):
    newest = api.get("logs", per_page=5).json()
    assert [e["log_id"] for e in newest] == api.tenant.logs.held()[::-1][:5]
    assert api.get("logs", page=10, per_page=100).json()["errorCode"] == "invalid_paging"


# --- the bulk user export ----------------------------------------------------------------------------

FIELDS = [{"name": n} for n in ("user_id", "email", "email_verified", "name", "identities[0].connection",
                                 "created_at", "last_login", "logins_count", "blocked")]


def export(api, **body):
    """Create an export and poll it to its end; the replies of the create and of each poll."""
    created = api.post("jobs/users-exports", {"format": "json", "fields": FIELDS, **body})
    assert created.status_code == 200, created.text
    polls = []
    while not polls or polls[-1]["status"] in ("pending", "processing"):
        polls.append(api.get(f"jobs/{created.json()['id']}").json())
        assert len(polls) < 10
    return created.json(), polls


def download(url, **headers):
    return requests.get(url, headers=headers, timeout=10)


def test_an_export_job_goes_pending_processing_completed_with_auth0s_shape(api):
    job, polls = export(api)
    assert job == {"type": "users_export", "status": "pending", "id": job["id"], "created_at": job["created_at"],
                   "format": "json", "fields": FIELDS, "connection": ""}
    assert job["id"].startswith("job_") and job["created_at"].endswith("Z")
    assert [p["status"] for p in polls] == ["processing", "completed"]
    assert polls[0]["time_left_seconds"] == 1 and 0 < polls[0]["percentage_done"] < 100
    location = polls[-1]["location"]
    assert location.startswith(f"{api.tenant.base_url}/user-exports/{job['id']}/sandbox.json.gz?Expires=")
    api.tenant.exports.polls_to_complete = 3
    _, polls = export(api)
    assert [p["status"] for p in polls] == ["pending", "processing", "completed"]


def test_the_download_is_a_plain_gzip_of_json_lines_fetched_without_the_token(api):
    _, polls = export(api)
    reply = download(polls[-1]["location"])
    assert reply.status_code == 200 and "Content-Encoding" not in reply.headers
    assert reply.headers["Content-Type"] == "application/gzip"
    users = [json.loads(line) for line in gzip.decompress(reply.content).decode().splitlines()]
    assert len(users) == api.tenant.sizes.export_users
    assert len({u["user_id"] for u in users}) == len(users)
    never = [u for u in users if "last_login" not in u]
    assert never and all("logins_count" not in u for u in never)
    assert {u.get("blocked") for u in users} == {True, None}  # present only where set
    assert users[1]["identities[0].connection"] == "Username-Password-Authentication"
    assert any(u["name"].startswith("=") for u in users)  # formula-looking names, for the job to neutralise
    assert api.tenant.exports.downloads == [{"path": reply.url.split("?")[0].replace(api.tenant.base_url, ""),
                                             "authorization": False, "status": 200}]


def test_metadata_comes_only_where_a_user_has_it(api):
    _, polls = export(api, fields=[{"name": "user_id"}, {"name": "app_metadata"}, {"name": "user_metadata"}])
    users = [json.loads(line) for line in gzip.decompress(download(polls[-1]["location"]).content).decode().splitlines()]
    assert 0 < sum("app_metadata" in u for u in users) < len(users)
    assert 0 < sum("user_metadata" in u for u in users) < len(users)


def test_a_download_with_an_authorization_header_is_refused_and_recorded(api):
    _, polls = export(api)
    reply = download(polls[-1]["location"], Authorization=f"Bearer {api.token}")
    assert reply.status_code == 400 and "<Code>InvalidArgument</Code>" in reply.text
    assert api.tenant.exports.downloads[-1]["authorization"] is True


def test_a_link_expires_after_60_seconds_as_s3_answers_and_reading_the_job_again_renews_it(api):
    job, polls = export(api)
    api.tenant.clock.advance(61)
    expired = download(polls[-1]["location"])
    assert expired.status_code == 403 and expired.headers["Content-Type"] == "application/xml"
    assert expired.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                                   "<Message>Request has expired</Message>")
    fresh = api.get(f"jobs/{job['id']}").json()["location"]
    assert fresh != polls[-1]["location"] and download(fresh).status_code == 200
    tampered = fresh.replace("Expires=", "Expires=9")
    assert "<Code>SignatureDoesNotMatch</Code>" in download(tampered).text


def test_csv_prefixes_every_string_with_a_quote(api):
    _, polls = export(api, format="csv", fields=[{"name": "user_id"}, {"name": "email", "export_as": "mail"},
                                                 {"name": "email_verified"}, {"name": "logins_count"}])
    assert polls[-1]["location"].split("?")[0].endswith("/sandbox.csv.gz")
    lines = gzip.decompress(download(polls[-1]["location"]).content).decode().splitlines()
    assert lines[0] == "user_id,mail,email_verified,logins_count"
    first, second = (user_id(api.tenant.seed, i) for i in (0, 1))
    assert lines[1] == f'"\'{first}","\'user0000000@example.com",false,'  # never logged in: no count
    assert lines[2] == f'"\'{second}","\'user0000001@example.com",true,32'


def test_an_export_of_one_connection_found_by_name(api):
    connection = api.get("connections", name="google-oauth2").json()[0]
    job, polls = export(api, connection_id=connection["id"])
    assert job["connection_id"] == connection["id"] and polls[-1]["connection"] == "google-oauth2"
    users = [json.loads(line) for line in gzip.decompress(download(polls[-1]["location"]).content).decode().splitlines()]
    assert users and {u["identities[0].connection"] for u in users} == {"google-oauth2"}
    assert api.post("jobs/users-exports", {"format": "json", "connection_id": "con_nosuch0000000000"}).status_code == 404


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
def test_a_job_that_fails_or_is_cancelled_says_why(api, outcome):
    api.tenant.exports.outcome = outcome
    _, polls = export(api)
    assert polls[-1]["status"] == outcome and "location" not in polls[-1]
    assert polls[-1]["status_details"] == api.tenant.exports.status_details


def test_a_job_can_take_seconds_instead_of_polls(api):
    api.tenant.exports.seconds_to_complete = 30
    job = api.post("jobs/users-exports", {"format": "json"}).json()
    first = api.get(f"jobs/{job['id']}").json()
    assert first["status"] == "processing" and first["time_left_seconds"] == 30
    api.tenant.clock.advance(31)
    assert api.get(f"jobs/{job['id']}").json()["status"] == "completed"
    api.tenant.clock.advance(86400)  # job data is deleted after 24 hours
    assert api.get(f"jobs/{job['id']}").status_code in (401, 404)


def test_the_export_wants_read_users_a_plan_with_it_and_a_valid_body(tenant, api):
    reply = Api(tenant, ["read:logs"]).post("jobs/users-exports", {"format": "json"})
    assert reply.json()["message"] == "Insufficient scope, expected any of: read:users"
    api = Api(tenant, ["read:users"])
    assert api.post("jobs/users-exports", {"format": "xml"}).json()["errorCode"] == "invalid_body"
    assert api.post("jobs/users-exports", {"format": "csv", "fields": [{"name": f"f{i}"} for i in range(31)]}).status_code == 400
    tenant.exports.bulk_export_on_plan = False
    reply = api.post("jobs/users-exports", {"format": "json"})
    assert (reply.status_code, reply.json()["errorCode"]) == (403, "operation_not_supported")
    assert api.get("jobs/job_nosuchjob0000000").json()["errorCode"] == "inexistent_job"


# --- runner sandbox ----------------------------------------------------------------------------------

def test_runner_sandbox_serves_it_all_and_says_what_it_holds(tmp_path):
    import os

    from conftest import start_runner, stop

    proc = start_runner({**os.environ}, tmp_path, "sandbox", "--port", "0", "--clients", "8", "--users", "1200",
                        "--big-role-members", "1100", "--big-org-members", "30", "--log-events", "40", "--export-users", "25")
    lines = []
    for line in iter(proc.stdout.readline, ""):
        lines.append(line.rstrip("\n"))
        if line.startswith("export AUTH0_CLIENT_SECRET="):
            break
    settings = dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
    assert "#   8 roles (support-agents: 1,100 members)" in lines
    assert "#   40 log events (1 a second arriving, kept 1 day)" in lines
    assert "#   a bulk user export of 25 users" in lines
    base = settings["AUTH0_DOMAIN"]
    token = requests.post(f"{base}/oauth/token", timeout=5, data={
        "grant_type": "client_credentials", "client_id": settings["AUTH0_CLIENT_ID"],
        "client_secret": settings["AUTH0_CLIENT_SECRET"], "audience": f"{base}/api/v2/"}).json()
    assert "read:roles" in token["scope"].split() and "read:client_keys" not in token["scope"]
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    roles = requests.get(f"{base}/api/v2/roles", headers=headers, timeout=5).json()
    role = next(r["id"] for r in roles if r["name"] == "support-agents")
    members, params = [], {"take": 100}
    while True:
        body = requests.get(f"{base}/api/v2/roles/{role}/users", params=params, headers=headers, timeout=5).json()
        members += body["users"]
        if "next" not in body:
            break
        params["from"] = body["next"]
    assert len({m["user_id"] for m in members}) == 1100
    code, err = stop(proc)
    assert code == 0 and err == ""

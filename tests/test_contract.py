"""The runner speaks Auth0's published contract, and so does the stand-in every other test stands on
(README, "How the export treats the API" and "The stand-in tenant").

A session of every bundled job is recorded at the stand-in and each exchange checked, with the
`jsonschema` library (not the stand-in's own checks), against batchrunner/sandbox/auth0-management-api.json:
the part of Auth0's OpenAPI 3.1 description of the Management API for the operations the runner
calls, cut from it unchanged by scripts/auth0-contract (its `info.x-source` names the source).
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from batchrunner.findings import gather
from batchrunner.runs import registry
from batchrunner.sandbox import contract
from batchrunner.sandbox.server import Exchange
from conftest import ROOT, SQLITE_ONLY
from test_sandbox import ALL_SCOPES, Api

DESCRIPTION = json.loads(contract.DESCRIPTION.read_text(encoding="utf-8"))


def _lists_read_as_any_of(description: dict) -> dict:
    """The description's list answers are `oneOf` [array, offset page, checkpoint page], and a last
    checkpoint page (`{KEY: [...]}`, no `next`) is both pages at once, so `oneOf` would refuse every
    list's last page: an artefact of the description (like the undefined `connection` its README
    names), read here as the `anyOf` meant. Nothing else is changed."""
    copy = json.loads(json.dumps(description))
    lists = [s for n, s in copy["components"]["schemas"].items() if n.startswith("List") and n.endswith("ResponseContent")]
    lists.append(copy["paths"]["/clients"]["get"]["responses"]["200"]["content"]["application/json"]["schema"])
    for schema in lists:
        if "oneOf" in schema:
            schema["anyOf"] = schema.pop("oneOf")
    return copy


REGISTRY = Registry().with_resource("urn:auth0", Resource.from_contents(_lists_read_as_any_of(DESCRIPTION),
                                                                          default_specification=DRAFT202012))
# The whole description, where a copy of shared/ sits beside the checkout (development and CI).
WHOLE = [ROOT.parent / "shared" / "auth0" / "management-api-oas.json"]


def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"urn:auth0#{pointer}"}, registry=REGISTRY)


def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def _template(path: str) -> str | None:
    """The described path an /api/v2/ request path is an instance of ("/roles/{id}/users")."""
    parts = path.removeprefix("/api/v2").split("/")
    for template in DESCRIPTION["paths"]:
        pattern = template.split("/")
        if len(pattern) == len(parts) and all(p == q or p.startswith("{") for p, q in zip(pattern, parts)):
            return template
    return None


def _coerced(schema: dict, text: str):
    """A query or path value as its schema's type reads it (form style: text on the wire)."""
    while "$ref" in schema:
        schema = DESCRIPTION["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    kind = schema.get("type")
    if kind == "integer" and text.lstrip("-").isdigit():
        return int(text)
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


def _sent(operation: dict, template: str, url) -> list[tuple[str, str, object]]:
    """(in, name, value) of each parameter a request sent: a query name given twice as a list (valid
    only where the schema is an array), path parameters by their place in the template."""
    arrays = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and p["schema"].get("type") == "array"}
    given: dict[str, list[str]] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        given.setdefault(name, []).append(value)
    sent = [("query", name, values if name in arrays or len(values) > 1 else values[0]) for name, values in given.items()]
    parts = url.path.removeprefix("/api/v2").split("/")
    return sent + [("path", part[1:-1], parts[i]) for i, part in enumerate(template.split("/")) if part.startswith("{")]


def request_problems(exchange) -> list[str]:
    url = urlsplit(exchange.target)
    template, method = _template(url.path), exchange.method.lower()
    operation = DESCRIPTION["paths"].get(template, {}).get(method) if template else None
    if operation is None:
        return [f"{exchange.method} {url.path}: no such operation"]
    params = {(p["in"], p["name"]): (i, p["schema"]) for i, p in enumerate(operation.get("parameters", []))}
    problems = []
    for place, name, value in _sent(operation, template, url):
        if (place, name) not in params:
            problems.append(f"{exchange.method} {url.path}: undocumented {place} parameter {name}")
            continue
        index, schema = params[(place, name)]
        value = [_coerced(schema.get("items", {}), v) for v in value] if isinstance(value, list) else _coerced(schema, value)
        validator = _validator(_pointer("paths", template, method, "parameters", str(index), "schema"))
        problems += [f"{exchange.method} {url.path}: {name}: {e.message}" for e in validator.iter_errors(value)]
    if "requestBody" in operation:
        validator = _validator(_pointer("paths", template, method, "requestBody", "content", "application/json", "schema"))
        problems += [f"{exchange.method} {url.path}: body: {e.message}" for e in validator.iter_errors(exchange.json)]
    return problems


def response_problems(exchange, origin: str) -> list[str]:
    """What in an answer its documented schema does not allow; a `Link` must be on the origin asked."""
    url = urlsplit(exchange.target)
    template, method = _template(url.path), exchange.method.lower()
    answers = DESCRIPTION["paths"][template][method]["responses"]
    name = f"{exchange.method} {url.path} answered {exchange.status}"
    if str(exchange.status) not in answers:
        return [f"{name}: an undocumented status"]
    if "application/json" not in answers[str(exchange.status)].get("content", {}):
        return []
    validator = _validator(_pointer("paths", template, method, "responses", str(exchange.status), "content", "application/json", "schema"))
    problems = [f"{name}: {e.message} at {e.json_path}" for e in validator.iter_errors(exchange.body)]
    link = exchange.headers.get("Link", "")
    if link and not link.startswith(f"<{origin}/api/v2/"):
        problems.append(f"{name}: Link {link} is not on the origin asked, {origin}")
    return problems


def checked(transcript, origin: str) -> tuple[list, list]:
    """Each Management API exchange's request and response problems (the token and the signed
    download are not Management API operations); `origin`: the one the requests were sent to."""
    api = [x for x in transcript if urlsplit(x.target).path.startswith("/api/v2/")]
    return [p for x in api for p in request_problems(x)], [p for x in api for p in response_problems(x, origin)]


@pytest.fixture
def api(tenant):
    return Api(tenant, ALL_SCOPES)


# --- a session of every bundled job ------------------------------------------------------------------

SESSION = {  # job: the runs of it in the session
    "export-clients": [()],
    "snapshot": [()],
    "export-logs": [(), ()],  # the second from the first's checkpoint, with new events between
    "export-users": [(), ("--param", "connection=google-oauth2")],
    "tenant-checks": [(), ()],  # the second compares with the first
    "users-cleanup": [("--param", "max_actions=5"), ("--param", "max_actions=4", "--param", "apply=true")],  # dry run, apply
}
SESSION_ENV = {  # job: its settings in the session
    "users-cleanup": {"RUNNER_USERS_CLEANUP_RULES": 'unverified 1800 delete; inactive 1800 block; max_fraction = 1; '
                                                    'protect_roles = ["admins"]; protect_organizations = ["acme-corp"]'},
}
CHECK_SCOPES = ["read:log_streams", "read:custom_domains", "read:signing_keys", "read:client_credentials"]


@SQLITE_ONLY
def test_a_session_of_every_bundled_job_has_no_request_or_response_problem(runner, tenant):
    bundled = {name for name, job in registry.discover().items() if job.func.__module__.startswith("batchrunner.jobs.")}
    assert set(SESSION) == bundled, "a bundled job is missing from SESSION: add its runs"  # not the tiny test jobs another test loaded
    tenant.set_scopes(ALL_SCOPES + CHECK_SCOPES + ["update:users", "delete:users"])
    tenant.transcript = []
    for job, runs in SESSION.items():
        for args in runs:
            result = runner("run-job", job, *args, extra_env=SESSION_ENV.get(job), timeout=120)
            assert result.returncode == 0, (job, result.stderr)
            tenant.logs.add(5)
    requests_wrong, answers_wrong = checked(tenant.transcript, tenant.base_url)
    assert requests_wrong == [] and answers_wrong == []
    asked = {(x.method, _template(urlsplit(x.target).path)) for x in tenant.transcript if x.target.startswith("/api/v2/")}
    assert asked == {(method.upper(), path) for path, item in DESCRIPTION["paths"].items() for method in item}
    fields = {dict(parse_qsl(urlsplit(x.target).query)).get("fields") for x in tenant.transcript} - {None}
    assert fields == {"client_secret,signing_keys,encryption_key,client_authentication_methods", "options", "id,name",
                      ",".join(gather.CLIENT_FIELDS), "id,name,strategy,options"}


def test_the_stand_ins_answers_beyond_the_jobs_requests_hold_to_the_description_too(api):
    """The global client, totals, search paging of logs, one event, a tenant-wide export, Link from Host."""
    api.tenant.transcript = []
    for path, params in [("clients", {"include_totals": "true"}), ("clients", {}), ("logs", {"include_totals": "true", "per_page": "5"}),
                         ("client-grants", {"include_totals": "true"}), ("connections", {"per_page": "3"})]:
        assert api.get(path, **params).status_code == 200
    assert api.get(f"logs/{api.tenant.logs.held()[0]}").status_code == 200
    created = api.post("jobs/users-exports", {"format": "csv"})
    assert created.status_code == 200 and created.json()["connection"] == ""
    assert api.get(f"jobs/{created.json()['id']}").status_code == 200
    proxied = requests.get(api.url("logs"), params={"take": 3}, headers={"Authorization": f"Bearer {api.token}", "Host": "auth0.example:8443"},
                           timeout=10)
    assert proxied.links["next"]["url"].startswith("http://auth0.example:8443/api/v2/logs?take=3&from=")
    transcript = api.tenant.transcript[:-1]
    assert checked(transcript, api.tenant.base_url) == ([], [])
    assert all("length" not in x.body for x in transcript if isinstance(x.body, dict))


# --- the stand-in refuses what the description does not allow ------------------------------------------

CLIENT_FIELDS = next(p for p in DESCRIPTION["paths"]["/clients"]["get"]["parameters"] if p["name"] == "fields")["schema"]["pattern"]


@pytest.mark.parametrize("path, params, message", [
    ("clients", {"fields": "client_id,sso_disabled"},
     f"Query validation error: 'String does not match pattern {CLIENT_FIELDS}: client_id,sso_disabled' on property fields."),
    ("roles", {"per_page": "101"}, "Query validation error: 'Value 101 is greater than maximum 100' on property per_page."),
    ("roles", {"page": "first"}, "Query validation error: 'Expected type integer but found type string' on property page."),
    ("organizations", {"take": "5", "search": "acme"}, "Query validation error: 'Additional properties not allowed: search'."),
])
def test_a_query_the_description_does_not_allow_gets_auth0s_400(api, path, params, message):
    reply = api.get(path, **params)
    assert (reply.status_code, reply.json()) == (400, {"statusCode": 400, "error": "Bad Request", "message": message,
                                                       "errorCode": "invalid_query_string"})


def test_a_body_or_path_the_description_does_not_allow_gets_auth0s_400(api):
    wrong = api.post("jobs/users-exports", {"format": "json", "fields": [{"name": "email", "label": "e"}]})
    assert wrong.json() == {"statusCode": 400, "error": "Bad Request", "errorCode": "invalid_body",
                            "message": "Payload validation error: 'Additional properties not allowed: label' on property fields[0]."}
    assert api.get("jobs/job_123").json()["message"] == (
        "Path validation error: 'String does not match pattern ^job_[A-Za-z0-9]{16}$: job_123' on property id.")


# --- the part of the description kept here is the published one --------------------------------------

@pytest.mark.skipif(not any(p.exists() for p in WHOLE), reason="Auth0's whole description (../shared/auth0) is not beside the checkout")
def test_the_description_kept_is_cut_unchanged_from_auth0s():
    whole = json.loads(next(p for p in WHOLE if p.exists()).read_text(encoding="utf-8"))
    cut = runpy.run_path(str(ROOT / "scripts" / "auth0-contract"), run_name="contract")["subset"]
    assert cut(whole) == DESCRIPTION


def test_the_stand_in_checks_requests_without_a_library_the_runner_does_not_install():
    """`runner sandbox` is shipped: its checks work where jsonschema (a test extra) is not installed."""
    code = ("import sys; sys.modules['jsonschema'] = None; from batchrunner.sandbox import contract; "
            "op = contract.operation('GET', '/api/v2/connections'); "
            "print(contract.check(op, {}, [('fields', 'id,realms')], None).text()[-36:])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.stdout == "))*$: id,realms' on property fields.\n", result.stderr


def test_the_check_finds_what_the_runner_and_the_stand_in_used_to_send():
    """The session's zero is no blind spot: the old requests and answers each show a problem."""
    old = [Exchange("GET", "/api/v2/clients?fields=client_id,sso_disabled&include_fields=true&per_page=100", None, 200, {},
                    {"start": 0, "limit": 100, "length": 1, "total": 1, "clients": [{"client_id": "x"}]}),
           Exchange("GET", "/api/v2/clients?per_page=100", None, 200, {}, [{"client_id": "x", "logo_uri": None}]),
           Exchange("POST", "/api/v2/jobs/users-exports", {"format": "json"}, 201, {}, {"id": "job_1", "type": "users_export", "status": "pending"}),
           Exchange("GET", "/api/v2/logs?take=100", None, 200, {"Link": '<http://127.0.0.1:9/api/v2/logs?take=100>; rel="next"'}, [])]
    requests_wrong, answers_wrong = checked(old, "http://auth0.example")
    assert len(requests_wrong) == 1 and "'client_id,sso_disabled' does not match" in requests_wrong[0]
    assert [problem.split(":")[0] for problem in answers_wrong] == [
        "GET /api/v2/clients answered 200", "GET /api/v2/clients answered 200", "POST /api/v2/jobs/users-exports answered 201",
        "GET /api/v2/logs answered 200"]

"""export-users through the stand-in's bulk export (README, "The user export: `export-users`")."""

from __future__ import annotations

import json

import pytest

from batchrunner.outputs.atomic import neutralise
from batchrunner.sandbox.users import user
from conftest import SQLITE_ONLY
from test_export import read_export

LEADING = ["user_id", "email", "email_verified", "name", "connection", "created_at", "last_login", "logins_count", "blocked"]


@pytest.fixture
def users_tenant(tenant):
    tenant.set_scopes(["read:users", "read:connections"])
    return tenant


def expected_row(profile: dict) -> dict:
    def text(value):
        if value is None:
            return ""
        return ("true" if value else "false") if isinstance(value, bool) else neutralise(str(value))

    return {"user_id": text(profile["user_id"]), "email": text(profile["email"]),
            "email_verified": text(profile["email_verified"]), "name": text(profile["name"]),
            "connection": text(profile["identities"][0]["connection"]), "created_at": text(profile["created_at"]),
            "last_login": text(profile.get("last_login")), "logins_count": text(profile.get("logins_count")),
            "blocked": text(profile.get("blocked"))}


@SQLITE_ONLY
def test_every_user_once_with_the_documented_columns(runner, users_tenant, tmp_path):
    # 10,000 users: a gzip download of about 300 KB, more than one of the stand-in's 256 KB writes.
    users_tenant.exports.users = 10_000
    result = runner("run-job", "export-users", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    rows = read_export(tmp_path / "exports" / "users-latest.csv")
    assert list(rows[0]) == LEADING
    assert len(rows) == 10_000 and run["result"]["rows"] == 10_000
    assert rows == [expected_row(user(users_tenant.seed, i)) for i in range(10_000)]
    assert any(r["name"].startswith("'=") for r in rows) and not any(r["name"].startswith("=") for r in rows)
    assert not any(cell.startswith("'") and not cell.startswith(("'=", "'+", "'-", "'@")) for r in rows for cell in r.values())
    assert {r["last_login"] for r in rows if not r["logins_count"]} == {""}  # never logged in: empty cells
    assert {r["blocked"] for r in rows} == {"true", ""}
    assert "app_metadata" not in rows[0] and b"employee_id" not in (tmp_path / "exports" / "users-latest.csv").read_bytes()
    assert set(run["result"]) >= {"rows", "path", "latest", "job_id", "seconds"}
    created = next(r for r in users_tenant.tenant.received if r["path"] == "/api/v2/jobs/users-exports")
    assert created["json"]["format"] == "json"
    assert created["headers"]["X-Correlation-ID"] == f"runner-{run['id']}"  # Auth0's tenant logs link the job to the run
    assert users_tenant.exports.downloads and not any(d["authorization"] for d in users_tenant.exports.downloads)


@SQLITE_ONLY
def test_an_expired_link_is_signed_anew_and_metadata_comes_only_when_named(runner, users_tenant, tmp_path):
    users_tenant.exports.stale_links = 2
    extra = {"RUNNER_USERS_FIELDS": "app_metadata,user_metadata.locale"}
    result = runner("run-job", "export-users", extra_env=extra)
    assert result.returncode == 0, result.stderr
    rows = read_export(tmp_path / "exports" / "users-latest.csv")
    assert list(rows[0]) == LEADING + ["app_metadata", "user_metadata.locale"]
    assert json.loads(rows[6]["app_metadata"]) == user(users_tenant.seed, 6)["app_metadata"]
    assert rows[1]["user_metadata.locale"] == "de-DE" and rows[2]["app_metadata"] == ""
    assert [d["status"] for d in users_tenant.exports.downloads] == [403, 403, 200]
    assert not any(d["authorization"] for d in users_tenant.exports.downloads)


@SQLITE_ONLY
def test_one_connection_by_name(runner, users_tenant, tmp_path):
    result = runner("run-job", "export-users", "--param", "connection=google-oauth2")
    assert result.returncode == 0, result.stderr
    rows = read_export(tmp_path / "exports" / "users-latest.csv")
    assert rows and {r["connection"] for r in rows} == {"google-oauth2"}
    missing = runner("run-job", "export-users", "--param", "connection=nope")
    assert missing.returncode == 1 and "no connection named 'nope'" in missing.stderr


@SQLITE_ONLY
@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
def test_a_job_auth0_ends_fails_the_run_with_its_details_and_no_file(runner, users_tenant, tmp_path, outcome):
    users_tenant.exports.outcome = outcome
    result = runner("run-job", "export-users")
    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"{outcome}: {users_tenant.exports.status_details}")
    assert not (tmp_path / "exports").exists() or not list((tmp_path / "exports").glob("users-*"))


@SQLITE_ONLY
def test_a_plan_without_bulk_export_fails_with_auth0s_words(runner, users_tenant, tmp_path):
    from batchrunner.sandbox.exports import PLAN_REFUSAL

    users_tenant.exports.bulk_export_on_plan = False
    result = runner("run-job", "export-users")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"runner: export-users failed (run 1): POST /api/v2/jobs/users-exports failed: HTTP 403 {PLAN_REFUSAL}")


@SQLITE_ONLY
def test_a_post_that_times_out_is_not_sent_again(env, users_tenant, monkeypatch):
    """A retry of `POST jobs/users-exports` that Auth0 received but did not answer in time would start
    a second export in the tenant."""
    from batchrunner.auth0 import api
    from batchrunner.config import load_settings
    from batchrunner.runs.execute import RunRequest, execute
    from batchrunner.runs.registry import discover
    from batchrunner.store.database import open_database
    from conftest import wait_for

    monkeypatch.setattr(api, "TIMEOUT", (5.0, 0.3))  # 30 s in earnest; Auth0's answer comes after 1 s
    users_tenant.tenant.latency = 1.0
    settings = load_settings(env)
    job = discover(settings.job_paths)["export-users"]
    outcome = execute(RunRequest(job), settings, open_database(settings.database_url))
    assert (outcome.status.value, outcome.error) == ("failed", (
        "POST /api/v2/jobs/users-exports timed out waiting for Auth0's answer; not sent again, "
        "since Auth0 may have acted on it (a second export, say); run again later"))
    posts = lambda: [r for r in users_tenant.tenant.received if r["path"] == "/api/v2/jobs/users-exports"]
    wait_for(lambda: len(posts()) >= 1)
    assert len(posts()) == 1 and len(users_tenant.exports.jobs) == 1


@SQLITE_ONLY
@pytest.mark.parametrize("status, retried", [(502, False), (504, False), (503, True), (500, True)])
def test_a_gateways_502_or_504_to_the_post_is_not_sent_again(runner, users_tenant, status, retried):
    """They were retried as any 5xx: a gateway's answer in Auth0's place says nothing of whether
    Auth0 started the export, and a retry may start a second one."""
    users_tenant.tenant.fail_next("/api/v2/jobs/users-exports", [status])
    result = runner("run-job", "export-users")
    posts = [r for r in users_tenant.tenant.received if r["path"] == "/api/v2/jobs/users-exports"]
    if retried:
        assert result.returncode == 0, result.stderr
        assert len(posts) == 2
    else:
        assert result.returncode == 1
        assert result.stderr.splitlines()[-1] == (
            f"runner: export-users failed (run 1): POST /api/v2/jobs/users-exports answered HTTP {status}, a gateway's "
            "answer in place of Auth0's; not sent again, since Auth0 may have acted on it (a second export, say); run again later")
        assert len(posts) == 1

"""Several tenants (README, "Several tenants"): one runner, one database, each tenant's runs, state and
outputs its own; one tenant's bad secret fails its own run only; an installation of the release
before goes on in place as the tenant `default`."""

from __future__ import annotations

import json
import os
import textwrap

import pytest
from sqlalchemy import text

from batchrunner.sandbox import Sandbox
from batchrunner.store.database import alembic_config, open_database
from test_export import read_export


@pytest.fixture
def three():
    """Three stand-in tenants of their own, each with its own applications (seed) and credentials."""
    tenants = {name: Sandbox(clients=clients, seed=seed).start() for name, clients, seed in
               (("prod", 3, 11), ("staging", 4, 12), ("dev", 5, 13))}
    yield tenants
    for sandbox in tenants.values():
        sandbox.stop()


def tenants_file(tmp_path, sandboxes: dict, secrets: dict | None = None) -> dict:
    """A tenants file naming each stand-in, its secret in a file of its own (mode 0600)."""
    parts = []
    for name, sandbox in sandboxes.items():
        secret = tmp_path / f"{name}.secret"
        secret.write_text((secrets or {}).get(name, sandbox.client_secret) + "\n")
        os.chmod(secret, 0o600)
        parts.append(f'[tenants.{name}]\ndomain = "{sandbox.base_url}"\nclient_id = "{sandbox.client_id}"\n'
                     f'client_secret_file = "{secret}"\n')
    path = tmp_path / "tenants.toml"
    path.write_text("\n".join(parts))
    return {"RUNNER_TENANTS_FILE": str(path)}


def ids_in(path) -> list[str]:
    return [row["client_id"] for row in read_export(path)]


def test_three_tenants_exports_each_hold_only_their_own(local_runner, three, tmp_path, database_url):
    env = tenants_file(tmp_path, three)
    result = local_runner("run-job", "export-clients", "--tenant", "all", extra_env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" (run ")[0] for line in lines] == [f"export-clients for {name} succeeded" for name in three]
    exports = tmp_path / "exports"
    for name, sandbox in three.items():
        expected = [sandbox.tenant.application(i)["client_id"] for i in range(sandbox.tenant.clients)]
        assert ids_in(exports / name / "clients-latest.csv") == expected
    assert not (exports / "clients-latest.csv").exists()  # nothing at the top: that is the tenant default's
    history = json.loads(local_runner("history", "--json", extra_env=env).stdout)
    assert sorted((r["tenant"], r["status"]) for r in history) == [(n, "succeeded") for n in sorted(three)]
    only = json.loads(local_runner("history", "--json", "--tenant", "dev", extra_env=env).stdout)
    assert [r["tenant"] for r in only] == ["dev"]


def test_a_job_several_tenants_run_needs_tenant(local_runner, three, tmp_path):
    env = tenants_file(tmp_path, three)
    result = local_runner("run-job", "export-clients", extra_env=env)
    assert result.returncode == 2
    assert result.stderr == ("runner: export-clients runs for several tenants (prod, staging, dev); "
                             "give --tenant NAME, or --tenant all for each in turn\n")
    result = local_runner("run-job", "export-clients", "--tenant", "stage", extra_env=env)
    assert result.returncode == 2
    assert result.stderr == "runner: unknown tenant 'stage'; the tenants: prod, staging, dev (see RUNNER_TENANTS_FILE)\n"


def test_one_tenant_with_a_wrong_secret_fails_its_own_run_only(local_runner, three, tmp_path, database_url):
    env = tenants_file(tmp_path, three, secrets={"staging": "not-the-secret"})
    result = local_runner("run-job", "export-clients", "--tenant", "all", extra_env=env)
    assert result.returncode == 1
    assert [line.split(" (run ")[0] for line in result.stdout.splitlines()] == [
        "export-clients for prod succeeded", "export-clients for dev succeeded"]
    failed = [line for line in result.stderr.splitlines() if line.startswith("runner: export-clients for staging failed")]
    assert failed == ["runner: export-clients for staging failed (run 2): Auth0 refused the token request (HTTP 401 access_denied: "
                      "Unauthorized); check the client_id, the client secret (were they rotated?) and the domain of tenant staging "
                      "in RUNNER_TENANTS_FILE"], result.stderr
    runs = json.loads(local_runner("history", "--json", "--tenant", "staging", extra_env=env).stdout)
    assert [(r["tenant"], r["status"]) for r in runs] == [("staging", "failed")]
    assert "\n" not in runs[0]["error"] and "not-the-secret" not in runs[0]["error"]
    assert (tmp_path / "exports" / "dev" / "clients-latest.csv").exists()


def test_a_missing_secret_file_stops_only_its_own_tenant(local_runner, three, tmp_path):
    env = tenants_file(tmp_path, three)
    (tmp_path / "staging.secret").unlink()
    assert local_runner("run-job", "export-clients", "--tenant", "prod", extra_env=env).returncode == 0
    result = local_runner("run-job", "export-clients", "--tenant", "all", extra_env=env)
    assert result.returncode == 2
    assert f"runner: export-clients for staging: RUNNER_TENANTS_FILE tenant staging: client_secret_file {tmp_path / 'staging.secret'}: " \
           "No such file or directory; give the path of a file holding the secret\n" in result.stderr
    assert "export-clients for dev succeeded" in result.stdout


def test_a_malformed_tenants_file_is_one_line(local_runner, tmp_path):
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.prod]\ndomain = "acme.eu.auth0.com"\nclient_id = \n')
    result = local_runner("history", extra_env={"RUNNER_TENANTS_FILE": str(path)})
    assert result.returncode == 2
    assert result.stderr == f"runner: RUNNER_TENANTS_FILE: {path} is not valid TOML: Invalid value (at line 3, column 13)\n"


def test_a_literal_secret_in_a_file_others_may_read_is_refused(local_runner, tmp_path):
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.prod]\ndomain = "acme.eu.auth0.com"\nclient_id = "x"\nclient_secret = "s3cret"\n')
    os.chmod(path, 0o644)
    result = local_runner("history", "--tenant", "prod", extra_env={"RUNNER_TENANTS_FILE": str(path)})
    assert result.returncode == 2
    assert result.stderr == (f"runner: RUNNER_TENANTS_FILE: {path}, tenant prod: a client_secret written in {path} that others "
                             f"may read; use client_secret_file or client_secret_env, or chmod 600 {path}\n")
    assert "s3cret" not in result.stderr


def test_each_tenant_has_its_own_log_archive_and_a_changed_domain_is_refused(local_runner, three, tmp_path, database_url):
    env = tenants_file(tmp_path, three)
    for sandbox in three.values():
        sandbox.set_scopes(["read:logs"])
    result = local_runner("run-job", "export-logs", "--tenant", "all", extra_env=env)
    assert result.returncode == 0, result.stderr
    for name in three:
        assert (tmp_path / "exports" / name / "logs" / ".archive.json").exists()
    # prod's name now points at dev's domain: prod's archive (database and folder) is of another tenant.
    moved = {**three, "prod": three["dev"]}
    env = tenants_file(tmp_path, moved)
    result = local_runner("run-job", "export-logs", "--tenant", "prod", extra_env=env)
    assert result.returncode == 1
    prod, dev = three["prod"].base_url, three["dev"].base_url
    assert result.stderr.splitlines()[-1] == (
        f"runner: export-logs for prod failed (run 4): RUNNER_TENANTS_FILE: the log archive of tenant prod in the database is of "
        f"{prod}, not of {dev}; set the domain of tenant prod back, or give {dev} a tenant of another name")
    assert local_runner("run-job", "export-logs", "--tenant", "dev", extra_env=env).returncode == 0  # the others go on


def test_token_commands_name_each_tenant(local_runner, three, tmp_path):
    env = tenants_file(tmp_path, three)
    assert local_runner("run-job", "export-clients", "--tenant", "all", extra_env=env).returncode == 0
    status = json.loads(local_runner("token", "status", "--json", extra_env=env).stdout)
    assert sorted((r["tenant"], r["domain"]) for r in status) == sorted((n, s.base_url) for n, s in three.items())
    issued = json.loads(local_runner("token", "issuances", "--json", "--tenant", "dev", extra_env=env).stdout)
    assert [(r["tenant"], r["requested_by"]) for r in issued] == [("dev", "run 3 (export-clients)")]
    table = local_runner("token", "status", extra_env=env).stdout
    assert table.splitlines()[0].split()[:2] == ["TENANT", "AUDIENCE"]
    result = local_runner("token", "print", extra_env=env)
    assert (result.returncode, result.stderr) == (2, "runner: there are several tenants (prod, staging, dev); give --tenant NAME\n")
    token = local_runner("token", "print", "--tenant", "staging", extra_env=env)
    assert token.returncode == 0 and token.stdout.count(".") == 2  # a JWT, from staging's cache


def test_serve_schedules_and_claims_each_job_per_tenant(local_env, three, tmp_path, database_url):
    from datetime import datetime, timezone

    from batchrunner.config import load_settings
    from batchrunner.runs.registry import discover
    from batchrunner.runs.serve import build
    from batchrunner.store.schema import RunStatus, Trigger

    env = tenants_file(tmp_path, three)
    path = tmp_path / "tenants.toml"
    path.write_text(path.read_text().replace('[tenants.prod]\n', '[tenants.prod]\njobs = ["export-clients"]\n')
                    + '\n[tenants.dev.jobs.export-clients]\nschedule = "*/5 * * * *"\n')
    settings = load_settings({**local_env, **env})
    scheduler = build(settings, open_database(database_url), discover(settings.job_paths))
    clients = {e.tenant.name: e.expression for e in scheduler.entries if e.job.name == "export-clients"}
    assert clients == {"prod": "0 2 * * *", "staging": "0 2 * * *", "dev": "*/5 * * * *"}
    assert {e.label for e in scheduler.entries if e.tenant.name == "prod"} == {"export-clients for prod"}
    due = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)
    entries = {e.tenant.name: e for e in scheduler.entries if e.job.name == "export-clients"}
    first = [scheduler._fire(e.job, Trigger.SCHEDULE, due, e.tenant) for e in entries.values()]
    assert [o.status for o in first] == [RunStatus.SUCCEEDED] * 3  # one fire time, claimed once per tenant
    again = scheduler._fire(entries["dev"].job, Trigger.SCHEDULE, due, entries["dev"].tenant)
    assert again.status is None  # dev's claim on that fire time is taken
    scheduler.pool.shutdown()


def test_an_installation_of_the_release_before_goes_on_in_place_as_default(runner, tenant, tmp_path, database_url):
    """A database and export folder the single-tenant release made (schema 0007, AUTH0_*): after the
    migration its runs are the tenant default's, its log archive goes on from its checkpoint, and its
    outputs stay at the top of the export folder."""
    from alembic import command

    tenant.set_scopes(["read:logs", "read:clients"])
    assert runner("run-job", "export-logs").returncode == 0
    assert runner("run-job", "export-clients").returncode == 0
    db = open_database(database_url)
    with db.write() as conn:  # back to the schema of the release before, rows and all
        command.downgrade(alembic_config(conn), "0007")
    with db.read() as conn:
        assert "tenant" not in conn.execute(text("SELECT * FROM runs")).keys()
    db._schema_checked = False
    tenant.logs.add(30)
    result = runner("run-job", "export-logs", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["tenant"], record["result"]["events"]) == ("default", 30)  # only the new events: the checkpoint went on
    history = json.loads(runner("history", "--json").stdout)
    assert [(r["id"], r["tenant"]) for r in history] == [(3, "default"), (2, "default"), (1, "default")]
    exports = tmp_path / "exports"
    assert (exports / "clients-latest.csv").exists() and (exports / "logs" / ".archive.json").exists()
    assert sorted(p.name for p in exports.iterdir() if p.is_dir()) == ["logs"]  # no tenant folder
    table = runner("history").stdout
    assert "TENANT" not in table  # one tenant: the table is as before


def test_a_tenants_success_after_anothers_failure_is_no_recovery(local_runner, three, tmp_path):
    from test_pings import Sink

    sink = Sink()
    try:
        env = {**tenants_file(tmp_path, three, secrets={"prod": "not-the-secret"}), "RUNNER_NOTIFY_URL": sink.url + "/hook"}
        assert local_runner("run-job", "export-clients", "--tenant", "prod", extra_env=env).returncode == 1
        assert local_runner("run-job", "export-clients", "--tenant", "dev", extra_env=env).returncode == 0
        assert [json.loads(body)["event"] for _, body in sink.received] == ["failed"]  # dev never failed: nothing recovered
    finally:
        sink.close()


def test_check_judges_each_job_per_tenant(local_runner, three, tmp_path):
    env = tenants_file(tmp_path, three, secrets={"prod": "not-the-secret"})
    assert local_runner("run-job", "export-clients", "--tenant", "all", extra_env=env).returncode == 1
    result = local_runner("check", "--json", extra_env=env)
    assert result.returncode == 1
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["job"], problem["tenant"], problem["kind"]) == ("export-clients", "prod", "failed")
    assert problem["message"].startswith("export-clients for prod: the latest run (1, started ")
    assert local_runner("check", "--tenant", "dev", extra_env=env).returncode == 0


def test_diff_compares_a_tenants_own_snapshots(local_runner, three, tmp_path):
    env = tenants_file(tmp_path, three)
    for sandbox in three.values():
        sandbox.set_scopes(["read:roles"])
    for _ in range(2):
        result = local_runner("run-job", "snapshot", "--tenant", "dev", "--param", "resources=roles", extra_env=env)
        assert result.returncode == 0, result.stderr
        if _ == 0:  # taken earlier, as a nightly series is: the second run may fall in the same second
            root = tmp_path / "exports" / "dev" / "snapshots"
            (root / os.readlink(root / "latest")).rename(root / "20261124T023000Z")
            (root / "latest").unlink()
            (root / "latest").symlink_to("20261124T023000Z")
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["dev"]
    assert local_runner("diff", "--tenant", "dev", extra_env=env).returncode == 0  # two snapshots of dev, no change
    result = local_runner("diff", extra_env=env)
    assert (result.returncode, result.stderr) == (2, "runner: there are several tenants (prod, staging, dev); give --tenant NAME\n")


def test_prune_keeps_each_tenants_latest_run_and_prunes_each_tenants_folder(local_runner, tmp_path, database_url):
    from datetime import timedelta

    from sqlalchemy import insert, select

    from batchrunner.store.schema import pruned_runs, runs
    from test_prune import OLD, _stamp

    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.default]\ndomain = "a.auth0.com"\nclient_id = "a"\n\n[tenants.prod]\ndomain = "b.auth0.com"\nclient_id = "b"\n')
    db = open_database(database_url)
    with db.write() as conn:
        for tenant, status, days in (("default", "failed", 0), ("prod", "failed", 0), ("prod", "failed", 1)):
            conn.execute(insert(runs).values(job="export-clients", tenant=tenant, trigger="manual", status=status,
                                             started_at=OLD + timedelta(days=days), host="h", pid=1))
    prod = tmp_path / "exports" / "prod"
    prod.mkdir(parents=True)
    for when in (OLD, OLD + timedelta(days=1)):
        (prod / f"clients-{_stamp(when)}.csv").write_text("x")
    result = local_runner("prune", extra_env={"RUNNER_TENANTS_FILE": str(path)})
    assert result.returncode == 0, result.stderr
    with db.read() as conn:
        left = sorted((r.tenant, r.started_at.day) for r in conn.execute(select(runs)))
        counted = [(r.tenant, r.job, r.status, r.count) for r in conn.execute(select(pruned_runs))]
    assert left == [("default", OLD.day), ("prod", (OLD + timedelta(days=1)).day)]  # each tenant's latest stays
    assert counted == [("prod", "export-clients", "failed", 1)]
    assert sorted(p.name for p in prod.iterdir()) == [f"clients-{_stamp(OLD + timedelta(days=1))}.csv"]


def test_auth0_variables_beside_a_tenants_file_are_named_unused(runner, tmp_path):
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.prod]\ndomain = "b.auth0.com"\nclient_id = "b"\n')
    result = runner("history", extra_env={"RUNNER_TENANTS_FILE": str(path)})
    assert result.returncode == 0
    assert result.stderr == ("runner: warning: AUTH0_DOMAIN is set beside RUNNER_TENANTS_FILE and not used: the tenants file names "
                             "every tenant (name one default there to keep the AUTH0_* tenant's runs and exports); unset AUTH0_DOMAIN\n")


def test_a_scheduled_run_of_a_tenant_whose_secret_is_missing_is_recorded_failed(local_env, three, tmp_path, database_url):
    from datetime import datetime, timezone

    from batchrunner.config import load_settings
    from batchrunner.runs.records import history
    from batchrunner.runs.registry import discover
    from batchrunner.runs.serve import build
    from batchrunner.store.schema import RunStatus, Trigger

    env = tenants_file(tmp_path, three)
    (tmp_path / "staging.secret").unlink()
    settings = load_settings({**local_env, **env})
    scheduler = build(settings, open_database(database_url), discover(settings.job_paths))
    due = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)
    entries = [e for e in scheduler.entries if e.job.name == "export-clients"]
    outcomes = {e.tenant.name: scheduler._fire(e.job, Trigger.SCHEDULE, due, e.tenant).status for e in entries}
    scheduler.pool.shutdown()
    assert outcomes == {"prod": RunStatus.SUCCEEDED, "staging": RunStatus.FAILED, "dev": RunStatus.SUCCEEDED}
    [run] = history(scheduler.db, tenant="staging")
    assert run["error"] == (f"RUNNER_TENANTS_FILE tenant staging: client_secret_file {tmp_path / 'staging.secret'}: "
                            "No such file or directory; give the path of a file holding the secret")


def test_a_default_named_in_the_file_takes_its_tables_over_the_variables(local_env, tmp_path, database_url):
    """Its jobs' tables were checked, then ignored: RUNNER_*_<JOB> (or the job's own) applied instead."""
    from batchrunner.config import load_settings
    from batchrunner.runs import params
    from batchrunner.runs.execute import _timeout
    from batchrunner.runs.registry import discover
    from batchrunner.runs.serve import build

    secret = tmp_path / "a.secret"
    secret.write_text("s\n")
    os.chmod(secret, 0o600)
    path = tmp_path / "tenants.toml"
    path.write_text("".join(f'[tenants.{name}]\ndomain = "{name}.auth0.com"\nclient_id = "c"\nclient_secret_file = "{secret}"\n\n'
                            for name in ("default", "prod"))
                    + '[tenants.default.jobs.export-clients]\nschedule = "*/5 * * * *"\ntimeout = 60\n\n'
                    + '[tenants.default.jobs.export-users]\nparams = { connection = "from-the-table" }\n\n'
                    + '[tenants.default.jobs.tenant-checks]\nparams = { warning_days = "20" }\n')
    variables = {"RUNNER_SCHEDULE_EXPORT_CLIENTS": "0 9 * * *", "RUNNER_SCHEDULE_EXPORT_LOGS": "0 8 * * *",
                 "RUNNER_TIMEOUT_EXPORT_CLIENTS": "30", "RUNNER_TIMEOUT_EXPORT_LOGS": "40",
                 "RUNNER_PARAMS_EXPORT_USERS": "connection=from-the-variable",
                 "RUNNER_PARAMS_TENANT_CHECKS": "warning_days=10 critical_days=3"}
    settings = load_settings({**local_env, "RUNNER_TENANTS_FILE": str(path), **variables})
    jobs = discover(settings.job_paths)
    scheduler = build(settings, open_database(database_url), jobs)
    scheduled = {(e.tenant.name, e.job.name): e.expression for e in scheduler.entries}
    scheduler.pool.shutdown()
    assert scheduled["default", "export-clients"] == "*/5 * * * *"  # the table, over the variable
    assert scheduled["default", "export-logs"] == "0 8 * * *"  # no table: the variable
    assert scheduled["prod", "export-logs"] == "*/15 * * * *"  # the variables are default's alone
    default = next(e.tenant for e in scheduler.entries if e.tenant.name == "default")
    assert _timeout(jobs["export-clients"], default, settings) == 60
    assert _timeout(jobs["export-logs"], default, settings) == 40
    assert params.for_tenant(jobs["export-users"], settings.env, default) == {"connection": "from-the-table"}
    assert params.for_tenant(jobs["tenant-checks"], settings.env, default) == {"warning_days": "20", "critical_days": "3"}

"""What names the tenant, with several (README, "Several tenants"): metrics' `tenant` label, pings'
`{tenant}`, notifications, log lines, `runner tenants`, the stand-in's `--tenants N`."""

from __future__ import annotations

import json

import pytest

from batchrunner.sandbox import Sandbox
from test_metrics import samples
from test_several_tenants import tenants_file


@pytest.fixture
def two():
    """Two stand-in tenants of their own (seeds, credentials)."""
    tenants = {name: Sandbox(clients=clients, seed=seed).start() for name, clients, seed in (("prod", 3, 21), ("dev", 4, 22))}
    yield tenants
    for sandbox in tenants.values():
        sandbox.stop()


def test_metrics_carry_the_tenant_label_and_count_each_tenants_runs(local_runner, two, tmp_path):
    env = tenants_file(tmp_path, two, secrets={"dev": "not-the-secret"})
    assert local_runner("run-job", "export-clients", "--tenant", "all", extra_env=env).returncode == 1
    assert local_runner("run-job", "export-clients", "--tenant", "prod", extra_env=env).returncode == 0
    result = local_runner("metrics", extra_env=env)
    assert result.returncode == 0, result.stderr
    got = samples(result.stdout)
    total = lambda tenant, status: got[("runner_job_runs_total", (("job_name", "export-clients"), ("status", status), ("tenant", tenant)))]
    assert (total("prod", "succeeded"), total("prod", "failed"), total("dev", "succeeded"), total("dev", "failed")) == (2, 0, 0, 1)
    newest = lambda tenant: got[("runner_job_last_run_succeeded", (("job_name", "export-clients"), ("tenant", tenant)))]
    assert (newest("prod"), newest("dev")) == (1, 0)
    assert ("runner_job_last_success_timestamp_seconds", (("job_name", "export-clients"), ("tenant", "prod"))) in got
    assert ("runner_job_last_success_timestamp_seconds", (("job_name", "export-clients"), ("tenant", "dev"))) not in got
    # Each tenant's scheduled jobs have series from the start, and no `default` is invented beside a tenants file.
    assert {labels for name, labels in got if name == "runner_job_running"} == {
        (("job_name", job), ("tenant", tenant)) for job in ("export-clients", "export-logs", "export-users", "snapshot", "tenant-checks", "users-cleanup")
        for tenant in ("prod", "dev")}
    assert 'runner_job_runs_total{job_name="export-clients",status="failed",tenant="dev"} 1.0' in result.stdout


def test_pings_name_the_tenant_and_notifications_name_it_too(local_runner, two, tmp_path):
    from test_pings import Sink

    sink = Sink()
    try:
        env = {**tenants_file(tmp_path, two, secrets={"dev": "not-the-secret"}),
               "RUNNER_PING_URL": sink.url + "/ping/{tenant}-{job}", "RUNNER_NOTIFY_URL": sink.url + "/hook"}
        assert local_runner("run-job", "export-clients", "--tenant", "all", extra_env=env).returncode == 1
    finally:
        sink.close()
    paths = [path.split("?")[0] for path, _ in sink.received]
    assert paths == ["/ping/prod-export-clients/start", "/ping/prod-export-clients",
                     "/ping/dev-export-clients/start", "/ping/dev-export-clients/fail", "/hook"]
    message = json.loads(sink.received[-1][1])
    assert (message["event"], message["job"], message["tenant"], message["run"]) == ("failed", "export-clients", "dev", 2)
    assert message["text"].startswith("export-clients for dev failed (run 2 on ")


def test_log_lines_of_a_named_tenants_run_carry_the_tenant(local_runner, two, tmp_path):
    env = tenants_file(tmp_path, two)
    text = local_runner("run-job", "export-clients", "--tenant", "dev", extra_env=env)
    assert text.returncode == 0, text.stderr
    assert " INFO    job=export-clients run=1 tenant=dev started (manual) for tenant dev\n" in text.stderr
    lines = local_runner("run-job", "export-clients", "--tenant", "prod", extra_env={**env, "RUNNER_LOG_FORMAT": "json"})
    started = [json.loads(line) for line in lines.stderr.splitlines() if '"started (manual)' in line]
    assert [(r["job"], r["run"], r["tenant"]) for r in started] == [("export-clients", 2, "prod")]


def test_the_default_tenants_log_lines_read_as_before_and_json_names_it(runner):
    text = runner("run-job", "export-clients")
    assert " INFO    job=export-clients run=1 started (manual)\n" in text.stderr
    lines = runner("run-job", "export-clients", extra_env={"RUNNER_LOG_FORMAT": "json"})
    started = [json.loads(line) for line in lines.stderr.splitlines() if '"started (manual)' in line]
    assert [r["tenant"] for r in started] == ["default"]


def test_a_jobs_own_notification_names_its_tenant(local_runner, two, tmp_path):
    from conftest import QUIET
    from test_pings import Sink

    sink = Sink()
    try:
        env = {**QUIET, **tenants_file(tmp_path, two), "RUNNER_NOTIFY_URL": sink.url + "/hook"}
        assert local_runner("run-job", "drifty", "--tenant", "dev", extra_env=env).returncode == 0
    finally:
        sink.close()
    [(_, body)] = sink.received
    message = json.loads(body)
    assert (message["text"], message["tenant"], message["event"]) == ("dev: drifty: 1 role added", "dev", "drift")


def test_tenants_lists_each_tenant_its_jobs_token_and_last_run(local_runner, two, tmp_path):
    env = tenants_file(tmp_path, two)
    path = tmp_path / "tenants.toml"
    path.write_text(path.read_text() + 'jobs = ["export-clients", "snapshot"]\n')  # the last tenant's, dev's
    before = json.loads(local_runner("tenants", "--json", extra_env=env).stdout)
    assert [(t["name"], t["token"], t["last_run"]) for t in before] == [("prod", None, None), ("dev", None, None)]
    assert local_runner("run-job", "export-clients", "--tenant", "dev", extra_env=env).returncode == 0
    result = local_runner("tenants", "--json", extra_env=env)
    assert result.returncode == 0, result.stderr
    prod, dev = json.loads(result.stdout)
    assert set(dev) == {"name", "domain", "client_id", "jobs", "token", "last_run"}
    assert (dev["name"], dev["domain"], dev["client_id"]) == ("dev", two["dev"].base_url, two["dev"].client_id)
    assert (prod["jobs"], dev["jobs"]) == (["export-clients", "export-logs", "export-users", "snapshot", "tenant-checks", "users-cleanup"], ["export-clients", "snapshot"])
    assert dev["token"]["valid"] is True and dev["token"]["expires_at"].endswith("Z") and prod["token"] is None
    assert (dev["last_run"]["id"], dev["last_run"]["job"], dev["last_run"]["status"]) == (1, "export-clients", "succeeded")
    assert two["dev"].client_secret not in result.stdout
    text = local_runner("tenants", extra_env=env).stdout.splitlines()
    assert text[0].split() == ["TENANT", "DOMAIN", "CLIENT", "ID", "JOBS", "TOKEN", "LAST", "RUN"]
    assert text[3].startswith("dev ") and "export-clients, snapshot" in text[3] and "valid until " in text[3]
    assert text[3].endswith("(run 1)")


def test_job_variables_beside_a_tenants_file_are_named_unless_a_tenant_is_default(local_runner, tmp_path):
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.prod]\ndomain = "b.auth0.com"\nclient_id = "b"\n')
    env = {"RUNNER_TENANTS_FILE": str(path), "RUNNER_SCHEDULE_EXPORT_CLIENTS": "off", "RUNNER_TIMEOUT_SNAPSHOT": "60"}
    result = local_runner("jobs", extra_env=env)
    assert result.returncode == 0
    assert result.stderr.splitlines()[:2] == [
        f"runner: warning: {name} is set beside RUNNER_TENANTS_FILE and applies to no tenant (none is named default); "
        "per-tenant settings go in the tenants file's [tenants.NAME.jobs.JOB]" for name in ("RUNNER_SCHEDULE_EXPORT_CLIENTS", "RUNNER_TIMEOUT_SNAPSHOT")]
    path.write_text(path.read_text() + '\n[tenants.default]\ndomain = "a.auth0.com"\nclient_id = "a"\n')
    result = local_runner("jobs", "--json", extra_env=env)
    assert result.returncode == 0 and "applies to no tenant" not in result.stderr
    off = [r for r in json.loads(result.stdout) if r["name"] == "export-clients"]
    assert [(r["tenant"], r["schedule"]) for r in off] == [("prod", "0 2 * * *"), ("default", "off")]


def test_sandbox_tenants_2_prints_a_tenants_file_a_run_uses(local_runner, tmp_path):
    import os
    import stat
    from pathlib import Path

    from conftest import start_runner, stop
    from test_several_tenants import ids_in

    proc = start_runner({**os.environ}, tmp_path, "sandbox", "--tenants", "2", "--port", "0", "--clients", "3", "--users", "50",
                        "--big-role-members", "10", "--big-org-members", "10", "--log-events", "10", "--export-users", "10")
    lines = []
    for line in iter(proc.stdout.readline, ""):
        lines.append(line.rstrip("\n"))
        if line.startswith("export "):
            break
    assert lines[0] == "# 2 stand-in tenants with 3 applications each (Ctrl-C to stop), each its own data, credentials and rate limit:"
    [export] = [line for line in lines if line.startswith("export ")]
    name, path = export.removeprefix("export ").split("=", 1)
    assert name == "RUNNER_TENANTS_FILE"
    folder = Path(path).parent
    assert sorted(p.name for p in folder.iterdir()) == ["tenant-1.secret", "tenant-2.secret", "tenants.toml"]
    assert {stat.S_IMODE((folder / f"tenant-{i}.secret").stat().st_mode) for i in (1, 2)} == {0o600}
    assert "[tenants.tenant-2]" in lines and not any("SANDBOXSECRET" in line for line in lines)  # secrets by reference only
    result = local_runner("run-job", "export-clients", "--tenant", "all", extra_env={name: path})
    assert result.returncode == 0, result.stderr
    one, two = (ids_in(tmp_path / "exports" / f"tenant-{i}" / "clients-latest.csv") for i in (1, 2))
    assert len(one) == len(two) == 3 and not set(one) & set(two)  # each its own data
    tenants = json.loads(local_runner("tenants", "--json", extra_env={name: path}).stdout)
    assert len({t["client_id"] for t in tenants}) == 2 and len({t["domain"] for t in tenants}) == 2  # and credentials
    code, err = stop(proc)
    assert code == 0 and err == ""
    assert not folder.exists()  # the secrets go with the stand-ins

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
        (("job_name", job), ("tenant", tenant)) for job in ("export-clients", "export-logs", "export-users", "snapshot")
        for tenant in ("prod", "dev")}
    assert 'runner_job_runs_total{job_name="export-clients",status="failed",tenant="dev"} 1.0' in result.stdout

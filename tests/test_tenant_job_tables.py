"""A job's table in the tenants file (`[tenants.NAME.jobs.JOB]`, README "Several tenants"): each job
judges its own keys when the file is read, so a malformed rule or an unknown key is one line naming
the file, the table and the key, exit 2, before anything is recorded, and `serve` refuses to start."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

from conftest import SQLITE_ONLY

PROD = """\
[tenants.prod]
domain = "acme.eu.auth0.com"
client_id = "prod-client"
client_secret_file = "{secret}"
"""


def tenants_file(tmp_path, tables: str) -> tuple[dict, str]:
    """A tenant prod (its secret in a file of its own) with the job tables given; the file's path."""
    secret = tmp_path / "prod.secret"
    secret.write_text("s3cret-prod\n")
    os.chmod(secret, 0o600)
    path = tmp_path / "tenants.toml"
    path.write_text(PROD.format(secret=secret) + "\n" + textwrap.dedent(tables))
    return {"RUNNER_TENANTS_FILE": str(path)}, f"runner: RUNNER_TENANTS_FILE: {path}, "


def edit(env, old: str, new: str) -> None:
    """The tenants file with `old` made `new`, as its owner would mend it."""
    path = Path(env["RUNNER_TENANTS_FILE"])
    path.write_text(path.read_text().replace(old, new))


CLEANUP_KEYS = ("schedule, timeout, params, rules, connections, protect_roles, protect_organizations, "
                "protect_app_metadata, max_actions, max_fraction, apply")


def test_runner_tenants_names_an_unknown_key_then_a_rule_that_is_no_list(local_runner, tmp_path):
    env, start = tenants_file(tmp_path, """\
        [tenants.prod.jobs.users-cleanup]
        rules = "inactive 365 blok"
        bogus_key = 3
        """)
    result = local_runner("tenants", extra_env=env)
    assert result.returncode == 2
    assert result.stderr == f"{start}[tenants.prod.jobs.users-cleanup]: unknown key 'bogus_key'; the keys of this table: {CLEANUP_KEYS}\n"
    edit(env, "bogus_key = 3\n", "")
    result = local_runner("tenants", extra_env=env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f'{start}[tenants.prod.jobs.users-cleanup]: rules is a list of rules, '
                             f'e.g. rules = ["inactive 365 block", "unverified 30 delete"]\n')


@SQLITE_ONLY
def test_run_job_refuses_a_malformed_rule_before_a_run_is_recorded(local_runner, tmp_path):
    env, start = tenants_file(tmp_path, """\
        [tenants.prod.jobs.users-cleanup]
        rules = ["inactive 365 blok"]
        """)
    result = local_runner("run-job", "users-cleanup", "--tenant", "prod", extra_env=env)
    assert result.returncode == 2
    assert result.stderr == f"{start}[tenants.prod.jobs.users-cleanup]: rules: 'inactive 365 blok': inactive takes block or delete, not blok\n"
    assert json.loads(local_runner("history", "--json", extra_env=env).stdout) == []  # nothing recorded
    assert local_runner("db", "upgrade", extra_env=env).returncode == 0
    checked = local_runner("check", extra_env=env)
    assert (checked.returncode, checked.stderr) == (2, result.stderr)


def test_a_params_value_the_job_refuses_is_named_with_its_table(local_runner, tmp_path):
    env, start = tenants_file(tmp_path, """\
        [tenants.prod.jobs.users-cleanup]
        rules = ["inactive 365 block"]
        params = { apply = "yes" }

        [tenants.prod.jobs.tenant-checks]
        params = { warning_days = "a month" }
        """)
    result = local_runner("tenants", extra_env=env)
    assert (result.returncode, result.stderr) == (2, f"{start}[tenants.prod.jobs.users-cleanup]: params apply: 'yes' is neither true nor false\n")
    edit(env, 'params = { apply = "yes" }', 'params = { apply = "false" }')
    result = local_runner("tenants", extra_env=env)
    assert result.returncode == 2
    assert result.stderr == (f"{start}[tenants.prod.jobs.tenant-checks]: params: warning_days='a month' is not a number of days "
                             f"from 0 to 3650, e.g. warning_days=30\n")


def test_a_job_that_reads_no_keys_of_its_own_names_the_keys_it_takes(local_runner, tmp_path):
    env, start = tenants_file(tmp_path, """\
        [tenants.prod.jobs.export-clients]
        schedule = "0 3 * * *"
        bogus_key = 3
        """)
    result = local_runner("tenants", extra_env=env)
    assert result.returncode == 2
    assert result.stderr == f"{start}[tenants.prod.jobs.export-clients]: unknown key 'bogus_key'; the keys of this table: schedule, timeout, params\n"


def test_serve_refuses_to_start_as_for_a_missing_domain(local_runner, tmp_path):
    env, start = tenants_file(tmp_path, """\
        [tenants.prod.jobs.users-cleanup]
        rules = ["inactive 365 blok"]
        """)
    result = local_runner("serve", extra_env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (f"{start}[tenants.prod.jobs.users-cleanup]: rules: 'inactive 365 blok': "
                                              f"inactive takes block or delete, not blok")
    edit(env, 'domain = "acme.eu.auth0.com"\n', "")
    result = local_runner("serve", extra_env=env, timeout=60)
    assert result.returncode == 2 and result.stderr.splitlines()[-1] == f"{start}tenant prod: domain is missing; give it as a string"


REGION_JOB = '''
from batchrunner.jobkit import ConfigError, job


def check_region(settings, where):
    if settings.extra.get("region") not in (None, "eu", "us"):
        raise ConfigError(where, f"region {settings.extra['region']!r} is neither eu nor us")


@job("region-report", schedule="off", description="Reads its own key.", needs_api=False,
     table_keys=("region",), check_table=check_region)
def region_report(ctx):
    return {"region": ctx.tenant.settings_for("region-report").extra.get("region", "eu")}


@job("quiet-report", schedule="off", description="Reads no key of its own.", needs_api=False)
def quiet_report(ctx):
    return {"extra": sorted(ctx.tenant.settings_for("quiet-report").extra)}
'''


@SQLITE_ONLY
def test_a_job_of_ones_own_declares_the_keys_it_reads_and_checks_them(local_runner, tmp_path):
    jobs = tmp_path / "region_jobs.py"
    jobs.write_text(REGION_JOB)
    env, start = tenants_file(tmp_path, """\
        [tenants.prod.jobs.region-report]
        region = "us"
        """)
    env["RUNNER_JOBS"] = str(jobs)
    result = local_runner("run-job", "region-report", "--tenant", "prod", "--json", extra_env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"] == {"region": "us"}
    path = env["RUNNER_TENANTS_FILE"]
    with open(path) as handle:
        text = handle.read()
    for tables, line in (('[tenants.prod.jobs.region-report]\nregion = "asia"\n',
                          "[tenants.prod.jobs.region-report]: region 'asia' is neither eu nor us"),
                         ('[tenants.prod.jobs.region-report]\nregoin = "us"\n',
                          "[tenants.prod.jobs.region-report]: unknown key 'regoin'; the keys of this table: schedule, timeout, params, region"),
                         ('[tenants.prod.jobs.quiet-report]\nregion = "us"\n',
                          "[tenants.prod.jobs.quiet-report]: unknown key 'region'; the keys of this table: schedule, timeout, params")):
        with open(path, "w") as handle:
            handle.write(text.replace('[tenants.prod.jobs.region-report]\nregion = "us"\n', tables))
        result = local_runner("run-job", "region-report", "--tenant", "prod", extra_env=env)
        assert (result.returncode, result.stderr) == (2, f"{start}{line}\n")


def test_the_readme_example_file_is_one_the_runner_takes(tmp_path):
    from batchrunner.runs.registry import discover
    from batchrunner.tenants import load_tenants
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Several tenants"):]
    example = section[section.index("```toml\n") + 8:]
    path = tmp_path / "tenants.toml"
    path.write_text(example[:example.index("```")])
    tenants = load_tenants({"RUNNER_TENANTS_FILE": str(path)}, discover())
    assert tenants["staging"].settings_for("users-cleanup").extra == {"rules": ["unverified 30 delete"], "protect_roles": ["admins"]}

"""The tenants file (README, "Several tenants"): what it may hold, and the one line for each mistake."""

from __future__ import annotations

import os
import textwrap

import pytest

from batchrunner.errors import ConfigError, UsageError
from batchrunner.tenants import DEFAULT, JobSettings, load_tenants, pick


def write(tmp_path, text: str, mode: int = 0o640):
    path = tmp_path / "tenants.toml"
    path.write_text(textwrap.dedent(text))
    os.chmod(path, mode)
    return {"RUNNER_TENANTS_FILE": str(path)}, path


def error(env) -> str:
    with pytest.raises(ConfigError) as caught:
        load_tenants(env)
    return caught.value.message()


TWO = """
    [tenants.prod]
    domain = "acme.eu.auth0.com"
    client_id = "prod-client"
    client_secret_file = "{secret}"
    jobs = ["export-clients", "export-logs"]
    production = true

    [tenants.dev]
    domain = "https://acme-dev.eu.auth0.com"
    client_id = "dev-client"
    client_secret_env = "DEV_SECRET"
    rate_limits = "endpoint"

    [tenants.dev.jobs.export-logs]
    schedule = "*/5 * * * *"
    timeout = 600
    params = {{ note = "two words" }}
    keep = 3
"""


def test_a_file_names_each_tenant_with_its_jobs_and_settings(tmp_path):
    secret = tmp_path / "prod.secret"
    secret.write_text("s3cret-prod\n")
    os.chmod(secret, 0o600)
    env, _ = write(tmp_path, TWO.format(secret=secret))
    tenants = load_tenants({**env, "DEV_SECRET": "s3cret-dev"})
    assert list(tenants) == ["prod", "dev"]
    prod, dev = tenants["prod"], tenants["dev"]
    assert (prod.domain, prod.client_id, prod.jobs, prod.production) == ("https://acme.eu.auth0.com", "prod-client", ("export-clients", "export-logs"), True)
    assert prod.runs("export-logs") and not prod.runs("snapshot") and dev.runs("snapshot")
    assert prod.credentials().client_secret == "s3cret-prod"
    assert prod.credentials().audience == "https://acme.eu.auth0.com/api/v2/"
    assert dev.credentials().client_secret == "s3cret-dev" and dev.rate_limits == "endpoint"
    assert dev.settings_for("export-logs") == JobSettings("*/5 * * * *", 600, {"note": "two words"}, {"keep": 3})
    assert dev.export_dir(tmp_path) == tmp_path / "dev"


def test_without_a_file_the_auth0_variables_are_the_tenant_default(tmp_path):
    tenants = load_tenants({"AUTH0_DOMAIN": "acme.eu.auth0.com", "AUTH0_CLIENT_ID": "id", "AUTH0_CLIENT_SECRET": "s"})
    assert list(tenants) == [DEFAULT]
    assert tenants[DEFAULT].export_dir(tmp_path) == tmp_path  # outputs stay where they were
    assert tenants[DEFAULT].credentials().client_secret == "s"
    assert load_tenants({})[DEFAULT].domain is None  # `runner history` needs no credentials


def test_a_missing_secret_fails_only_its_own_tenant(tmp_path):
    env, _ = write(tmp_path, TWO.format(secret=tmp_path / "gone.secret"))
    tenants = load_tenants({**env, "DEV_SECRET": "s3cret-dev"})
    assert tenants["dev"].credentials().client_secret == "s3cret-dev"
    with pytest.raises(ConfigError) as caught:
        tenants["prod"].credentials()
    assert caught.value.message() == (f"RUNNER_TENANTS_FILE tenant prod: client_secret_file {tmp_path / 'gone.secret'}: "
                                      "No such file or directory; give the path of a file holding the secret")


def test_a_secret_file_every_user_may_read_is_refused(tmp_path):
    secret = tmp_path / "prod.secret"
    secret.write_text("s3cret-prod\n")
    os.chmod(secret, 0o644)
    env, _ = write(tmp_path, TWO.format(secret=secret))
    with pytest.raises(ConfigError) as caught:
        load_tenants(env)["prod"].credentials()
    assert caught.value.message() == f"RUNNER_TENANTS_FILE tenant prod: client_secret_file {secret} may be read by every user; chmod o-r {secret}"


def test_a_secret_written_in_the_file_only_when_its_owner_alone_may_read_it(tmp_path):
    text = """
        [tenants.prod]
        domain = "acme.eu.auth0.com"
        client_id = "prod-client"
        client_secret = "s3cret"
    """
    env, path = write(tmp_path, text, mode=0o640)
    assert error(env) == (f"RUNNER_TENANTS_FILE: {path}, tenant prod: a client_secret written in {path} that others may read; "
                          f"use client_secret_file or client_secret_env, or chmod 600 {path}")
    os.chmod(path, 0o600)
    assert load_tenants(env)["prod"].credentials().client_secret == "s3cret"


def test_the_systemd_credential_of_the_tenant(tmp_path):
    text = """
        [tenants.prod]
        domain = "acme.eu.auth0.com"
        client_id = "prod-client"
    """
    env, _ = write(tmp_path, text)
    (tmp_path / "auth0_client_secret_prod").write_text("from-systemd\n")
    assert load_tenants({**env, "CREDENTIALS_DIRECTORY": str(tmp_path)})["prod"].credentials().client_secret == "from-systemd"
    with pytest.raises(ConfigError) as caught:
        load_tenants(env)["prod"].credentials()
    assert caught.value.message() == ("RUNNER_TENANTS_FILE tenant prod: no client secret: set client_secret_file or "
                                      "client_secret_env, or give the systemd credential auth0_client_secret_prod")


def test_a_malformed_file_names_its_line(tmp_path):
    env, path = write(tmp_path, '[tenants.prod]\ndomain = "acme.eu.auth0.com"\nclient_id = \n')
    assert error(env) == f"RUNNER_TENANTS_FILE: {path} is not valid TOML: Invalid value (at line 3, column 13)"


def test_a_tenant_named_twice(tmp_path):
    env, path = write(tmp_path, '[tenants.prod]\ndomain = "a.auth0.com"\nclient_id = "x"\n[tenants.prod]\ndomain = "b.auth0.com"\n')
    assert error(env) == (f"RUNNER_TENANTS_FILE: {path} is not valid TOML: Cannot declare ('tenants', 'prod') twice "
                          "(at line 4, column 14); each tenant (and each of its jobs) is named once")


def test_an_unknown_key_is_named_with_its_tenant(tmp_path):
    env, path = write(tmp_path, '[tenants.prod]\ndomain = "a.auth0.com"\nclient_id = "x"\nclient_secert_file = "/x"\n')
    assert error(env) == (f"RUNNER_TENANTS_FILE: {path}, tenant prod: unknown key 'client_secert_file'; the keys of a tenant: "
                          "domain, client_id, client_secret, client_secret_file, client_secret_env, audience, rate_limits, jobs, production")


@pytest.mark.parametrize("name", ["Prod", "-prod", "all", "prod_1", "logs", "snapshots", "checks"])
def test_a_bad_tenant_name(tmp_path, name):
    env, path = write(tmp_path, f'[tenants."{name}"]\ndomain = "a.auth0.com"\nclient_id = "x"\n')
    assert error(env).startswith(f"RUNNER_TENANTS_FILE: {path}: the tenant name {name!r} ")


def test_an_unknown_job_named_for_a_tenant(tmp_path):
    env, _ = write(tmp_path, '[tenants.prod]\ndomain = "a.auth0.com"\nclient_id = "x"\njobs = ["export-client"]\n')
    with pytest.raises(ConfigError) as caught:
        load_tenants(env, jobs={"export-clients": None, "snapshot": None})
    assert caught.value.message() == "RUNNER_TENANTS_FILE: tenant prod: no job is named 'export-client'; registered jobs: export-clients, snapshot"


def test_pick_a_tenant(tmp_path):
    env, _ = write(tmp_path, TWO.format(secret="/x"))
    tenants = load_tenants(env)
    assert [t.name for t in pick(tenants, "all", "snapshot")] == ["dev"]
    assert [t.name for t in pick(tenants, None, "snapshot")] == ["dev"]  # one tenant runs it: no --tenant needed
    with pytest.raises(UsageError) as caught:
        pick(tenants, None, "export-logs")
    assert str(caught.value) == "export-logs runs for several tenants (prod, dev); give --tenant NAME, or --tenant all for each in turn"
    with pytest.raises(UsageError) as caught:
        pick(tenants, "stage")
    assert str(caught.value) == "unknown tenant 'stage'; the tenants: prod, dev (see RUNNER_TENANTS_FILE)"

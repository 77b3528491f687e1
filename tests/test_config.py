"""Settings as the README's "Configuration" defines them, and the one-line error for each bad one."""

import pytest

from batchrunner.config import load_credentials, load_settings, parse_domain
from batchrunner.errors import ConfigError

BASE = {"AUTH0_DOMAIN": "acme.eu.auth0.com", "AUTH0_CLIENT_ID": "abc123", "AUTH0_CLIENT_SECRET": "s3cret-value"}


def test_bare_domain_means_https_and_the_default_audience():
    creds = load_credentials(BASE)
    assert creds.base_url == "https://acme.eu.auth0.com"
    assert creds.audience == "https://acme.eu.auth0.com/api/v2/"
    assert creds.token_url == "https://acme.eu.auth0.com/oauth/token"


@pytest.mark.parametrize("domain, audience", [
    ("Acme.EU.auth0.com", "https://acme.eu.auth0.com/api/v2/"),
    ("acme.eu.auth0.com:443", "https://acme.eu.auth0.com/api/v2/"),
    ("https://acme.eu.auth0.com:8443", "https://acme.eu.auth0.com:8443/api/v2/"),
    ("http://[::1]:80", "http://[::1]/api/v2/"),
])
def test_the_default_audience_is_the_management_apis_own_identifier_however_the_domain_is_spelled(domain, audience):
    # Auth0 refuses an audience that is no identifier of the tenant's: with :443 every token request failed.
    assert load_credentials({**BASE, "AUTH0_DOMAIN": domain}).audience == audience


def test_base_url_and_explicit_audience():
    creds = load_credentials({**BASE, "AUTH0_DOMAIN": "http://127.0.0.1:8080/", "AUTH0_AUDIENCE": "urn:my-api"})
    assert creds.base_url == "http://127.0.0.1:8080"
    assert creds.audience == "urn:my-api"


@pytest.mark.parametrize("host", ["http://localhost:1234", "http://127.8.9.10", "http://[::1]:99"])
def test_plain_http_to_loopback_is_allowed(host):
    assert parse_domain(host) == host


@pytest.mark.parametrize("host", ["http://example.com", "http://10.0.0.5:8080", "http://acme.auth0.com"])
def test_plain_http_elsewhere_is_refused(host):
    with pytest.raises(ConfigError) as err:
        parse_domain(host)
    assert str(err.value).startswith("AUTH0_DOMAIN: refusing plain http to ")
    assert "use https://" in str(err.value)


@pytest.mark.parametrize("value", ["ftp://acme.auth0.com", "acme.auth0.com/api", "https://acme.auth0.com?x=1", "a b.com", "https://:80"])
def test_malformed_domain_names_the_variable(value):
    with pytest.raises(ConfigError) as err:
        parse_domain(value)
    assert err.value.variable == "AUTH0_DOMAIN"
    assert err.value.exit_code == 2


@pytest.mark.parametrize("value", ["https://:pw@acme.auth0.com", "user@acme.auth0.com", "https://u:p@acme.auth0.com"])
def test_credentials_in_the_domain_are_refused_without_echoing_them(value):
    with pytest.raises(ConfigError) as err:
        parse_domain(value)
    assert str(err.value).startswith("AUTH0_DOMAIN: has a user name or password in it; ")
    assert "pw" not in str(err.value) and "u:p" not in str(err.value)


@pytest.mark.parametrize("missing", ["AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"])
def test_each_missing_credential_names_its_variable(missing):
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigError) as err:
        load_credentials(env)
    assert str(err.value).startswith(f"{missing}: not set")


def test_secret_from_a_file_without_its_newline(tmp_path):
    (tmp_path / "secret").write_text("from-file\n")
    env = {**BASE, "AUTH0_CLIENT_SECRET": "", "AUTH0_CLIENT_SECRET_FILE": str(tmp_path / "secret")}
    assert load_credentials(env).client_secret == "from-file"


def test_secret_file_that_cannot_be_read(tmp_path):
    env = {**BASE, "AUTH0_CLIENT_SECRET": "", "AUTH0_CLIENT_SECRET_FILE": str(tmp_path / "nope")}
    with pytest.raises(ConfigError) as err:
        load_credentials(env)
    assert str(err.value) == f"AUTH0_CLIENT_SECRET_FILE: cannot read {tmp_path / 'nope'}: No such file or directory"


def test_secret_from_a_systemd_credential(tmp_path):
    (tmp_path / "auth0_client_secret").write_text("from-systemd")
    env = {**BASE, "AUTH0_CLIENT_SECRET": "", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert load_credentials(env).client_secret == "from-systemd"


def test_the_environment_variable_wins_over_file_and_credential(tmp_path):
    (tmp_path / "auth0_client_secret").write_text("from-systemd")
    (tmp_path / "secret").write_text("from-file")
    env = {**BASE, "AUTH0_CLIENT_SECRET_FILE": str(tmp_path / "secret"), "CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert load_credentials(env).client_secret == "s3cret-value"
    env["AUTH0_CLIENT_SECRET"] = ""
    assert load_credentials(env).client_secret == "from-file"


def test_a_secret_with_white_space_is_refused_without_showing_it():
    with pytest.raises(ConfigError) as err:
        load_credentials({**BASE, "AUTH0_CLIENT_SECRET": "abc def"})
    assert "abc" not in str(err.value)
    assert err.value.variable == "AUTH0_CLIENT_SECRET"


def test_the_secret_is_not_in_the_repr():
    assert "s3cret-value" not in repr(load_credentials(BASE))


def test_state_directory_defaults():
    assert load_settings({}).database_url == "sqlite:///var/runner.db"
    settings = load_settings({"STATE_DIRECTORY": "/var/lib/runner"})
    assert settings.database_url == "sqlite:////var/lib/runner/runner.db"
    assert str(settings.export_dir) == "/var/lib/runner/exports"
    assert settings.timezone.key == "UTC"


def test_unknown_time_zone():
    with pytest.raises(ConfigError) as err:
        load_settings({"RUNNER_TIMEZONE": "Mars/Olympus"})
    assert str(err.value) == "RUNNER_TIMEZONE: unknown time zone 'Mars/Olympus'; use an IANA name such as Europe/Berlin"


def test_malformed_database_url_exits_2(tmp_path):
    from batchrunner.store.database import Database

    with pytest.raises(ConfigError) as err:
        Database("not a url")
    assert err.value.variable == "RUNNER_DATABASE_URL"


@pytest.mark.parametrize("variable, value, message", [
    ("RUNNER_STOP_TIMEOUT", "abc", "RUNNER_STOP_TIMEOUT: 'abc' is not a number of seconds; e.g. 60"),
    ("RUNNER_STOP_TIMEOUT", "-1", "RUNNER_STOP_TIMEOUT: '-1' is not a number of seconds; e.g. 60"),
    ("RUNNER_LOG_FORMAT", "xml", "RUNNER_LOG_FORMAT: 'xml' is not a log format; use text or json"),
])
def test_serve_settings_are_checked_with_the_others(variable, value, message):
    with pytest.raises(ConfigError) as err:
        load_settings({variable: value})
    assert str(err.value) == message


def test_serve_settings_and_their_defaults():
    assert (load_settings({}).stop_timeout, load_settings({}).log_format) == (60, "text")
    settings = load_settings({"RUNNER_STOP_TIMEOUT": "2.5", "RUNNER_LOG_FORMAT": "JSON"})
    assert (settings.stop_timeout, settings.log_format) == (2.5, "json")


def test_other_runner_variables_are_only_named():
    env = {"RUNNER_SOMETHING_ELSE": "1", "RUNNER_TEST_POSTGRES_URL": "postgresql://x", "RUNNER_SCHEDULE_HELLO": "off"}
    assert load_settings(env).unknown == ("RUNNER_SOMETHING_ELSE",)


def test_every_runner_variable_the_code_reads_is_known():
    import re

    from batchrunner.config import KNOWN_PREFIXES, KNOWN_SETTINGS, NOT_OURS_PREFIXES
    from conftest import ROOT

    code = "\n".join(p.read_text() for folder in ("batchrunner", "jobs") for p in (ROOT / folder).rglob("*.py")) + (ROOT / "runner.py").read_text()
    read = {s for s in re.findall(r'"(RUNNER_[A-Z_]+)"', code) if not s.endswith("_")}
    assert sorted(read - set(KNOWN_SETTINGS)) == []  # a new setting goes into KNOWN_SETTINGS, or it is called a typo
    assert {p for p in re.findall(r'"(RUNNER_[A-Z_]+_)"', code)} <= set(KNOWN_PREFIXES + NOT_OURS_PREFIXES)


@pytest.mark.parametrize("typed, meant", [
    ("RUNNER_SCHEDUEL_EXPORT_CLIENTS", "RUNNER_SCHEDULE_EXPORT_CLIENTS"),
    ("RUNNER_SCHEDLE_HELLO", "RUNNER_SCHEDULE_HELLO"),
    ("RUNNER_DATABSE_URL", "RUNNER_DATABASE_URL"),
    ("RUNNER_JOB", "RUNNER_JOBS"),
    ("RUNNER_STOP_TIMOUT", "RUNNER_STOP_TIMEOUT"),
    ("AUTH0_AUDIANCE", "AUTH0_AUDIENCE"),
    ("AUTH0_CLIENTID", "AUTH0_CLIENT_ID"),
    ("AUTH0_CLIENT_SECRET_FIEL", "AUTH0_CLIENT_SECRET_FILE"),
    ("AUTH0_DOMIAN", "AUTH0_DOMAIN"),
])
@pytest.mark.parametrize("others", [{}, BASE], ids=["alone", "beside-the-tenant"])
def test_a_mistyped_variable_is_refused_with_the_name_meant(typed, meant, others):
    with pytest.raises(ConfigError) as err:
        load_settings({**others, typed: "x"})
    assert (str(err.value), err.value.exit_code) == (f"{typed}: not a setting of the runner; did you mean {meant}?", 2)


def test_other_tools_auth0_variables_are_left_alone():
    env = {**BASE, "AUTH0_SECRET": "x", "AUTH0_BASE_URL": "x", "AUTH0_ISSUER_BASE_URL": "x", "AUTH0_ALLOW_DELETE": "x"}
    assert load_settings(env).unknown == ()


def test_every_missing_credential_is_named_in_one_line():
    with pytest.raises(ConfigError) as err:
        load_credentials({"AUTH0_AUDIENCE": "urn:x"})
    assert str(err.value) == (
        "AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET: not set; each is required to call Auth0 (see README, "
        "Configuration); the secret may instead be in AUTH0_CLIENT_SECRET_FILE or a systemd credential auth0_client_secret")
    with pytest.raises(ConfigError) as err:
        load_credentials({"AUTH0_CLIENT_SECRET": "s3cret-value"})
    assert str(err.value) == "AUTH0_DOMAIN, AUTH0_CLIENT_ID: not set; each is required to call Auth0 (see README, Configuration)"


def test_a_secret_given_twice_is_warned_about(tmp_path):
    assert load_settings(BASE).warnings == ()
    both = load_settings({**BASE, "AUTH0_CLIENT_SECRET_FILE": str(tmp_path / "secret")})
    assert both.warnings == ("AUTH0_CLIENT_SECRET and AUTH0_CLIENT_SECRET_FILE are both set; AUTH0_CLIENT_SECRET is used "
                             "and the file is not read: unset one",)


@pytest.mark.parametrize("value", ["127.0.0.1:99999", "[::1]:65536"])
def test_a_metrics_port_out_of_range_is_said_so(value):
    # "is not HOST:PORT" for 127.0.0.1:99999 left the user looking for what is not HOST:PORT about it
    with pytest.raises(ConfigError) as err:
        load_settings({"RUNNER_METRICS_ADDRESS": value})
    port = value.rpartition(":")[2]
    assert str(err.value) == f"RUNNER_METRICS_ADDRESS: {value!r}: port {port} is out of range; give one from 1 to 65535 (0 picks a free one)"


@pytest.mark.parametrize("value", ["9464", "localhost", "127.0.0.1:http", "[::1]"])
def test_a_bad_metrics_address_is_a_setting_error(value):
    with pytest.raises(ConfigError) as err:
        load_settings({"RUNNER_METRICS_ADDRESS": value})
    assert str(err.value) == (f"RUNNER_METRICS_ADDRESS: {value!r} is not HOST:PORT; give e.g. 127.0.0.1:9464 "
                              "(0.0.0.0:9464 to listen on every interface)")


def test_a_relative_export_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings({"RUNNER_EXPORT_DIR": "out/exports"}).export_dir == tmp_path / "out" / "exports"
    assert load_settings({}).export_dir == tmp_path / "var" / "exports"

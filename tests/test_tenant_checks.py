"""`tenant-checks` (README, "Tenant checks: `tenant-checks`"): expiring certificates and keys, log streams
that stopped, risky settings; new and resolved findings between runs; no connection secret anywhere."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from batchrunner.errors import UsageError
from batchrunner.findings import rules
from batchrunner.findings.certificates import NotACertificate, not_after
from batchrunner.findings.settings import check_settings, parse
from batchrunner.sandbox import certificates
from conftest import ROOT
from test_pings import sink  # noqa: F401  (a fixture: a webhook receiver on loopback)

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=timezone.utc)


# --- reading a certificate's expiry ---------------------------------------------------------------------

@pytest.mark.parametrize("when", [datetime(2027, 1, 5, 10, 20, 30, tzinfo=timezone.utc),
                                  datetime(2060, 3, 1, tzinfo=timezone.utc), datetime(1999, 3, 1, tzinfo=timezone.utc)])
def test_the_expiry_of_a_pem_or_bare_certificate_is_read_as_openssl_reads_it(tmp_path, when):
    der = certificates.certificate("partner", when)
    assert not_after(certificates.pem(der)) == not_after(certificates.bare(der)) == when
    if shutil.which("openssl"):
        (tmp_path / "c.pem").write_text(certificates.pem(der))
        shown = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", str(tmp_path / "c.pem")],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert datetime.strptime(shown, "notAfter=%b %d %H:%M:%S %Y GMT").replace(tzinfo=timezone.utc) == when


@pytest.mark.parametrize("text", ["", "not base64!", "MIIC8jCCAdqgAwIBAgIQSandboxPublicCertOnly",
                                  "-----BEGIN CERTIFICATE-----MIIC-----END CERTIFICATE-----"])
def test_text_that_is_no_certificate_is_said_so(text):
    with pytest.raises(NotACertificate):
        not_after(text)


# --- severities at the boundaries -------------------------------------------------------------------------

@pytest.mark.parametrize("left, severity", [
    (timedelta(days=-1), "critical"), (timedelta(days=6), "critical"), (timedelta(days=7), "critical"),
    (timedelta(days=7, seconds=1), "warning"), (timedelta(days=29), "warning"), (timedelta(days=30), "warning"),
    (timedelta(days=30, seconds=1), None), (timedelta(days=31), None),
])
def test_an_expiry_is_critical_within_7_days_and_a_warning_within_30(left, severity):
    assert rules.expiry_severity(NOW + left, NOW, 7, 30) == severity


def test_the_windows_are_settings():
    chosen = parse({"critical_days": "14", "warning_days": "60"})
    assert rules.expiry_severity(NOW + timedelta(days=13), NOW, chosen.critical_days, chosen.warning_days) == "critical"
    assert rules.expiry_severity(NOW + timedelta(days=59), NOW, chosen.critical_days, chosen.warning_days) == "warning"


# --- settings -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params, message", [
    ({"disable": "implicit-grant,implicit-grants"},
     "tenant-checks: disable names no rule 'implicit-grants'; the rules: " + ", ".join(rules.BY_ID)),
    ({"warning_days": "a month"}, "tenant-checks: warning_days='a month' is not a number of days from 0 to 3650, e.g. warning_days=30"),
    ({"critical_days": "40"}, "tenant-checks: critical_days (40) is more than warning_days (30); give critical_days <= warning_days"),
    ({"production": "maybe"}, "tenant-checks: production='maybe' is neither true nor false"),
])
def test_a_setting_not_understood_is_refused_in_one_line(params, message):
    with pytest.raises(UsageError) as refused:
        parse(params)
    assert str(refused.value) == message


def test_a_tenants_production_flag_is_the_default_and_a_param_overrides_it():
    tenant = SimpleNamespace(production=True)
    assert check_settings(SimpleNamespace(params={}, tenant=tenant)).production is True
    assert check_settings(SimpleNamespace(params={"production": "false"}, tenant=tenant)).production is False
    assert check_settings(SimpleNamespace(params={})).production is False


def test_a_bad_setting_exits_2_before_a_run_is_recorded(runner):
    result = runner("run-job", "tenant-checks", "--param", "disable=no-such-rule")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("tenant-checks: disable names no rule 'no-such-rule'; the rules: " + ", ".join(rules.BY_ID))
    assert runner("history", "--json").stdout.strip() in ("[]", "")


# --- on the stand-in ----------------------------------------------------------------------------------------

CHECK_SCOPES = ["read:clients", "read:client_grants", "read:connections", "read:log_streams", "read:custom_domains",
                "read:signing_keys", "read:client_credentials"]


def _run(runner, *params, extra_env=None):
    args = [arg for param in params for arg in ("--param", param)]
    result = runner("run-job", "tenant-checks", *args, "--json", extra_env=extra_env, timeout=120)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    return run, json.loads(Path(run["result"]["path"]).read_text(encoding="utf-8"))


def _found(report, rule) -> set:
    return {(f["subject_type"], f["subject_name"], f["item"]) for f in report["findings"] if f["rule"] == rule}


def _apps(tenant) -> list[dict]:
    return [tenant.tenant.application(i, keys=False) for i in range(tenant.clients)]


def test_every_rule_fires_on_the_stand_ins_data_and_only_there(runner, tenant):
    tenant.set_scopes(CHECK_SCOPES)
    run, report = _run(runner, "production=true")
    apps = _apps(tenant)
    names = {a["client_id"]: a["name"] for a in apps}
    interactive = [a for a in apps if a["app_type"] != "non_interactive"]
    assert _found(report, "implicit-grant") == {("client", a["name"], "") for a in interactive}
    assert _found(report, "insecure-url") == {("client", a["name"], f"callbacks {u}") for a in apps for u in a["callbacks"]
                                                 if u.startswith("http://") and "localhost" not in u}
    assert _found(report, "loopback-url-in-production") == {("client", a["name"], "callbacks http://localhost:3000/callback")
                                                            for a in apps if "http://localhost:3000/callback" in a["callbacks"]}
    assert _found(report, "non-rotating-refresh-token") == {("client", a["name"], "") for a in apps if a["app_type"] == "native"}
    assert _found(report, "not-oidc-conformant") == {("client", a["name"], "") for a in apps if a["oidc_conformant"] is False}
    broad = [g for g in tenant.directory.client_grants if g["client_id"] != tenant.client_id
             and any(s.endswith(":users") or s.startswith("delete:") for s in g["scope"])]
    assert _found(report, "broad-user-grant") == {("client_grant", names[g["client_id"]], "") for g in broad}
    by_subject = {(f["rule"], f["subject_name"], f["severity"]) for f in report["findings"] if f["rule"].startswith(("expiring", "log-stream"))}
    assert by_subject == {
        ("expiring-certificate", "acme-saml", "critical"),  # 3 days
        ("expiring-certificate", "partner-adfs", "warning"),  # 20 days, in the WS-Federation metadata
        ("expiring-certificate", "auth.example.org", "critical"),  # its renewal failed
        ("expiring-certificate", "auth.example.org", "warning"),  # renewed before 12 days from now
        ("expiring-signing-key", _current_kid(tenant), "warning"),  # 25 days; the next key is far off, the previous one signs nothing
        ("expiring-client-credential", names[_client(tenant, 7)], "critical"),  # 6 days
        ("expiring-client-credential", names[_client(tenant, 15)], "warning"),  # 29 days
        ("log-stream-not-active", "Datadog", "critical"), ("log-stream-not-active", "Splunk", "critical"),
    }
    every = {f["rule"] for f in report["findings"]}
    assert every == set(rules.BY_ID)
    assert run["result"]["findings"] == {s: sum(1 for f in report["findings"] if f["severity"] == s) for s in rules.SEVERITIES}
    assert run["result"]["skipped_checks"] == []
    expiries = {(e["kind"], e["name"]) for e in run["result"]["expiries"]}
    assert ("connection", "globex-ping") in expiries and ("connection", "acme-saml") in expiries  # healthy ones too, for the metric


def _current_kid(tenant) -> str:
    return next(k["kid"] for k in tenant.checks.signing_keys if k.get("current"))


def _client(tenant, i) -> str:
    return tenant.tenant.application(i, keys=False)["client_id"]


def test_the_loopback_rule_needs_a_production_tenant_and_rules_can_be_turned_off(runner, tenant):
    tenant.set_scopes(CHECK_SCOPES)
    _, report = _run(runner, "disable=implicit-grant,log-stream-not-active")
    found = {f["rule"] for f in report["findings"]}
    assert not found & {"loopback-url-in-production", "implicit-grant", "log-stream-not-active"}
    assert "insecure-url" in found
    assert not any(x.path.endswith("/log-streams") for x in _received(tenant))  # a check with every rule off asks nothing


def test_trusted_applications_may_hold_broad_user_grants(runner, tenant):
    tenant.set_scopes(CHECK_SCOPES)
    _, before = _run(runner)
    grantees = {f["subject_id"] for f in before["findings"] if f["rule"] == "broad-user-grant"}
    trusted = {g["client_id"] for g in tenant.directory.client_grants if g["id"] in grantees}
    _, after = _run(runner, "trusted=" + ",".join(sorted(trusted)))
    assert trusted and not [f for f in after["findings"] if f["rule"] == "broad-user-grant"]


def _received(tenant):
    return [SimpleNamespace(path=entry["path"], query=entry["query"]) for entry in tenant.tenant.received]


def test_new_and_resolved_across_two_runs(runner, tenant, tmp_path):
    tenant.set_scopes(CHECK_SCOPES)
    first, report = _run(runner)
    first_at = report["checked_at"]
    assert first["result"]["new"] == first["result"]["findings"] and sum(first["result"]["resolved"].values()) == 0
    assert {f["status"] for f in report["findings"]} == {"new"}
    streams = tenant.checks.log_streams
    streams[1]["status"] = "active"  # Datadog delivers again
    streams[0]["status"] = "paused"  # the SIEM stopped
    second, report = _run(runner)
    assert second["result"]["new"] == {"critical": 1, "warning": 0, "info": 0}
    assert second["result"]["resolved"] == {"critical": 1, "warning": 0, "info": 0}
    [new] = [f for f in report["findings"] if f["status"] == "new"]
    assert (new["rule"], new["subject_name"], new["first_seen"]) == ("log-stream-not-active", "SIEM", report["checked_at"])
    [resolved] = report["resolved"]
    assert (resolved["rule"], resolved["subject_name"], resolved["first_seen"]) == ("log-stream-not-active", "Datadog", first_at)
    kept = {f["subject_name"]: f["first_seen"] for f in report["findings"] if f["status"] == "open"}
    assert kept["Splunk"] == first_at
    with open(Path(report_path(second)).parent / "checks-latest.csv", encoding="utf-8-sig", newline="") as handle:
        latest = list(csv.reader(handle))
    assert latest[0] == ["rule", "severity", "subject_type", "subject_id", "subject_name", "detail", "first_seen"]
    assert len(latest) == 1 + sum(second["result"]["findings"].values())
    assert sorted(p.name for p in Path(report_path(second)).parent.iterdir()) == sorted(
        [Path(report_path(first)).name, Path(report_path(second)).name, "checks-latest.csv"])


def report_path(run) -> str:
    return run["result"]["path"]


def test_a_check_without_its_scope_is_skipped_with_the_scope_never_passed(runner, tenant):
    tenant.set_scopes(CHECK_SCOPES)
    _, first = _run(runner)
    tenant.set_scopes([s for s in CHECK_SCOPES if s != "read:log_streams"])
    tenant.tenant.expire_all_tokens()  # the cached token had the scope
    second, report = _run(runner)
    [skipped] = second["result"]["skipped_checks"]
    assert (skipped["check"], skipped["missing_scope"]) == ("log-streams", "read:log_streams")
    assert skipped["reason"].startswith("the token lacks the scope read:log_streams for GET /api/v2/log-streams; grant read:log_streams to application ")
    assert report["skipped_checks"] == second["result"]["skipped_checks"]
    # Not looked at, so not resolved: the paused streams are findings again once the scope is back.
    assert second["result"]["resolved"] == {"critical": 0, "warning": 0, "info": 0}
    tenant.set_scopes(CHECK_SCOPES)
    third, report = _run(runner)
    streams = [f for f in report["findings"] if f["rule"] == "log-stream-not-active"]
    assert {f["status"] for f in streams} == {"open"} and {f["first_seen"] for f in streams} == {first["checked_at"]}


def test_without_the_scope_for_applications_their_credentials_are_skipped_too(runner, tenant):
    tenant.set_scopes([s for s in CHECK_SCOPES if s != "read:clients"])
    run, _ = _run(runner)
    assert [(s["check"], s["missing_scope"]) for s in run["result"]["skipped_checks"]] == [
        ("applications", "read:clients"), ("client-credentials", "read:client_credentials")]


# --- what it sends and exposes, and what it never does -----------------------------------------------------------

def test_new_findings_are_notified_and_the_metrics_come_from_the_newest_run(runner, tenant, sink):
    tenant.set_scopes(CHECK_SCOPES)
    hook = {"RUNNER_NOTIFY_URL": sink.url + "/hook"}
    _run(runner, extra_env=hook)
    tenant.checks.log_streams[0]["status"] = "paused"
    second, _ = _run(runner, extra_env=hook)
    first_note, second_note = (json.loads(body) for _, body in sink.received)
    assert first_note["event"] == "findings" and first_note["changes"]["new_count"] == sum(second["result"]["findings"].values()) - 1
    assert second_note["text"] == "tenant-checks: 1 new finding, 0 resolved\ncritical log-stream-not-active: SIEM: http stream is paused"
    assert second_note["changes"]["new"] == [{"rule": "log-stream-not-active", "severity": "critical", "subject_type": "log_stream",
                                              "subject_id": "lst_0000000000000001", "subject_name": "SIEM", "detail": "http stream is paused"}]
    third, _ = _run(runner, extra_env=hook)
    assert len(sink.received) == 2  # nothing new, nothing resolved: no message
    metrics = runner("metrics").stdout
    saml = [float(line.split()[-1]) for line in metrics.splitlines()
            if line.startswith('runner_expiry_timestamp_seconds{kind="connection",name="acme-saml",tenant="default"} ')]
    assert saml == [tenant.checks.at(3).timestamp()]
    assert f'runner_findings{{severity="critical",tenant="default"}} {float(third["result"]["findings"]["critical"])}' in metrics
    assert 'runner_findings_new{severity="critical",tenant="default"} 0.0' in metrics


def test_no_connection_or_stream_secret_in_any_output_log_row_metric_or_notification(runner, tenant, sink, tmp_path, database_url):
    from batchrunner.sandbox.checks import STREAM_SECRET
    from batchrunner.sandbox.directory import CONNECTION_SECRET

    tenant.set_scopes(CHECK_SCOPES)
    connection = next(c for c in tenant.directory.connections if c["name"] == "acme-saml")
    assert CONNECTION_SECRET in json.dumps(connection["options"])  # the secrets sit beside the certificate
    hook = {"RUNNER_NOTIFY_URL": sink.url + "/hook"}
    runs = [runner("run-job", "tenant-checks", "--json", extra_env=hook, timeout=120)]
    tenant.checks.log_streams[0]["status"] = "paused"
    runs.append(runner("run-job", "tenant-checks", "--json", extra_env=hook, timeout=120))
    assert [r.returncode for r in runs] == [0, 0]
    seen = [r.stdout + r.stderr for r in runs] + [runner("metrics").stdout, runner("history", "--json").stdout]
    seen += [body.decode() for _, body in sink.received]
    seen += [p.read_text(encoding="utf-8", errors="replace") for p in (tmp_path / "exports").rglob("*") if p.is_file()]
    seen += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*.db*") if p.is_file()]
    seen.append(_database_dump(database_url))
    assert len(sink.received) == 2 and any("acme-saml" in text for text in seen)
    for secret in (CONNECTION_SECRET, STREAM_SECRET, "PRIVATE KEY"):
        assert not [text[:80] for text in seen if secret in text], secret


def _database_dump(url: str) -> str:
    from sqlalchemy import MetaData, create_engine, select

    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        text = "\n".join(repr(row) for table in meta.sorted_tables for row in conn.execute(select(table)))
    engine.dispose()
    return text


# --- the README's alert rules ---------------------------------------------------------------------------------

def test_the_readmes_alert_rules_pass_promtool(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("### Alerts: example Prometheus rules", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "runner_expiry_timestamp_seconds" in block and "runner_findings_new" in block
    (tmp_path / "rules.yml").write_text(block, encoding="utf-8")
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_finding_that_became_more_urgent_is_new_again_and_keeps_its_first_sighting(runner, tenant):
    tenant.set_scopes(CHECK_SCOPES)
    _, before = _run(runner)
    run, after = _run(runner, "critical_days=21")  # 20 and 12 days left: both enter the critical window
    escalated = [f for f in after["findings"] if f["status"] == "new"]
    assert {(f["subject_name"], f["severity"], f["item"]) for f in escalated} == {
        ("partner-adfs", "critical", _fingerprint_of(tenant, "partner-adfs")), ("auth.example.org", "critical", "renews_before")}
    assert {f["first_seen"] for f in escalated} == {before["checked_at"]}
    assert run["result"]["new"] == {"critical": 2, "warning": 0, "info": 0}


def _fingerprint_of(tenant, name) -> str:
    from batchrunner.findings.gather import signing_certificates, fingerprint

    [(_, text)] = signing_certificates(next(c for c in tenant.directory.connections if c["name"] == name))
    return fingerprint(text)


def test_a_certificate_that_cannot_be_read_is_a_warning_naming_where_it_is(runner, tenant):
    tenant.set_scopes(CHECK_SCOPES)
    saml = next(c for c in tenant.directory.connections if c["name"] == "acme-saml")
    saml["options"]["signingCert"] = "-----BEGIN CERTIFICATE-----MIIC-----END CERTIFICATE-----"
    _, report = _run(runner)
    [found] = [f for f in report["findings"] if f["subject_name"] == "acme-saml"]
    assert (found["severity"], found["detail"]) == ("warning", "the signing certificate in options.signingCert cannot be read")

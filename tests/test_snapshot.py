"""The access snapshot and its drift through the stand-in tenant (README, "The access snapshot: `snapshot`" and "Drift: what changed since the last snapshot")."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from batchrunner.outputs.writers import read_rows
from batchrunner.sandbox.directory import API_SECRET, CONNECTION_SECRET
from conftest import SQLITE_ONLY, start_runner, wait_for

ALL_SCOPES = ["read:clients", "read:client_grants", "read:resource_servers", "read:roles", "read:users",
              "read:connections", "read:organizations", "read:organization_members", "read:logs"]
BIG = 1200  # members of the big role and organization: more than Auth0's offset paging reaches (1,000)
FILES = ["client_grants", "clients", "connections", "organization_members", "organizations",
         "resource_servers", "role_members", "role_permissions", "roles"]


@pytest.fixture
def directory_tenant(tenant):
    """The stand-in with every read scope granted, and its directory as tests expect it."""
    tenant.set_scopes(ALL_SCOPES)
    tenant.directory = tenant._directory()
    return tenant


@pytest.fixture
def big_tenant(tenant):
    """A role and an organization of 1,200 members each: past Auth0's 1,000-record offset wall."""
    sizes = tenant.sizes
    before = (sizes.users, sizes.big_role_members, sizes.big_org_members)
    sizes.users, sizes.big_role_members, sizes.big_org_members = 1300, BIG, BIG
    tenant.set_scopes(ALL_SCOPES)
    tenant.directory = tenant._directory()
    yield tenant
    sizes.users, sizes.big_role_members, sizes.big_org_members = before
    tenant.reset()


def snapshots(tmp_path) -> Path:
    return tmp_path / "exports" / "snapshots"


def yesterday(tmp_path, name="20261124T023000Z") -> None:
    """The latest snapshot, renamed as if taken earlier: the next run, in the same second, needs a new name."""
    root = snapshots(tmp_path)
    (root / os.readlink(root / "latest")).rename(root / name)
    (root / "latest").unlink()
    (root / "latest").symlink_to(name)


def ids(path: Path, *columns) -> list:
    return [tuple(row[c] for c in columns) for row in read_rows(path)]


@SQLITE_ONLY
def test_a_snapshot_holds_every_row_once_sorted_past_the_offset_wall(runner, big_tenant, tmp_path):
    result = runner("run-job", "snapshot", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    d = big_tenant.directory
    latest = snapshots(tmp_path) / "latest"
    assert latest.is_symlink() and not os.readlink(latest).startswith("/")
    assert run["result"]["path"] == str(snapshots(tmp_path) / os.readlink(latest))
    assert sorted(p.name for p in latest.iterdir()) == sorted([f"{f}.csv" for f in FILES] + ["manifest.json"])
    expected = {
        "roles": sorted((r["id"],) for r in d.roles),
        "organizations": sorted((o["id"],) for o in d.organizations),
        "connections": sorted((c["id"],) for c in d.connections),
        "client_grants": sorted((g["id"],) for g in d.client_grants),
        "resource_servers": sorted((r["id"],) for r in d.resource_servers),
        "role_members": sorted((role, d.member_key(i)) for role, members in d.role_members.items() for i in members),
        "organization_members": sorted((org, d.member_key(i)) for org, members in d.organization_members.items() for i in members),
    }
    key = {"role_members": ("role_id", "user_id"), "organization_members": ("organization_id", "user_id")}
    for name, want in expected.items():
        assert ids(latest / f"{name}.csv", *key.get(name, ("id",))) == want, name
    assert sum(1 for row in ids(latest / "role_members.csv", "role_id") if row == (d.big_role,)) == BIG
    assert len(ids(latest / "clients.csv", "client_id")) == big_tenant.clients
    manifest = json.loads((latest / "manifest.json").read_text())
    assert set(manifest) >= {"tenant", "started_at", "finished_at", "runner_version", "resources"}
    assert {n: r["rows"] for n, r in manifest["resources"].items()} == run["result"]["resources"]
    assert run["result"]["resources"]["role_members"] == len(expected["role_members"])
    assert run["result"]["changes"] is None and "first snapshot" in run["result"]["drift"]
    # Members past 1,000 came by checkpoint paging, never by offset pages past the wall.
    member_calls = [r for r in big_tenant.tenant.received if r["path"].endswith(("/users", "/members"))]
    assert member_calls and all("page" not in r["query"] for r in member_calls)


def test_no_secret_of_clients_apis_or_connections_is_written_anywhere(runner, directory_tenant, tmp_path):
    directory_tenant.tenant.add_m2m("keys-app", "keys-app-secret-9f8e7d", ALL_SCOPES + ["read:client_keys"])
    result = runner("run-job", "snapshot", extra_env={"AUTH0_CLIENT_ID": "keys-app", "AUTH0_CLIENT_SECRET": "keys-app-secret-9f8e7d"})
    assert result.returncode == 0, result.stderr
    written = b"".join(p.read_bytes() for p in (tmp_path / "exports").rglob("*") if p.is_file())
    written += result.stdout.encode() + result.stderr.encode() + runner("history", "--json").stdout.encode()
    for marker in (CONNECTION_SECRET, API_SECRET, "SANDBOXSECRET", "SANDBOXKEY", "keys-app-secret"):
        assert marker.encode() not in written, marker
    asked = [r for r in directory_tenant.tenant.received if r["path"] == "/api/v2/connections"]
    assert asked and (asked[0]["query"]["fields"], asked[0]["query"]["include_fields"]) == ("options", "false")


@SQLITE_ONLY
def test_a_token_without_read_roles_fails_before_any_request_naming_every_gap(runner, directory_tenant, tmp_path):
    directory_tenant.set_scopes([s for s in ALL_SCOPES if s not in ("read:roles", "read:organization_members")])
    result = runner("run-job", "snapshot")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "roles needs read:roles" in line and "role_permissions needs read:roles" in line
    assert "organization_members needs read:organization_members" in line
    assert "role_members" not in line  # read:users covers the members themselves
    assert f"grant the scopes to application {directory_tenant.client_id}" in line
    assert [r["path"] for r in directory_tenant.tenant.received] == ["/oauth/token"]
    assert not (tmp_path / "exports" / "snapshots").exists() or not list(snapshots(tmp_path).iterdir())
    only = runner("run-job", "snapshot", "--param", "resources=clients,connections")
    assert only.returncode == 0, only.stderr
    assert sorted(p.name for p in (snapshots(tmp_path) / "latest").iterdir()) == ["clients.csv", "connections.csv", "manifest.json"]


@SQLITE_ONLY
def test_a_snapshot_failing_midway_leaves_no_scratch_files(runner, directory_tenant, tmp_path):
    org = directory_tenant.directory.big_organization
    directory_tenant.tenant.fail_next(f"/api/v2/organizations/{org}/members", [404])
    result = runner("run-job", "snapshot")
    assert result.returncode == 1
    assert list(snapshots(tmp_path).iterdir()) == []  # neither a snapshot nor its hidden scratch directory


@SQLITE_ONLY
def test_an_unknown_resource_is_a_usage_error_before_anything_is_recorded(runner, directory_tenant):
    bad = runner("run-job", "snapshot", extra_env={"RUNNER_SNAPSHOT_RESOURCES": "roles,rolez"})
    assert bad.returncode == 2
    assert bad.stderr.startswith("runner: RUNNER_SNAPSHOT_RESOURCES: unknown resource 'rolez'; choose from clients, ")
    assert json.loads(runner("history", "--json").stdout) == []


@SQLITE_ONLY
def test_a_killed_snapshot_leaves_no_directory_and_latest_untouched(env, runner, directory_tenant, tmp_path):
    assert runner("run-job", "snapshot").returncode == 0
    yesterday(tmp_path)
    first = os.readlink(snapshots(tmp_path) / "latest")
    directory_tenant.tenant.latency = 0.5
    victim = start_runner(env, tmp_path, "run-job", "snapshot")
    # Three of the ten member lists answered: the rest are a round trip away at least.
    wait_for(lambda: len([r for r in directory_tenant.tenant.received if "/members" in r["path"] or "/users" in r["path"]]) >= 3)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert sorted(p.name for p in snapshots(tmp_path).iterdir() if not p.name.startswith(".")) == sorted([first, "latest"])
    assert os.readlink(snapshots(tmp_path) / "latest") == first
    directory_tenant.tenant.latency = 0
    again = runner("run-job", "snapshot")
    assert again.returncode == 0, again.stderr
    assert not [p for p in snapshots(tmp_path).iterdir() if p.name.startswith(".")]  # the next run cleaned up


@SQLITE_ONLY
def test_drift_between_two_snapshots_is_exactly_the_changes_made(runner, directory_tenant, tmp_path):
    assert runner("run-job", "snapshot").returncode == 0
    yesterday(tmp_path)
    made = directory_tenant.directory.apply_changes()
    result = runner("run-job", "snapshot", "--json")
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    changes = json.loads((snapshots(tmp_path) / "latest" / "changes.json").read_text())
    found = {name: {kind: [] for kind in ("added", "removed", "changed")} for name in made}
    for kind in ("added", "removed", "changed"):
        for record in changes[kind]:
            found.setdefault(record["resource"], {k: [] for k in ("added", "removed", "changed")})[kind].append(record["key"])
    for name, kinds in made.items():
        for kind, keys in kinds.items():
            assert sorted(found[name][kind]) == sorted(keys), (name, kind)
    assert sum(len(k) for kinds in made.values() for k in kinds.values()) == sum(run["result"]["changes"].values())
    assert len([n for n, kinds in made.items() if any(kinds.values())]) >= 4
    grant = next(r for r in changes["changed"] if r["resource"] == "client_grants")
    assert list(grant["fields"]) == ["scope"]
    diff = runner("diff", "--json")
    assert diff.returncode == 1 and json.loads(diff.stdout) == changes
    assert run["result"]["changes_by_resource"] == changes["summary"]


@SQLITE_ONLY
def test_drift_is_announced_to_the_notification_webhook(runner, directory_tenant, tmp_path):
    from test_pings import Sink

    sink = Sink()
    try:
        hook = {"RUNNER_NOTIFY_URL": sink.url + "/hook"}
        assert runner("run-job", "snapshot", extra_env=hook).returncode == 0
        assert sink.received == []  # the first snapshot: nothing to compare
        yesterday(tmp_path)
        directory_tenant.directory.apply_changes()
        assert runner("run-job", "snapshot", extra_env=hook).returncode == 0
        [(path, body)] = sink.received
        event = json.loads(body)
        assert path == "/hook" and event["event"] == "drift" and event["job"] == "snapshot"
        assert event["changes"]["role_members"]["added"] >= 1 and "changed (changes.json)" in event["text"]
    finally:
        sink.close()


@SQLITE_ONLY
def test_no_change_is_an_empty_drift_and_a_damaged_previous_is_no_failure(runner, directory_tenant, tmp_path):
    assert runner("run-job", "snapshot").returncode == 0
    yesterday(tmp_path, "20261123T023000Z")
    second = runner("run-job", "snapshot", "--json")
    run = json.loads(second.stdout)
    assert run["result"]["changes"] == {"added": 0, "removed": 0, "changed": 0}
    assert runner("diff").returncode == 0
    yesterday(tmp_path)
    (snapshots(tmp_path) / "latest" / "manifest.json").write_text("{not json")
    third = runner("run-job", "snapshot", "--json")
    assert third.returncode == 0, third.stderr
    result = json.loads(third.stdout)["result"]
    assert result["changes"] is None and result["drift"].startswith("compared with nothing: the snapshot ")
    assert "damaged" in result["drift"]


@SQLITE_ONLY
def test_on_essentials_each_endpoint_bucket_is_paced_on_its_own(runner, directory_tenant, tmp_path):
    # Per-endpoint buckets as Essentials has them, one far tighter than the rest: a pacer for the
    # tenant as a whole would spend the roomy buckets' headroom on the tight one and meet 429s.
    directory_tenant.buckets.enabled = True
    directory_tenant.buckets.limits.update({"Read Organization Members": (2, 120), "Read Organizations": (20, 2400),
                                            "Read Connections": (20, 2400), "Read Clients": (20, 2400),
                                            "All other Endpoints Combined": (20, 2400)})
    result = runner("run-job", "snapshot", "--json", extra_env={"RUNNER_RATE_LIMITS": "endpoint"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert directory_tenant.tenant.responses_429 == 0
    refused = [r for r in directory_tenant.tenant.received if r["status"] == 429]
    assert refused == []
    assert json.loads(result.stdout)["result"]["resources"]["organization_members"] > 0
    bad = runner("run-job", "snapshot", extra_env={"RUNNER_RATE_LIMITS": "essentials"})
    assert bad.returncode == 2 and bad.stderr.startswith("runner: RUNNER_RATE_LIMITS: 'essentials' is neither global")


@SQLITE_ONLY
def test_a_partial_snapshot_hides_no_drift_from_the_next_full_one(runner, directory_tenant, tmp_path):
    assert runner("run-job", "snapshot").returncode == 0
    yesterday(tmp_path, "20261123T023000Z")
    made = directory_tenant.directory.apply_changes()
    assert runner("run-job", "snapshot", "--param", "resources=roles").returncode == 0
    yesterday(tmp_path, "20261124T023000Z")  # `latest`: roles only, already changed
    result = runner("run-job", "snapshot", "--json")
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)["result"]
    expected = {name: {kind: len(keys) for kind, keys in kinds.items()} for name, kinds in made.items()}
    expected.update(roles={"added": 0, "removed": 0, "changed": 0}, clients={"added": 0, "removed": 0, "changed": 0})
    assert run["changes_by_resource"] == expected
    assert run["drift"].startswith("since 20261124T023000Z (roles) and 20261123T023000Z (clients, client_grants, ")
    changes = json.loads((snapshots(tmp_path) / "latest" / "changes.json").read_text())
    assert changes["from_by_resource"]["roles"] == "20261124T023000Z"
    assert changes["from_by_resource"]["role_members"] == "20261123T023000Z"
    diff = runner("diff", "--json")
    assert diff.returncode == 1 and json.loads(diff.stdout) == changes


@SQLITE_ONLY
def test_a_repeated_param_is_a_usage_error_naming_the_key(runner, directory_tenant):
    twice = runner("run-job", "snapshot", "--param", "resources=roles", "--param", "resources=clients")
    assert (twice.returncode, twice.stderr) == (2, "runner: --param resources is given more than once; give each key once\n")
    assert json.loads(runner("history", "--json").stdout) == []


@SQLITE_ONLY
def test_a_previous_snapshot_of_another_tenant_is_named_not_diffed(runner, directory_tenant, tmp_path):
    assert runner("run-job", "snapshot").returncode == 0
    yesterday(tmp_path)
    manifest = snapshots(tmp_path) / "20261124T023000Z" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(directory_tenant.base_url, "https://old.eu.auth0.com"))
    result = runner("run-job", "snapshot", "--json")
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)["result"]
    name = Path(run["path"]).name
    assert run["changes"] is None and not (snapshots(tmp_path) / name / "changes.json").exists()
    assert run["drift"] == (f"20261124T023000Z is a snapshot of https://old.eu.auth0.com and "
                            f"{name} of {directory_tenant.base_url}: two tenants, not drift; nothing compared")


@pytest.mark.parametrize("pings", ["none", "unanswered"])
def test_sigterm_ends_a_snapshot_at_once_asking_nothing_more(local_env, lone_tenant, tmp_path, pings):
    """Its table and list threads paged on after SIGTERM (59 requests, exit 11 s later): the pools
    were waited for, and the run's API calls went on while its end was recorded and its failure
    ping sent (up to 2 s)."""
    import socket
    import time

    sizes = lone_tenant.sizes  # the stand-in of this test alone: its sizes are this test's
    sizes.users, sizes.big_role_members, sizes.big_org_members = 1300, BIG, BIG
    lone_tenant.set_scopes(ALL_SCOPES)
    lone_tenant.directory = lone_tenant._directory()
    app = lone_tenant.tenant
    app.latency = 0.4
    env = {**local_env, **lone_tenant.settings()}
    if pings == "unanswered":
        with socket.socket() as probe:  # a port where nothing listens: the failure ping is waited for 2 s
            probe.bind(("127.0.0.1", 0))
            env["RUNNER_PING_URL"] = f"http://127.0.0.1:{probe.getsockname()[1]}/{{job}}"
    victim = start_runner(env, tmp_path, "run-job", "snapshot")
    wait_for(lambda: len([r for r in app.received if "/members" in r["path"] or "/users" in r["path"]]) >= 2)
    signalled, started = time.time(), time.monotonic()
    victim.send_signal(signal.SIGTERM)
    _, err = victim.communicate(timeout=40)
    took = time.monotonic() - started
    assert victim.returncode == 1, err
    assert [line for line in err.splitlines() if line.startswith("runner: ")] == [
        "runner: snapshot was interrupted; the run is recorded as failed"]
    time.sleep(1.0)  # what was in flight at the signal is answered (and recorded) by now
    asked_after = [r["path"] for r in app.received if r["at"] > signalled + 0.05]
    assert took < 4 and len(asked_after) <= 2, (took, asked_after)
    assert not snapshots(tmp_path).exists() or not [p for p in snapshots(tmp_path).iterdir() if not p.name.startswith(".")]


@SQLITE_ONLY
def test_tables_sorted_on_disk_are_byte_identical_to_tables_sorted_in_memory(directory_tenant, database_url, tmp_path):
    from batchrunner.jobs.snapshot import TABLES
    from batchrunner.outputs.tables import fetch_all, write
    from test_toolkit import _api

    api = _api(directory_tenant, database_url)
    spill, in_memory, on_disk = tmp_path / "spill", tmp_path / "in-memory", tmp_path / "on-disk"
    for path in (spill, in_memory, on_disk):
        path.mkdir()
    held = fetch_all(api, TABLES)
    spilled = fetch_all(api, TABLES, spill=spill, run_rows=7)  # runs of 7 rows: every table but the smallest spills
    assert not isinstance(spilled["organization_members"].rows, list)  # it did sort on disk, in runs
    assert len(list(spill.iterdir())) > 10
    for table in TABLES:
        assert len(spilled[table.name].rows) == len(held[table.name].rows) > 0
        assert write(on_disk, spilled[table.name]).read_bytes() == write(in_memory, held[table.name]).read_bytes(), table.name


def test_rows_of_equal_keys_keep_their_order_across_runs_on_disk(tmp_path):
    from batchrunner.auth0.lists import OFFSET, Listing
    from batchrunner.outputs.tables import Table, sorted_rows

    table = Table("t", Listing("t", "t", OFFSET, ()), columns=[("k", "k"), ("n", "n")], key=("k",))
    items = [{"k": "ba"[i % 2] + str(i % 3), "n": i} for i in range(40)]
    spilled = sorted_rows(table, items, spill=tmp_path, run_rows=3)
    assert list(spilled) == sorted_rows(table, items) == sorted(map(tuple, ([i["k"], str(i["n"])] for i in items)), key=lambda r: r[0])
    assert list(spilled) == list(spilled)  # read again, merged again
    spilled.remove()
    assert not list(tmp_path.iterdir())


def test_changes_written_as_found_are_the_bytes_of_the_changes_held(tmp_path):
    from batchrunner.outputs.drift import Changes, ChangesFile

    changes = Changes("20261124T023000Z", "20261125T023000Z", sources={"roles": "20261124T023000Z"}, not_compared=["x"])
    changes.summary = {"roles": {"added": 2, "removed": 0, "changed": 1}, "connections": {"added": 0, "removed": 0, "changed": 0}}
    found = ChangesFile(tmp_path)
    for kind, change in [("added", {"resource": "roles", "key": ["rol_1"], "row": {"id": "rol_1", "name": "Zoë \"q\"\n"}}),
                         ("added", {"resource": "roles", "key": ["rol_2"], "row": {}}),
                         ("changed", {"resource": "roles", "key": ["rol_3"], "fields": {"name": ["a", "b"]}})]:
        found.record(kind, change)
        getattr(changes, kind).append(change)
    streamed = tmp_path / "streamed.json"
    with open(streamed, "w", encoding="utf-8") as handle:
        found.write(handle, changes)
    found.close()
    assert streamed.read_text(encoding="utf-8") == json.dumps(changes.as_json(), indent=2, ensure_ascii=False) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamed.json"]

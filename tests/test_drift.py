"""Drift between snapshots (README, "Drift: what changed since the last snapshot"): `runner diff` and its JSON, on snapshot directories
written with the toolkit's own writer."""

from __future__ import annotations

import json

import pytest

from batchrunner.outputs.writers import write_rows
from conftest import SQLITE_ONLY

ROLES_KEY = ["id"]
MEMBERS_KEY = ["role_id", "user_id"]


def snapshot(root, name, roles, members=None, tenant=None):
    """A snapshot directory as the job writes it; without `members`, a partial one of the roles only."""
    directory = root / "exports" / "snapshots" / name
    directory.mkdir(parents=True)
    write_rows(directory / "roles.csv", ["id", "name", "description"], sorted(roles))
    resources = {"roles": {"file": "roles.csv", "rows": len(roles), "key": ROLES_KEY}}
    if members is not None:
        write_rows(directory / "role_members.csv", ["role_id", "role_name", "user_id", "email"], sorted(members))
        resources["role_members"] = {"file": "role_members.csv", "rows": len(members), "key": MEMBERS_KEY}
    manifest = {"resources": resources, **({"tenant": tenant} if tenant else {})}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


ROLES = [["rol_1", "Admin", "all of it"], ["rol_2", "Viewer", "reads"]]
MEMBERS = [["rol_1", "Admin", "auth0|a", "a@example.com"], ["rol_2", "Viewer", "auth0|b", "b@example.com"]]


@pytest.fixture
def two_snapshots(tmp_path):
    snapshot(tmp_path, "20261124T023000Z", ROLES, MEMBERS)
    roles = [["rol_1", "Admin", "everything"], ["rol_3", "Auditor", "'=reads logs"]]
    members = MEMBERS + [["rol_1", "Admin", "auth0|c", "c@example.com"]]
    snapshot(tmp_path, "20261125T023000Z", roles, members)
    return tmp_path


@SQLITE_ONLY
def test_diff_reports_added_removed_and_changed_rows_and_exits_1(local_runner, two_snapshots):
    result = local_runner("diff", "--json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout) == {
        "from": "20261124T023000Z",
        "to": "20261125T023000Z",
        "summary": {"roles": {"added": 1, "removed": 1, "changed": 1},
                    "role_members": {"added": 1, "removed": 0, "changed": 0}},
        "added": [
            {"resource": "roles", "key": ["rol_3"], "row": {"id": "rol_3", "name": "Auditor", "description": "'=reads logs"}},
            {"resource": "role_members", "key": ["rol_1", "auth0|c"],
             "row": {"role_id": "rol_1", "role_name": "Admin", "user_id": "auth0|c", "email": "c@example.com"}},
        ],
        "removed": [{"resource": "roles", "key": ["rol_2"], "row": {"id": "rol_2", "name": "Viewer", "description": "reads"}}],
        "changed": [{"resource": "roles", "key": ["rol_1"], "fields": {"description": ["all of it", "everything"]}}],
        "from_by_resource": {"roles": "20261124T023000Z", "role_members": "20261124T023000Z"},
        "not_compared": [],
    }


@SQLITE_ONLY
def test_diff_for_people_names_each_change(local_runner, two_snapshots):
    result = local_runner("diff", "20261124T023000Z", str(two_snapshots / "exports" / "snapshots" / "20261125T023000Z"))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "Changes from 20261124T023000Z to 20261125T023000Z:",
        "roles: 1 added, 1 removed, 1 changed",
        "  + rol_3  name=Auditor, description='=reads logs",
        "  - rol_2  name=Viewer, description=reads",
        "  ~ rol_1",
        "      description: 'all of it' -> 'everything'",
        "role_members: 1 added, 0 removed, 0 changed",
        "  + rol_1 / auth0|c  role_name=Admin, email=c@example.com",
    ]


@SQLITE_ONLY
def test_no_change_exits_0(local_runner, tmp_path):
    snapshot(tmp_path, "20261124T023000Z", ROLES, MEMBERS)
    snapshot(tmp_path, "20261125T023000Z", ROLES, MEMBERS)
    result = local_runner("diff")
    assert (result.returncode, result.stdout) == (0, "Changes from 20261124T023000Z to 20261125T023000Z:\nno change\n")
    assert json.loads(local_runner("diff", "--json").stdout)["summary"] == {
        "roles": {"added": 0, "removed": 0, "changed": 0}, "role_members": {"added": 0, "removed": 0, "changed": 0}}


@SQLITE_ONLY
def test_a_missing_or_damaged_snapshot_is_trouble_exit_2(local_runner, tmp_path):
    snapshot(tmp_path, "20261124T023000Z", ROLES, MEMBERS)
    only_one = local_runner("diff")
    assert only_one.returncode == 2 and "need two snapshots to compare" in only_one.stderr
    damaged = snapshot(tmp_path, "20261125T023000Z", ROLES, MEMBERS)
    (damaged / "roles.csv").write_text("id,name\nrol_9,x\nrol_1,y\n")
    result = local_runner("diff")
    assert result.returncode == 2
    assert result.stderr.startswith("runner: ") and "is not sorted by id" in result.stderr and "damaged" in result.stderr
    missing = local_runner("diff", "20261124T023000Z", "no-such")
    assert missing.returncode == 2 and "no snapshot 'no-such'" in missing.stderr


@SQLITE_ONLY
def test_each_resource_is_compared_with_the_newest_snapshot_that_holds_it(local_runner, tmp_path):
    # A partial snapshot (`--param resources=roles`) between two full ones hides no change to the members.
    snapshot(tmp_path, "20261123T023000Z", ROLES, MEMBERS)
    snapshot(tmp_path, "20261124T023000Z", ROLES)
    snapshot(tmp_path, "20261125T023000Z", ROLES, MEMBERS + [["rol_1", "Admin", "auth0|c", "c@example.com"]])
    result = local_runner("diff")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "Changes from 20261124T023000Z to 20261125T023000Z:",
        "role_members: 1 added, 0 removed, 0 changed (since 20261123T023000Z)",
        "  + rol_1 / auth0|c  role_name=Admin, email=c@example.com",
    ]
    as_json = json.loads(local_runner("diff", "--json").stdout)
    assert as_json["from_by_resource"] == {"roles": "20261124T023000Z", "role_members": "20261123T023000Z"}
    assert as_json["not_compared"] == []
    chosen = local_runner("diff", "20261124T023000Z", "20261125T023000Z")
    assert chosen.returncode == 0
    assert chosen.stdout.splitlines() == ["Changes from 20261124T023000Z to 20261125T023000Z:", "no change",
                                          "not compared (no snapshot to compare them with): role_members"]


@SQLITE_ONLY
def test_a_file_unlike_its_manifest_is_named_damaged_not_read_as_drift(local_runner, tmp_path):
    roles = ROLES + [["rol_3", "Auditor", "reads logs"]]
    snapshot(tmp_path, "20261124T023000Z", roles, MEMBERS)
    damaged = snapshot(tmp_path, "20261125T023000Z", roles, MEMBERS) / "roles.csv"
    whole = damaged.read_bytes()
    damaged.write_bytes(whole[:whole.index(b"rol_3")])  # the last row lost
    result = local_runner("diff")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"runner: {damaged} holds 2 rows where its manifest.json says 3; the snapshot is damaged: restore it from a backup, or move it out of the snapshots folder\n"
    damaged.write_bytes(whole[:whole.index(b"reads logs")])  # cut inside the last row
    result = local_runner("diff")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"runner: {damaged} ends inside a row (cut short); the snapshot is damaged: restore it from a backup, or move it out of the snapshots folder\n"
    damaged.write_bytes(whole.replace(b"Viewer,", b"Viewer;"))  # a row of two columns
    result = local_runner("diff")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"runner: {damaged} line 3 does not have the header's 3 columns; the snapshot is damaged: restore it from a backup, or move it out of the snapshots folder\n"


@SQLITE_ONLY
def test_snapshots_of_two_tenants_are_said_to_be_so_not_diffed(local_runner, tmp_path):
    snapshot(tmp_path, "20261124T023000Z", ROLES, MEMBERS, tenant="https://old.eu.auth0.com")
    snapshot(tmp_path, "20261125T023000Z", ROLES[:1], MEMBERS, tenant="https://new.eu.auth0.com")
    for args in ((), ("20261124T023000Z", "20261125T023000Z")):
        result = local_runner("diff", *args)
        assert (result.returncode, result.stdout) == (2, ""), args
        assert result.stderr == ("runner: 20261124T023000Z is a snapshot of https://old.eu.auth0.com and 20261125T023000Z "
                                 "of https://new.eu.auth0.com: two tenants, not drift; nothing compared\n")

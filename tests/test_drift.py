"""Drift between snapshots (SPEC section 13): `runner diff` and its JSON, on snapshot directories
written with the toolkit's own writer."""

from __future__ import annotations

import json

import pytest

from batchrunner.outputs import write_rows
from conftest import SQLITE_ONLY

ROLES_KEY = ["id"]
MEMBERS_KEY = ["role_id", "user_id"]


def snapshot(root, name, roles, members):
    directory = root / "exports" / "snapshots" / name
    directory.mkdir(parents=True)
    write_rows(directory / "roles.csv", ["id", "name", "description"], sorted(roles))
    write_rows(directory / "role_members.csv", ["role_id", "role_name", "user_id", "email"], sorted(members))
    manifest = {"resources": {"roles": {"file": "roles.csv", "rows": len(roles), "key": ROLES_KEY},
                              "role_members": {"file": "role_members.csv", "rows": len(members), "key": MEMBERS_KEY}}}
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

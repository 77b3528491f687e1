"""The export folder: created 0750 whatever the umask, a warning when others may write into it, and
one line (no traceback, no temporary file name) when it cannot be written or fills up mid-export."""

from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import RUNNER
from test_export import exports

# Nothing here concerns the database: SQLite alone keeps the suite short.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def verdict(result) -> str:
    return result.stderr.strip().splitlines()[-1]


@SQLITE_ONLY
def test_the_export_folder_and_its_parents_are_created_0750_under_umask_000(runner, tenant, tmp_path):
    folder = tmp_path / "a" / "b" / "exports"
    result = runner("run-job", "export-clients", extra_env={"RUNNER_EXPORT_DIR": str(folder)}, preexec_fn=lambda: os.umask(0))
    assert result.returncode == 0, result.stderr
    assert [oct(stat.S_IMODE(d.stat().st_mode)) for d in (tmp_path / "a", tmp_path / "a" / "b", folder)] == ["0o750"] * 3
    assert "writable by" not in result.stderr


@SQLITE_ONLY
def test_a_folder_others_may_write_into_is_warned_about(runner, tenant, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    folder.chmod(0o777)
    result = runner("run-job", "export-clients")
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert warning.endswith(
        f" WARNING job=export-clients run=1 RUNNER_EXPORT_DIR {folder} is writable by its group and others (mode 0777): "
        f"they could replace the exports; chmod go-w {folder}"
    )


def as_unprivileged(env, tmp_path, *args):
    """`runner ARGS` without root's power to write anywhere (root keeps its uid, loses DAC override)."""
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    return subprocess.run([*prefix, sys.executable, str(RUNNER), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


@SQLITE_ONLY
def test_an_unwritable_export_folder_is_one_line_naming_the_setting(env, runner, tenant, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir(mode=0o750)
    folder.chmod(0o550)
    result = as_unprivileged(env, tmp_path, "run-job", "export-clients")
    assert result.returncode == 1
    assert verdict(result) == (
        f"runner: export-clients failed (run 1): RUNNER_EXPORT_DIR: cannot write exports to {folder}: Permission denied; "
        "make it a folder the runner's user can write, or set RUNNER_EXPORT_DIR to one"
    )
    assert "Traceback" not in result.stderr and ".partial" not in result.stderr
    [run] = json.loads(runner("history", "--json").stdout)
    assert run["status"] == "failed" and run["error"].startswith("RUNNER_EXPORT_DIR: cannot write exports to")


@SQLITE_ONLY
def test_a_disk_that_fills_up_mid_export_is_one_line_and_leaves_the_old_files(runner, tenant, tmp_path):
    app = tenant.tenant
    app.set_clients(100)
    assert runner("run-job", "export-clients").returncode == 0
    before = exports(tmp_path)
    app.set_clients(3000)  # about 1 MB of CSV; the process may write files of 256 KB at most
    limit = 256 * 1024
    result = runner("run-job", "export-clients", preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert result.returncode == 1
    assert verdict(result) == (
        f"runner: export-clients failed (run 2): RUNNER_EXPORT_DIR: cannot write exports to {tmp_path / 'exports'}: "
        "File too large; free some space there, or set RUNNER_EXPORT_DIR to a folder on another disk"
    )
    assert "Traceback" not in result.stderr and ".partial" not in result.stderr
    assert exports(tmp_path) == before


@SQLITE_ONLY
@pytest.mark.parametrize("job, scopes", [
    ("snapshot", ["read:clients", "read:client_grants", "read:resource_servers", "read:roles", "read:users",
                  "read:connections", "read:organizations", "read:organization_members"]),
    ("export-logs", ["read:logs"]),
    ("export-users", ["read:users"]),
])
def test_every_job_finds_an_unwritable_folder_in_one_line_before_asking_auth0_anything(env, runner, tenant, tmp_path, job, scopes):
    tenant.set_scopes(scopes)
    folder = tmp_path / "exports"
    folder.mkdir(mode=0o750)
    folder.chmod(0o550)
    result = as_unprivileged(env, tmp_path, "run-job", job)
    assert result.returncode == 1
    assert verdict(result) == (
        f"runner: {job} failed (run 1): RUNNER_EXPORT_DIR: cannot write exports to {folder}: Permission denied; "
        "make it a folder the runner's user can write, or set RUNNER_EXPORT_DIR to one"
    )
    assert "Traceback" not in result.stderr and "PermissionError" not in result.stderr
    assert (tenant.tenant.token_requests, tenant.tenant.api_requests) == (0, 0)  # no token, no bulk export started
    [run] = json.loads(runner("history", "--json").stdout)
    assert run["error"].startswith(f"RUNNER_EXPORT_DIR: cannot write exports to {folder}: Permission denied")


@SQLITE_ONLY
def test_snapshot_and_log_archive_folders_are_made_0750_under_umask_000(runner, tenant, tmp_path):
    tenant.set_scopes(["read:clients", "read:client_grants", "read:resource_servers", "read:roles", "read:users",
                       "read:connections", "read:organizations", "read:organization_members", "read:logs"])
    for job in ("snapshot", "export-logs"):
        result = runner("run-job", job, preexec_fn=lambda: os.umask(0))
        assert result.returncode == 0, result.stderr
        assert "writable by" not in result.stderr
    exports_dir = tmp_path / "exports"
    folders = [p for p in exports_dir.rglob("*") if p.is_dir() and not p.is_symlink()]
    assert {p.relative_to(exports_dir).parts[0] for p in folders} == {"snapshots", "logs"}
    assert any(len(p.relative_to(exports_dir).parts) == 4 for p in folders)  # logs/YYYY/MM/DD
    assert {p.relative_to(exports_dir).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in [exports_dir, *folders]} == \
        {p.relative_to(exports_dir).as_posix(): "0o750" for p in [exports_dir, *folders]}


@SQLITE_ONLY
def test_a_snapshot_folder_others_may_write_into_is_warned_about(runner, tenant, tmp_path):
    tenant.set_scopes(["read:clients"])
    folder = tmp_path / "exports" / "snapshots"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    result = runner("run-job", "snapshot", "--param", "resources=clients")
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert warning.endswith(f" RUNNER_EXPORT_DIR {folder} is writable by its group and others (mode 0777): "
                            f"they could replace the exports; chmod go-w {folder}")


@SQLITE_ONLY
def test_the_leftover_cleaner_leaves_another_jobs_file_whose_name_starts_alike(runner, tenant, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    mine = [folder / ".clients-20261201T020000Z.csv.a1b2c3d4.partial", folder / ".clients-latest.csv.x_y9z8w7.partial"]
    theirs = [folder / ".clients-spa-20261207T020000Z.csv.k3j4h5g6.partial", folder / ".clients-spa-latest.csv.q1w2e3r4.partial"]
    for path in mine + theirs:
        path.write_text("x")
    result = runner("run-job", "export-clients")
    assert result.returncode == 0, result.stderr
    assert [p.exists() for p in mine + theirs] == [False, False, True, True]
    assert result.stderr.count("left by an interrupted run") == 2

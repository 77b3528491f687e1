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

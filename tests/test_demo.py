"""scripts/demo, run as a new user runs it: again and again, each run ending 0 with no false drift."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def checkout(tmp_path: Path) -> Path:
    """The demo script in a checkout of its own whose .venv/bin/runner is this runner (no install)."""
    top = tmp_path / "checkout"
    (top / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "demo", top / "scripts" / "demo")
    (top / "scripts" / "setup").write_text("#!/bin/sh\n")  # .venv is ready: nothing to install
    (top / ".venv" / "bin").mkdir(parents=True)
    runner = top / ".venv" / "bin" / "runner"
    runner.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "runner.py"}" "$@"\n')
    for script in (top / "scripts" / "setup", top / "scripts" / "demo", runner):
        script.chmod(0o755)
    return top


def test_the_demo_runs_again_and_again_each_time_ending_0_with_no_false_drift(clean_env, tmp_path):
    top = checkout(tmp_path)
    env = {k: v for k, v in clean_env.items() if k != "RUNNER_EXPORT_DIR"}  # the demo keeps its own
    for attempt in range(2):
        demo = subprocess.run([str(top / "scripts" / "demo")], cwd=top, env=env, capture_output=True, text=True, timeout=180)
        assert demo.returncode == 0, (attempt, demo.stdout[-2000:], demo.stderr[-2000:])
        assert "snapshot succeeded (run 2): " in demo.stdout and "the first snapshot: nothing to compare it with" in demo.stdout
        assert "changed (changes.json)" not in demo.stdout + demo.stderr
        assert "export-logs succeeded (run 3)" in demo.stdout
        # Two tenants at once: each its own run and folder, and the history's TENANT column.
        assert "export-clients for tenant-1 succeeded (run 5): 20 rows written to " in demo.stdout
        assert "export-clients for tenant-2 succeeded (run 6): 20 rows written to " in demo.stdout
        assert "each tenant's CSV in its own folder: tenant-1/clients-latest.csv tenant-2/clients-latest.csv" in demo.stdout
        assert "RUN  JOB             TENANT    TRIGGER  STATUS" in demo.stdout
        assert "RUNNER_TENANTS_FILE" not in demo.stderr and "warning" not in demo.stderr
    assert "Starting afresh: removed var/demo (the last demo's database and exports)" in demo.stdout

"""Shared by the bench scripts: run the real `runner` command in processes against a stand-in tenant."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNER = [sys.executable, str(ROOT / "runner.py")]
sys.path.insert(0, str(ROOT))


def clean_env(sandbox, state: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH0_", "RUNNER_", "STATE_DIRECTORY", "CREDENTIALS_DIRECTORY"))}
    env.update(sandbox.settings() if sandbox else {})
    env.update({
        "RUNNER_DATABASE_URL": f"sqlite:///{state / 'runner.db'}",
        "RUNNER_EXPORT_DIR": str(state / "exports"),
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def state_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="runner-bench-"))


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def median(values):
    return statistics.median(values)


def run(args, env, **kw):
    return subprocess.run(RUNNER + list(args), env=env, capture_output=True, text=True, **kw)


def measured(args, env, cwd=None):
    """Run `runner ARGS` to its end: (exit code, stdout, stderr, wall seconds, peak RSS in MB).

    The peak is the child's own (bench/_peak.py says why not wait4's)."""
    import os
    import time

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.NamedTemporaryFile("r", prefix="runner-bench-peak-") as peak:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_peak.py"), *args],
                                env={**env, "BENCH_PEAK_FILE": peak.name}, stdout=out, stderr=err, cwd=cwd)
        proc.wait()
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), wall, int(peak.read() or 0) / 1024  # KiB

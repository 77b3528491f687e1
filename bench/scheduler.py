#!/usr/bin/env python3
"""Scheduler figures (SPEC section 10): fire lateness (start minus scheduled time) p50 and p99 over 30
fires of a job every second; then the daemon's CPU time over 60 idle seconds and its RSS.

Usage: python bench/scheduler.py [--idle-seconds N]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from _common import RUNNER, ROOT, clean_env, percentile, run, state_dir

JOBS = ROOT / "tests" / "fixture_jobs"
OFF = {f"RUNNER_SCHEDULE_{name}": "off" for name in ("EXPORT_CLIENTS", "HELLO", "SLEEPY", "FAILING", "LEAKY", "PING")}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def lateness() -> None:
    env = clean_env(None, state_dir(), RUNNER_JOBS=JOBS, **{**OFF, "RUNNER_SCHEDULE_HELLO": "* * * * * *"})
    daemon = subprocess.Popen(RUNNER + ["serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    runs = []
    while len(runs) < 31 and time.monotonic() < deadline:
        time.sleep(1)
        runs = json.loads(run(["history", "--job", "hello", "--json", "--limit", "100"], env).stdout)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    runs = [r for r in runs if r["trigger"] == "schedule"][:30]
    late = [(when(r["started_at"]) - when(r["scheduled_for"])).total_seconds() * 1000 for r in runs]
    print(f"fire lateness over {len(late)} fires: p50 {percentile(late, 50):.1f} ms, p99 {percentile(late, 99):.1f} ms")


def idle(seconds: float) -> None:
    env = clean_env(None, state_dir(), RUNNER_JOBS=JOBS, **OFF)
    env["RUNNER_SCHEDULE_HELLO"] = "0 3 * * *"
    daemon = subprocess.Popen(RUNNER + ["serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)  # start-up is not idling
    before = cpu_seconds(daemon.pid)
    time.sleep(seconds)
    used = cpu_seconds(daemon.pid) - before
    rss = rss_mb(daemon.pid)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    print(f"idle daemon: {used:.3f} s CPU over {seconds:.0f} s ({100 * used / seconds:.3f} %), RSS {rss:.1f} MB")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    seconds = float(sys.argv[sys.argv.index("--idle-seconds") + 1]) if "--idle-seconds" in sys.argv else 60.0
    lateness()
    idle(seconds)


if __name__ == "__main__":
    main()

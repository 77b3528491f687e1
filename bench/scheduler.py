#!/usr/bin/env python3
"""Scheduler figures (README, "Development"): fire lateness (start minus scheduled time) p50 and p99 over 30
fires of a job every second; then the daemon's CPU time over 60 idle seconds and its RSS.

With --metrics the idle daemon serves /metrics and /healthz (RUNNER_METRICS_ADDRESS on loopback);
after the idle window it is scraped once and its RSS measured again.

Usage: python bench/scheduler.py [--idle-seconds N] [--metrics]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _common import RUNNER, ROOT, clean_env, percentile, state_dir

from batchrunner.runs import records as runs
from batchrunner.store.database import open_database

JOBS = ROOT / "tests" / "fixture_jobs"
OFF = {f"RUNNER_SCHEDULE_{name}": "off" for name in ("EXPORT_CLIENTS", "HELLO", "SLEEPY", "FAILING", "LEAKY", "PING", "STUBBORN", "DRIFTY")}


def lateness() -> None:
    env = clean_env(None, state_dir(), RUNNER_JOBS=JOBS, **{**OFF, "RUNNER_SCHEDULE_HELLO": "* * * * * *"})
    daemon = subprocess.Popen(RUNNER + ["serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = open_database(env["RUNNER_DATABASE_URL"])
    deadline = time.monotonic() + 90
    fired = []
    while len(fired) < 30 and time.monotonic() < deadline:
        time.sleep(1)
        # From the database: the JSON output rounds times to the second.
        fired = [r for r in runs.history(db, "hello", limit=100) if r["trigger"] == "schedule"]
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    late = [(r["started_at"] - r["scheduled_for"]).total_seconds() * 1000 for r in fired[:30]]
    print(f"fire lateness over {len(late)} fires: p50 {percentile(late, 50):.1f} ms, p99 {percentile(late, 99):.1f} ms")


def idle(seconds: float, with_metrics: bool = False) -> None:
    env = clean_env(None, state_dir(), RUNNER_JOBS=JOBS, **OFF)
    env["RUNNER_SCHEDULE_HELLO"] = "0 3 * * *"
    port = free_port()
    if with_metrics:
        env["RUNNER_METRICS_ADDRESS"] = f"127.0.0.1:{port}"
    daemon = subprocess.Popen(RUNNER + ["serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)  # start-up is not idling
    before = cpu_seconds(daemon.pid)
    time.sleep(seconds)
    used = cpu_seconds(daemon.pid) - before
    rss = rss_mb(daemon.pid)
    scraped = ""
    if with_metrics:
        import urllib.request

        started = time.monotonic()
        size = len(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read())
        took = time.monotonic() - started
        scraped = f"; first scrape {size} bytes in {took * 1000:.0f} ms, RSS after it {rss_mb(daemon.pid):.1f} MB"
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    label = "idle daemon with metrics" if with_metrics else "idle daemon"
    print(f"{label}: {used:.3f} s CPU over {seconds:.0f} s ({100 * used / seconds:.3f} %), RSS {rss:.1f} MB{scraped}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    idle(seconds, "--metrics" in sys.argv)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Status page figures (README, "Status page"): `GET /` over HTTP, as `serve` answers it, with 100
tenants, 5 jobs and 10,000 runs recorded (every 25th failed, with results for export-logs, snapshot
and tenant-checks): the median and the worst of 20 requests (bar: under 200 ms), and the page's size.

Usage: python bench/status_page.py [--runs N] [--tenants N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from _common import median, percentile, state_dir

from sqlalchemy import insert

from batchrunner.operating import health
from batchrunner.operating.status_page import StatusPage
from batchrunner.store.database import open_database
from batchrunner.store.schema import runs

JOBS = ("export-clients", "export-logs", "export-users", "snapshot", "tenant-checks")
RESULTS = {"export-logs": {"events": 120, "newest_event_at": "2026-12-07T11:58:00.000Z"},
           "snapshot": {"changes": {"added": 1, "removed": 0, "changed": 2}},
           "tenant-checks": {"findings": {"high": 1, "low": 3}, "new": 1, "resolved": 0}}
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
BAR_MS = 200.0
CLIENT = """
import json, sys, time, urllib.request
times, size = [], 0
for _ in range(21):
    started = time.perf_counter()
    with urllib.request.urlopen(sys.argv[1], timeout=30) as answer:
        size = len(answer.read())
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps([times, size]))
"""


def fill(db, total: int, tenants: int) -> None:
    rows = []
    for n in range(total):
        job, tenant = JOBS[n % len(JOBS)], f"tenant-{n // len(JOBS) % tenants:03d}"
        started = NOW - timedelta(minutes=total - n)
        failed = n % 25 == 0
        rows.append(dict(job=job, tenant=tenant, trigger="schedule", status="failed" if failed else "succeeded",
                         scheduled_for=started, started_at=started, finished_at=started + timedelta(seconds=3 + n % 40),
                         host="bench", pid=1, error="HTTP 500 from the Management API" if failed else None,
                         result=None if failed or job not in RESULTS else json.dumps(RESULTS[job]), params=None))
    with db.write() as conn:
        conn.execute(insert(runs), rows)


class Timed(StatusPage):
    """The page's CPU time in the server's thread: what a request costs whatever else the machine
    runs (on 2 busy cores the wall time is mostly waiting for a core)."""

    cpu_ms: list[float] = []

    def index(self) -> str:
        started = time.thread_time()
        try:
            return super().index()
        finally:
            self.cpu_ms.append((time.thread_time() - started) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{state_dir() / 'runner.db'}"
    db = open_database(url)
    fill(db, args.runs, args.tenants)
    plan = {(job, f"tenant-{t:03d}"): NOW + timedelta(minutes=t % 60) for job in JOBS for t in range(args.tenants)}
    page = Timed(db, lambda: plan, lambda: NOW)
    server = health.start(health.Address("127.0.0.1", 0), health.app(health.Health(db, lambda: None), lambda: b"", page), 0.1)
    base = f"http://127.0.0.1:{server.server_port}/"
    try:
        # The client in its own process, as a browser is: in this one it would contend for the GIL.
        done = subprocess.run([sys.executable, "-c", CLIENT, base], capture_output=True, text=True, check=True)
        times, size = json.loads(done.stdout)
        times, cpu = times[1:], Timed.cpu_ms[1:]  # the first warms SQLAlchemy's statement cache
    finally:
        server.shutdown()
        server.server_close()
    print(f"GET / with {args.tenants} tenants, {len(JOBS)} jobs, {args.runs:,} runs ({url.split(':')[0]}): "
          f"median {median(times):.0f} ms, p95 {percentile(times, 95):.0f} ms, worst {max(times):.0f} ms; "
          f"CPU in the server's thread median {median(cpu):.0f} ms; page {size / 1024:.0f} KiB (bar: under {BAR_MS:.0f} ms); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if median(times) >= BAR_MS:
        sys.exit(1)


if __name__ == "__main__":
    main()

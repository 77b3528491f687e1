#!/usr/bin/env python3
"""Two jobs at once in one `serve` against one bucket (README, "Write your own job" and "Development"): `export-clients` and a
second job from a file in RUNNER_JOBS that also pages /clients, both scheduled for the same second,
against the stand-in tenant with a rate limit. Prints the 429s the tenant answered (bar: 0) and
each run's time beside the floor for the two exports' pages together: on a new database, and on one
an earlier export taught the bucket (the pacer then lets more out before its first answer).

Usage: python bench/two_jobs.py [--apps N] [--rate R --burst B] [--latency S]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone

from _common import RUNNER, clean_env, state_dir

from batchrunner.runs import records as runs
from batchrunner.sandbox import Sandbox
from batchrunner.store.database import open_database

SECOND_JOB = textwrap.dedent('''
    from batchrunner.runs.registry import job

    @job("count-clients", schedule="0 3 * * *", description="Count applications by type (bench/two_jobs.py).")
    def count_clients(ctx):
        counts = {}
        for client in ctx.api.paginate("clients", "clients", {"is_global": "false"}, unique="client_id"):
            counts[client.get("app_type")] = counts.get(client.get("app_type"), 0) + 1
        return counts
''')
JOBS = ("export-clients", "count-clients")


def both_at_once(sandbox, apps: int, rate: float, burst: int, latency: float, warm: bool) -> None:
    sandbox.reset()
    tenant = sandbox.tenant
    tenant.set_clients(apps)
    tenant.latency, tenant.rate, tenant.burst = latency, rate, burst
    state = state_dir()
    (state / "jobs").mkdir()
    (state / "jobs" / "count_clients.py").write_text(SECOND_JOB)
    env = clean_env(sandbox, state, RUNNER_JOBS=state / "jobs")
    if warm:
        subprocess.run(RUNNER + ["run-job", "export-clients"], env=env, check=True, capture_output=True)
        time.sleep(burst / rate)  # full again
        tenant.responses_429 = 0
    # A second far enough ahead for serve to start and fetch its token (the bucket is not touched).
    fire = (datetime.now(timezone.utc).second + 8) % 60
    env.update(RUNNER_SCHEDULE_EXPORT_CLIENTS=f"{fire} * * * * *", RUNNER_SCHEDULE_COUNT_CLIENTS=f"{fire} * * * * *")
    daemon = subprocess.Popen(RUNNER + ["serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    db = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if daemon.poll() is not None:
                sys.exit(f"serve ended: {daemon.stderr.read()}")
            db = db or open_database(env["RUNNER_DATABASE_URL"])
            done = [r for job in JOBS for r in runs.history(db, job, limit=1) if r["status"] != "running"]
            if len(done) == len(JOBS):
                break
        else:
            sys.exit("the two runs did not finish within 2 minutes")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    pages = 2 * -(-apps // 100)
    floor = (pages - burst) / rate + latency
    print(f"two jobs at once in one serve, {'the bucket known' if warm else 'new database'}, {apps} applications each "
          f"({pages} pages in all), {rate}/s, burst {burst}, {latency * 1000:.0f} ms: 429s {tenant.responses_429}  (bar: 0)")
    for r in done:
        seconds = (r["finished_at"] - r["started_at"]).total_seconds()
        print(f"  {r['job']}: {r['status']}, {seconds:.2f} s (start to end); floor for both together {floor:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=5_000)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--burst", type=int)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    tenants = [(args.rate, args.burst or 10)] if args.rate else [(20, 10), (50, 50), (16, 50)]
    with Sandbox(clients=10).start() as sandbox:
        for rate, burst in tenants:
            for warm in (False, True):
                both_at_once(sandbox, args.apps, rate, burst, args.latency, warm)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Export figures (README, "Development"): `runner run-job export-clients` as a user runs it, a whole
process from start to exit, against the stand-in tenant (10,000 applications, 100 ms latency, a warm
token cache: `runner token print` first, with the same database).

1. At 2, 16, 20 and 50 requests/s, after an earlier export against the same database (as a nightly
   job runs: the bucket it learned is remembered, batchrunner/auth0/ratelimits.py), and once on a new database (bursts 2, 50, 10, 50, as on Free, Enterprise production, the README's
   example and a 50/s tenant): the wall time beside the floor the rate limit allows,
   (pages - burst) / rate + latency, plus a bare interpreter of the same venv importing
   `sqlalchemy, requests, click` (the start-up no Python tool on these libraries avoids; median of a
   few). Their ratio (bars: 1.05 at 20/s, 1.10 at 50/s; 2 and 16 for the record), the 429s received
   (bar: 0), and start to first request beside the bare imports (bar: within 1.25 times).
2. Peak RSS of the child for 1,000 and 100,000 applications (bar: within 20 MB of each other).

Usage: python bench/export.py [--repeat N] [--skip-slow] [--rate R ...] [--skip-memory] [--only-memory]
  --repeat N     runs per rate, the median reported (default 3; the 2/s run, 50 s, runs once)
  --skip-slow    leave out the 2/s run
  --rate R       only the runs at R requests/s (repeatable)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from _common import RUNNER, clean_env, median, state_dir

from batchrunner.sandbox import Sandbox

LATENCY, APPS, PER_PAGE = 0.1, 10_000, 100
# (rate, burst, bar on the ratio or None for the record)
RATES = [(2, 2, None), (16, 50, None), (20, 10, 1.05), (50, 50, 1.10)]
STARTUP_BAR = 1.25


def bare_imports(runs: int) -> float:
    """Median wall of `python -c "import sqlalchemy, requests, click"` in this venv."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sqlalchemy, requests, click"], check=True)
        times.append(time.perf_counter() - t)
    return median(times)


def whole_export(sandbox, rate: float, burst: int, warm: bool = True) -> dict:
    """One `run-job export-clients` on a warm token cache: wall, start to first request, 429s.

    `warm`: an earlier export against this database learned the tenant's bucket (ratelimits.py), as
    last night's did for tonight's; the bucket is full again when the measured one starts."""
    sandbox.reset()
    tenant = sandbox.tenant
    tenant.latency = LATENCY
    env = clean_env(sandbox, state_dir())
    subprocess.run(RUNNER + ["token", "print"], env=env, check=True, capture_output=True)
    tenant.rate, tenant.burst = rate, burst  # the bucket starts full at the first API request
    tenant.set_clients(APPS)
    if warm:  # last night's export
        subprocess.run(RUNNER + ["run-job", "export-clients"], env=env, check=True, capture_output=True)
        time.sleep(burst / rate)  # full again
    tenant.received.clear()
    tenant.responses_429 = tenant.api_requests = 0
    started = time.time()
    t = time.perf_counter()
    out = subprocess.run(RUNNER + ["run-job", "export-clients"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"export at {rate}/s failed: {out.stderr}")
    first = min(e["at"] for e in tenant.received if e["path"] == "/api/v2/clients")
    return {"wall": wall, "startup": first - started, "429s": tenant.responses_429, "requests": tenant.api_requests}


def rates_table(sandbox, repeat: int, skip_slow: bool, only: list[float] | None = None) -> None:
    pages = -(-APPS // PER_PAGE)
    print(f"whole `runner run-job export-clients`, {APPS} applications ({pages} pages), {LATENCY * 1000:.0f} ms latency, warm token cache:")
    print("bare: `python -c 'import sqlalchemy, requests, click'` in this venv, median of 3 beside each run")
    print("cold: the same on a new database, nothing remembered of the bucket (one run, for the record)")
    print(f"{'rate':>6} {'burst':>5} {'floor+bare':>10} {'wall':>7} {'ratio':>6} {'bar':>5} {'429s':>4} {'start-up':>8} {'/bare':>6} "
          f"{'cold':>6} {'429s':>4}  (wall of each run)")
    startups, bares = [], []
    for rate, burst, bar in RATES:
        if (skip_slow and rate == 2) or (only and rate not in only):
            continue
        runs = []
        for _ in range(1 if rate == 2 else repeat):
            # Measured beside each run: a busy machine slows both alike.
            bares.append(bare_imports(3))
            runs.append(whole_export(sandbox, rate, burst))
        bare = median(bares[-len(runs):])
        wall = median(r["wall"] for r in runs)
        startup = median(r["startup"] for r in runs)
        startups += [r["startup"] / bare for r in runs]
        floor = (pages - burst) / rate + LATENCY
        ratio = wall / (floor + bare)
        cold = whole_export(sandbox, rate, burst, warm=False)
        print(f"{rate:>4}/s {burst:>5} {floor + bare:>9.2f}s {wall:>6.2f}s {ratio:>6.3f} {bar or '-':>5} "
              f"{sum(r['429s'] for r in runs):>4} {startup:>7.3f}s {startup / bare:>6.2f} "
              f"{cold['wall'] / (floor + bare):>6.3f} {cold['429s']:>4}  "
              "(" + ", ".join(f"{r['wall']:.2f}" for r in runs) + ")")
    print(f"start to first request: median {median(startups):.2f} x the bare imports beside it over {len(startups)} runs "
          f"(bar: within {STARTUP_BAR}); bare imports median {median(bares):.3f} s; 429s bar: 0")


def peak_rss(sandbox, apps: int) -> float:
    sandbox.reset()
    sandbox.tenant.set_clients(apps)
    env = clean_env(sandbox, state_dir())
    proc = subprocess.Popen(RUNNER + ["run-job", "export-clients"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"export of {apps} failed: {proc.stderr.read().decode()}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def memory(sandbox) -> None:
    small = peak_rss(sandbox, 1_000)
    large = peak_rss(sandbox, 100_000)
    print(f"peak RSS: {small:.1f} MB at 1,000 applications, {large:.1f} MB at 100,000; difference {large - small:.1f} MB  (bar: within 20 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-slow", action="store_true", help="leave out the 2/s run (50 s)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--rate", type=float, action="append", help="only this rate (repeatable)")
    parser.add_argument("--only-memory", action="store_true")
    args = parser.parse_args()
    with Sandbox(clients=10).start() as sandbox:
        if not args.only_memory:
            rates_table(sandbox, args.repeat, args.skip_slow, args.rate)
        if not args.skip_memory:
            memory(sandbox)


if __name__ == "__main__":
    main()

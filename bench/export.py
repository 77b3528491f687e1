#!/usr/bin/env python3
"""Export figures (SPEC section 10), against the stand-in tenant in this process and the real
`runner run-job export-clients` in a child process:

1. 10,000 applications at 100 ms latency, 20 requests/s, burst 10: wall time of the export, the
   floor the rate limit allows ((pages - burst) / rate + latency, plus the token request), their
   ratio (bar: at most 1.1) and the 429s received (bar: 0).
2. Peak RSS of the child for 1,000 and 100,000 applications (bar: within 20 MB of each other).

Usage: python bench/export.py [--skip-memory]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from _common import RUNNER, clean_env, state_dir

from batchrunner.sandbox import Sandbox

LATENCY, RATE, BURST, APPS = 0.1, 20, 10, 10_000


def timed_export(sandbox) -> None:
    sandbox.reset()
    tenant = sandbox.tenant
    tenant.set_clients(APPS)
    tenant.latency, tenant.rate, tenant.burst = LATENCY, RATE, BURST
    env = clean_env(sandbox, state_dir())
    out = subprocess.run(RUNNER + ["run-job", "export-clients", "--json"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"export failed: {out.stderr}")
    result = json.loads(out.stdout)["result"]
    pages = result["pages"]
    token_round_trip = LATENCY  # the token request, itself behind the stand-in's latency
    floor = (pages - BURST) / RATE + LATENCY + token_round_trip
    wall = result["seconds"]
    print(f"export of {result['rows']} applications ({pages} pages) at {LATENCY * 1000:.0f} ms, {RATE}/s, burst {BURST}:")
    print(f"  wall {wall:.2f} s (job start to files renamed, token request included)")
    print(f"  floor {floor:.2f} s = ({pages} - {BURST}) / {RATE} + {LATENCY} + token request {token_round_trip}")
    print(f"  ratio {wall / floor:.3f}  (bar: at most 1.1)")
    print(f"  429s received {tenant.responses_429}  (bar: 0); requests {result['requests']}, retries {result['retries']}")


def peak_rss(sandbox, apps: int) -> float:
    sandbox.reset()
    sandbox.tenant.set_clients(apps)
    env = clean_env(sandbox, state_dir())
    proc = subprocess.Popen(RUNNER + ["run-job", "export-clients"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"export of {apps} failed: {proc.stderr.read().decode()}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    with Sandbox(clients=10).start() as sandbox:
        timed_export(sandbox)
        if "--skip-memory" in sys.argv:
            return
        small = peak_rss(sandbox, 1_000)
        large = peak_rss(sandbox, 100_000)
        print(f"peak RSS: {small:.1f} MB at 1,000 applications, {large:.1f} MB at 100,000; difference {large - small:.1f} MB  (bar: within 20 MB)")


if __name__ == "__main__":
    main()

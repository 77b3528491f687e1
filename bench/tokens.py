#!/usr/bin/env python3
"""Token cache figures (README, "Development"): token requests when 1, 10 and 50 processes start together on an
empty cache (each must be 1); the in-process cache-hit time (bar: under 2 ms); the cold start of
`runner token print` on a warm cache; the time `runner run-job` takes to its first request (bar: 0.3 s).

Usage: python bench/tokens.py
"""

from __future__ import annotations

import subprocess
import time

from _common import RUNNER, clean_env, median, percentile, run, state_dir

from batchrunner.auth0.tokencache import cached_source
from batchrunner.config import load_credentials
from batchrunner.sandbox import Sandbox
from batchrunner.store.database import open_database


def concurrent_requests(sandbox, processes: int) -> tuple[int, int]:
    sandbox.reset()
    sandbox.tenant.token_latency = 0.2  # a real tenant takes a while to answer
    env = clean_env(sandbox, state_dir())
    procs = [subprocess.Popen(RUNNER + ["token", "print"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    tokens = {p.communicate()[0].strip() for p in procs}
    failures = sum(p.returncode != 0 for p in procs)
    return sandbox.tenant.token_requests, len(tokens) + failures * 1000


def cache_hits(sandbox) -> tuple[list[float], list[float]]:
    sandbox.reset()
    env = clean_env(sandbox, state_dir())
    db = open_database(env["RUNNER_DATABASE_URL"])
    creds = load_credentials(env)
    source = cached_source(db, creds, "bench")
    source.token()
    in_process = []
    for _ in range(20000):
        t = time.perf_counter()
        source.token()
        in_process.append(time.perf_counter() - t)
    from_database = []  # a new source each time: what another process's first call costs
    for _ in range(500):
        fresh = cached_source(db, creds, "bench")
        t = time.perf_counter()
        fresh.token()
        from_database.append(time.perf_counter() - t)
    return in_process, from_database


def cold_start(sandbox) -> list[float]:
    sandbox.reset()
    env = clean_env(sandbox, state_dir())
    run(["token", "print"], env, check=True)
    times = []
    for _ in range(10):
        t = time.perf_counter()
        run(["token", "print"], env, check=True)
        times.append(time.perf_counter() - t)
    return times


def first_request_delay(sandbox) -> list[float]:
    """From starting `runner run-job export-clients` (warm cache) to its first API request arriving."""
    sandbox.reset()
    sandbox.tenant.set_clients(10)
    env = clean_env(sandbox, state_dir())
    run(["token", "print"], env, check=True)
    delays = []
    for _ in range(10):
        sandbox.tenant.received.clear()
        started = time.time()
        run(["run-job", "export-clients"], env, check=True)
        first = min(e["at"] for e in sandbox.tenant.received if e["path"] == "/api/v2/clients")
        delays.append(first - started)
    return delays


def main() -> None:
    with Sandbox(clients=10).start() as sandbox:
        for n in (1, 10, 50):
            requests, distinct = concurrent_requests(sandbox, n)
            print(f"{n:>3} concurrent processes on an empty cache: {requests} token request(s), {distinct} distinct token(s)  (bar: 1)")
        hits, db_hits = cache_hits(sandbox)
        print(f"in-process cache hit: median {median(hits) * 1e6:.1f} µs, p99 {percentile(hits, 99) * 1e6:.1f} µs  (bar: under 2 ms)")
        print(f"first call of a new process (read from the database): median {median(db_hits) * 1e3:.2f} ms, p99 {percentile(db_hits, 99) * 1e3:.2f} ms")
        starts = cold_start(sandbox)
        print(f"`runner token print` on a warm cache, whole process: median {median(starts) * 1e3:.0f} ms, p99 {percentile(starts, 99) * 1e3:.0f} ms")
        delays = first_request_delay(sandbox)
        print(f"`runner run-job export-clients` start to first API request (warm cache): median {median(delays) * 1e3:.0f} ms, "
              f"p99 {percentile(delays, 99) * 1e3:.0f} ms  (bar: under 300 ms)")


if __name__ == "__main__":
    main()

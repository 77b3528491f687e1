#!/usr/bin/env python3
"""Log archive figures (README, "Development"), against the stand-in tenant in this process and the real
`runner run-job export-logs` in a child process:

1. 100,000 events at 100 ms latency and 10 requests/s: wall time of the archive against the floor
   of sequential checkpoint pages, pages x max(latency, 1 / rate) (bar: at most 1.15); the 429s.
2. Peak RSS of the child archiving 1,000 and 100,000 events (bar: within 20 MB of each other).
3. The archive's size on disk: bytes per event, compressed (gzip JSON Lines as the job writes them)
   and as JSON. The stand-in's events repeat more than a real tenant's, so they compress better.

Usage: python bench/logs.py [--small]   (--small: 10,000 events, for a quick look)
"""

from __future__ import annotations

import gzip
import json
import sys
from datetime import datetime

from _common import clean_env, measured, state_dir

from batchrunner.sandbox import Sandbox, Sizes

LATENCY, RATE, BURST = 0.1, 10, 10
EVENTS = 100_000


def archive(events: int, latency: float = 0.0, rate: float | None = None) -> dict:
    """One run of export-logs over a tenant holding `events`: its figures."""
    with Sandbox(clients=50, sizes=Sizes(log_events=events, users=1_000)).start() as sandbox:
        sandbox.set_scopes(["read:logs"])
        tenant = sandbox.tenant
        tenant.latency, tenant.rate, tenant.burst = latency, rate, BURST
        state = state_dir()
        code, out, err, process_wall, rss = measured(["run-job", "export-logs", "--json"], clean_env(sandbox, state))
        if code != 0:
            sys.exit(f"export-logs of {events} events failed: {err}")
        result = json.loads(out)["result"]
        files = list((state / "exports" / "logs").rglob("*.jsonl.gz"))
        return {"result": result, "job_wall": job_wall(err), "requests": tenant.api_requests, "429s": tenant.responses_429, "rss": rss,
                "process_wall": process_wall, "bytes": sum(f.stat().st_size for f in files), "files": len(files),
                "raw": sum(_unzipped_size(f) for f in files)}


def _unzipped_size(path) -> int:
    with gzip.open(path, "rb") as handle:
        return sum(len(chunk) for chunk in iter(lambda: handle.read(1 << 20), b""))


def job_wall(stderr: str) -> float:
    """Seconds from the run's "started" log line to its "succeeded" one (the record keeps whole seconds)."""
    stamps = [datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")) for line in stderr.splitlines()
              if line.endswith(("started (manual)", "succeeded"))]
    return (stamps[-1] - stamps[0]).total_seconds()


def main() -> None:
    events = EVENTS // 10 if "--small" in sys.argv else EVENTS
    timed = archive(events, LATENCY, RATE)
    result, pages = timed["result"], timed["requests"]
    if result["events"] != events:
        sys.exit(f"archived {result['events']} events of {events}")
    per_page = max(LATENCY, 1 / RATE)
    floor = pages * per_page + LATENCY  # and the token request, itself behind the stand-in's latency
    wall = timed["job_wall"]
    print(f"export-logs of {events:,} events ({pages} requests to /api/v2/logs, {timed['files']} files) "
          f"at {LATENCY * 1000:.0f} ms, {RATE}/s, burst {BURST}:")
    print(f"  wall {wall:.2f} s (the run's 'started' to 'succeeded' log lines); whole process {timed['process_wall']:.2f} s")
    print(f"  floor {floor:.2f} s = {pages} pages x max({LATENCY}, 1/{RATE}) + token request {LATENCY}")
    print(f"  ratio {wall / floor:.3f}  (bar: at most 1.15)")
    print(f"  429s received {timed['429s']}  (bar: 0)")
    print(f"  archive {timed['bytes']:,} bytes: {timed['bytes'] / events:.0f} bytes per event compressed, "
          f"{timed['raw'] / events:.0f} as JSON ({timed['bytes'] / events * 1e6 / 1e9:.3f} GB per million events)")
    small = archive(1_000)
    print(f"peak RSS: {small['rss']:.1f} MB at 1,000 events, {timed['rss']:.1f} MB at {events:,}; "
          f"difference {timed['rss'] - small['rss']:.1f} MB  (bar: within 20 MB)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""users-cleanup figures (README, "Development"): the real `runner run-job users-cleanup --param
apply=true` in a child process, against the stand-in tenant in this process with Essentials'
per-endpoint buckets (Write Users: burst 10, `--rate` a minute; Read Users 40 / 500 a minute) and
`RUNNER_RATE_LIMITS=endpoint`, as such a tenant is run.

1. 200,000 users of whom exactly 1,000 match `inactive 365 block` (the stand-in's `exports.dormant`:
   everyone else logged in an hour ago), all 1,000 acted on at 200 writes a minute: the wall of the
   whole process beside the write floor plus the export (bar: within 1.10 times), split into the
   export's part (start-up and token, the bulk export job's wait, then the download and the
   selection up to the first re-check), the writes' part and the end; 429s.
   The write floor: the bucket's burst at once, the rest at its refill rate, (selected - burst) / rate.
2. Peak RSS of that process beside a run of 1,000 users selecting 10 (bar: within 30 MB). Selecting
   10, not 1,000, of the small tenant: the difference then shows whatever grows with the tenant's
   size and whatever grows with the actions taken, both, and the small run takes seconds.

Usage: python bench/users_cleanup.py [--users N --select M --rate R] [--latency S] [--rate-limits global] [--skip-memory]
  e.g. --users 20000 --select 100 --rate 600 for a quick look (about 20 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from urllib.parse import unquote

from _common import clean_env, measured, state_dir

from batchrunner.sandbox import Sandbox, Sizes
from batchrunner.sandbox.ratelimits import ESSENTIALS
from batchrunner.sandbox.users import user

RULES = "inactive 365 block"
SCOPES = ["read:users", "update:users"]
RATIO_BAR, RSS_BAR = 1.10, 30.0


def dormant(seed: int, users: int, select: int) -> set[int]:
    """`select` user numbers spread over the tenant, none already blocked (a block rule passes those by)."""
    step = users // select
    chosen = set()
    for k in range(select):
        i = k * step
        chosen.add(i + 1 if user(seed, i).get("blocked") else i)  # two neighbours are never both blocked
    return chosen


def cleanup(users: int, select: int, rate: float, latency: float, rate_limits: str = "endpoint") -> dict:
    with Sandbox(clients=10, sizes=Sizes(export_users=users)).start() as sandbox:
        sandbox.set_scopes(SCOPES)
        sandbox.tenant.latency = latency
        sandbox.buckets.enabled = True
        burst = ESSENTIALS["Write Users"][0]
        sandbox.buckets.limits["Write Users"] = (burst, rate)
        sandbox.exports.dormant = dormant(sandbox.seed, users, select)
        sandbox.exports.find("warm")  # the stand-in indexes its users once; not the runner's time
        fraction = max(0.05, select / users)
        env = clean_env(sandbox, state_dir(), RUNNER_RATE_LIMITS=rate_limits,
                        RUNNER_USERS_CLEANUP_RULES=f"{RULES}; max_fraction = {fraction:g}")
        load = os.getloadavg()
        started = time.time()
        code, out, err, wall, rss = measured(
            ["run-job", "users-cleanup", "--json", "--param", "apply=true", "--param", f"max_actions={select}"], env)
        if code != 0:
            sys.exit(f"users-cleanup of {users:,} users failed (exit {code}): {err[-2000:]}")
        result = json.loads(out)["result"]
        received = list(sandbox.tenant.received)
        responses_429 = sandbox.tenant.responses_429
        blocked = sum(1 for i in sandbox.exports.dormant if (sandbox.exports.profile(i) or {}).get("blocked"))
    if (result["selected"], result["done"], blocked) != (select, select, select):
        sys.exit(f"expected {select} selected, done and blocked; got {result['selected']}, {result['done']}, {blocked}")
    return {"wall": wall, "rss": rss, "429s": responses_429, "load": load, "burst": burst,
            **phases(received, started, wall)}


def phases(received: list[dict], started: float, wall: float) -> dict:
    """Seconds from the process's start: the export job created, its download asked, the first re-check,
    the last write; and the writes' and re-checks' counts."""
    def at(entry):
        return entry["at"] - started

    job = [r for r in received if r["path"].startswith("/api/v2/jobs/")]
    download = [r for r in received if r["path"].startswith("/user-exports/")]  # asked once the job said completed
    rechecks = [r for r in received if r["method"] == "GET" and r["path"].startswith("/api/v2/users/")]
    writes = [r for r in received if r["method"] in ("PATCH", "DELETE") and r["path"].startswith("/api/v2/users/")]
    landed = [unquote(r["path"]) for r in writes if r["status"] < 300]  # a write refused with a 429 is sent again
    assert len(set(landed)) == len(landed), "a user written twice"
    return {"created": at(job[0]), "completed": at(download[0]), "first_recheck": at(rechecks[0]),
            "first_write": at(writes[0]), "last_write": at(writes[-1]), "end": wall - at(writes[-1]),
            "writes": len(writes), "rechecks": len(rechecks)}


def report(users: int, select: int, rate: float, latency: float, run: dict, rate_limits: str = "endpoint") -> None:
    per_second = rate / 60
    floor = max(0, select - run["burst"]) / per_second
    export = run["first_recheck"]
    ratio = run["wall"] / (floor + export)
    load = ", ".join(f"{x:.2f}" for x in run["load"])
    bar = f"(bar: {RATIO_BAR})" if floor else "(no bar: all within the burst)"
    print(f"users-cleanup apply, {users:,} users selecting {select:,} ({RULES}), Write Users burst {run['burst']} "
          f"at {rate:g}/min, {latency * 1000:.0f} ms latency, RUNNER_RATE_LIMITS={rate_limits}; load average before: {load}")
    print(f"  export's part {export:.1f} s: start-up and token {run['created']:.1f} s, the export job's wait "
          f"{run['completed'] - run['created']:.1f} s, download and selection {run['first_recheck'] - run['completed']:.1f} s")
    print(f"  writes' part {run['last_write'] - run['first_recheck']:.1f} s: {run['writes']:,} writes, {run['rechecks']:,} re-checks "
          f"(first write {run['first_write'] - run['first_recheck']:.2f} s after the first re-check); the end after the last write "
          f"{run['end']:.2f} s")
    print(f"  write floor ({select:,} - {run['burst']}) / {per_second:.3f}/s = {floor:.1f} s; wall {run['wall']:.1f} s; "
          f"wall / (floor + export) = {ratio:.3f}  {bar}")
    print(f"  429s: {run['429s']}  (bar: 0); peak RSS {run['rss']:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--select", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=200, help="Write Users a minute (Essentials: 200)")
    parser.add_argument("--latency", type=float, default=0.1, help="the stand-in's round trip, seconds")
    parser.add_argument("--rate-limits", default="endpoint", choices=("endpoint", "global"),
                        help="RUNNER_RATE_LIMITS of the run (global: as if the tenant's plan were not said)")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the 1,000-user run")
    args = parser.parse_args()
    large = cleanup(args.users, args.select, args.rate, args.latency, args.rate_limits)
    report(args.users, args.select, args.rate, args.latency, large, args.rate_limits)
    if args.skip_memory:
        return
    small = cleanup(1_000, 10, args.rate, args.latency)
    report(1_000, 10, args.rate, args.latency, small)
    print(f"peak RSS: {small['rss']:.1f} MB at 1,000 users selecting 10, {large['rss']:.1f} MB at {args.users:,} selecting "
          f"{args.select:,}; difference {large['rss'] - small['rss']:.1f} MB  (bar: within {RSS_BAR:g} MB)")


if __name__ == "__main__":
    main()

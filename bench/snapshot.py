#!/usr/bin/env python3
"""Snapshot figures (README, "Development"), against the stand-in tenant in this process and the real
`runner run-job snapshot` in a child process:

10,000 applications, 20,000 client grants, 50 roles with 3,000 members each, at 100 ms latency,
16 requests/s, burst 50 (Auth0 Enterprise's sustained rate): wall time of the job, the floor the
rate limit allows for the requests it made ((requests - burst) / rate + latency), their ratio
(bar: at most 1.15), the 429s received (bar: 0) and the child's peak RSS.

With --million: a tenant whose biggest organization has 1,000,000 members (10,000 checkpoint pages
of 100, Auth0's maximum take): the first snapshot's wall, floor, ratio and peak RSS (bar: under
200 MB), then a second snapshot, after the stand-in's known set of edits, with its drift against the
first (changes.json): its wall and peak RSS. One list pages one request after another (each `from`
is the previous answer's `next`), so at Auth0's 100 ms it could not reach 16 requests/s; this case
runs the stand-in at --rate (default 200/s), no latency, burst 50, and compares with the floor there.

Usage: python bench/snapshot.py [--small]   (--small: a tenant a tenth of the size, for a quick look)
       python bench/snapshot.py --million [--rate N] [--members N]
"""

from __future__ import annotations

import json
import sys
import time

from _common import clean_env, measured, state_dir

from batchrunner.sandbox import Sandbox, Sizes
from batchrunner.sandbox.directory import MANAGEMENT_SCOPES

LATENCY, RATE, BURST = 0.1, 16, 50
APPS, ROLES, MEMBERS = 10_000, 50, 3_000
# A quarter of the applications are machine-to-machine; each holds a grant on the Management API
# and on each of 7 custom APIs: 2,500 x 8 = 20,000 grants (and the runner's own).
CUSTOM_APIS, GRANTS_PER_M2M = 7, 8


def sizes(scale: float) -> Sizes:
    members = int(MEMBERS * scale)
    return Sizes(users=max(20_000, members), roles=ROLES, role_members=members, big_role_members=members,
                 custom_apis=CUSTOM_APIS, grants_per_m2m=GRANTS_PER_M2M)


def option(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def million() -> None:
    members, rate = option("--members", 1_000_000), option("--rate", 200)
    sizes = Sizes(users=members, big_org_members=members)
    with Sandbox(clients=100, sizes=sizes).start() as sandbox:
        sandbox.set_scopes(MANAGEMENT_SCOPES)
        sandbox.directory = sandbox._directory()
        tenant, d = sandbox.tenant, sandbox.directory
        tenant.latency, tenant.rate, tenant.burst = 0, rate, BURST
        print(f"tenant: {len(d.organizations)} organizations, the biggest with {len(d.organization_members[d.big_organization]):,} "
              f"members; {len(d.roles)} roles; 0 ms, {rate}/s, burst {BURST}")
        env = clean_env(sandbox, state_dir())
        first = snapshot_once("first snapshot", env, rate, latency=0)
        made = sandbox.directory.apply_changes()
        time.sleep(1.1)  # a snapshot is named by its second
        second = snapshot_once("second snapshot, drift against the first", env, rate, latency=0)
    # The drift alone: `runner diff` compares the same two snapshots as the second run did.
    code, out, err, diff_wall, diff_rss = measured(["diff", "--json"], env)
    if code != 1:
        sys.exit(f"diff failed: {err}")
    edits = sum(len(keys) for kinds in made.values() for keys in kinds.values())
    print(f"  drift: {second['drift']}  (the stand-in made {edits} edits)")
    print(f"  the drift alone (runner diff of the two): {diff_wall:.2f} s, peak RSS {diff_rss:.1f} MB")
    print(f"  peak RSS first {first['rss']:.1f} MB, second {second['rss']:.1f} MB  (bar: under 200 MB)")


def snapshot_once(label: str, env: dict, rate: float, latency: float) -> dict:
    code, out, err, process_wall, rss = measured(["run-job", "snapshot", "--json"], env)
    if code != 0:
        sys.exit(f"{label} failed: {err}")
    result = json.loads(out)["result"]
    requests, wall = result["requests"], result["seconds"]
    floor = (requests - BURST) / rate + latency
    print(f"{label}: {', '.join(f'{n} {c:,}' for n, c in result['resources'].items())}")
    print(f"  wall {wall:.2f} s (scope check to directory published); whole process {process_wall:.2f} s")
    print(f"  floor {floor:.2f} s = ({requests} requests - {BURST}) / {rate} + {latency};  ratio {wall / floor:.3f}  (bar: at most 1.15)")
    print(f"  peak RSS {rss:.1f} MB")
    return {**result, "rss": rss}


def main() -> None:
    if "--million" in sys.argv:
        return million()
    scale = 0.1 if "--small" in sys.argv else 1.0
    apps = int(APPS * scale)
    with Sandbox(clients=apps, sizes=sizes(scale)).start() as sandbox:
        sandbox.set_scopes(MANAGEMENT_SCOPES)
        sandbox.directory = sandbox._directory()  # the runner's own grant carries the scopes
        tenant, d = sandbox.tenant, sandbox.directory
        tenant.latency, tenant.rate, tenant.burst = LATENCY, RATE, BURST
        members = sum(len(m) for m in d.role_members.values())
        print(f"tenant: {apps:,} applications, {len(d.client_grants):,} grants, {len(d.roles)} roles with "
              f"{members:,} members, {len(d.organizations)} organizations; {LATENCY * 1000:.0f} ms, {RATE}/s, burst {BURST}")
        env = clean_env(sandbox, state_dir())
        code, out, err, process_wall, rss = measured(["run-job", "snapshot", "--json"], env)
        if code != 0:
            sys.exit(f"snapshot failed: {err}")
        result = json.loads(out)["result"]
    requests = result["requests"]
    floor = (requests - BURST) / RATE + LATENCY
    wall = result["seconds"]
    print(f"snapshot: {', '.join(f'{n} {c:,}' for n, c in result['resources'].items())}")
    print(f"  wall {wall:.2f} s (scope check to directory published); whole process {process_wall:.2f} s")
    print(f"  floor {floor:.2f} s = ({requests} requests - {BURST}) / {RATE} + {LATENCY}")
    print(f"  ratio {wall / floor:.3f}  (bar: at most 1.15)")
    print(f"  429s received {tenant.responses_429}  (bar: 0); requests made {requests}, answered by the tenant {tenant.api_requests}")
    print(f"  peak RSS {rss:.1f} MB")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Snapshot figures (README, "Development"), against the stand-in tenant in this process and the real
`runner run-job snapshot` in a child process:

10,000 applications, 20,000 client grants, 50 roles with 3,000 members each, at 100 ms latency,
16 requests/s, burst 50 (Auth0 Enterprise's sustained rate): wall time of the job, the floor the
rate limit allows for the requests it made ((requests - burst) / rate + latency), their ratio
(bar: at most 1.15), the 429s received (bar: 0) and the child's peak RSS.

Usage: python bench/snapshot.py [--small]   (--small: a tenant a tenth of the size, for a quick look)
"""

from __future__ import annotations

import json
import sys

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


def main() -> None:
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

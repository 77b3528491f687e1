#!/usr/bin/env python3
"""The stand-in tenant's CPU per answered page (README, "The stand-in tenant"): one `Sandbox` with 5,000
applications answers export-clients' pages of /api/v2/clients (100 a page, the secret fields left
out, include_totals) to a client in another process; this process's CPU is the stand-in's alone.

bench/tenants.py runs 100 stand-ins beside `runner serve` on the same cores, so what a page costs
the stand-in is CPU the runner does not get there.

The first round is a night's (each application made for the first time); later rounds ask again.

Usage: python bench/standin_pages.py [--tenants N] [--apps N] [--rounds N] [--new-connections]
  --tenants N        N stand-ins, each its own seed, as bench/tenants.py has (default 1)
  --new-connections  a connection per page (each a server thread), rather than one kept alive
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import ROOT  # noqa: F401  (puts the checkout on sys.path)

from batchrunner.sandbox import Sandbox

FIELDS = "client_secret,signing_keys,encryption_key,client_authentication_methods"

CLIENT = r"""
import http.client, json, sys
tenants, pages, fresh = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
size = 0
for port, token in tenants:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for page in range(pages):
        if fresh:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", f"/api/v2/clients?page={page}&per_page=100&include_totals=true&fields=%s&include_fields=false&is_global=false"
                     % sys.argv[4], headers={"Authorization": "Bearer " + token})
        answer = conn.getresponse()
        body = answer.read()
        assert answer.status == 200, (answer.status, body[:200])
        size += len(body)
print(size)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1)
    parser.add_argument("--apps", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=1, help="client processes at once, the tenants shared among them")
    parser.add_argument("--new-connections", action="store_true")
    args = parser.parse_args()
    sandboxes = [Sandbox(clients=1, seed=100 + i).start() for i in range(args.tenants)]
    try:
        for sandbox in sandboxes:
            sandbox.tenant.set_clients(args.apps)  # as bench/tenants.py sets up its night
        tenants = [[s.port, _token(s)] for s in sandboxes]
        pages = -(-args.apps // 100)
        commands = [[sys.executable, "-c", CLIENT, json.dumps(tenants[k::args.clients]), str(pages), "1" if args.new_connections else "0", FIELDS]
                    for k in range(min(args.clients, len(tenants)))]
        for name, rounds in (("first", 1), ("later", args.rounds)):
            cpu, wall, size, system = time.process_time(), time.perf_counter(), 0, _system()
            for _ in range(rounds):
                clients = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for command in commands]
                size += sum(int(client.communicate()[0]) for client in clients)
            cpu, wall, system = time.process_time() - cpu, time.perf_counter() - wall, _system() - system
            answered = pages * args.tenants * rounds
            print(json.dumps({"round": name, "pages": answered, "bytes_per_page": size // answered, "stand_in_cpu_s": round(cpu, 3),
                              "cpu_ms_per_page": round(1000 * cpu / answered, 3),
                              "of_it_system_s": round(system, 3), "wall_s": round(wall, 2)}))
    finally:
        for sandbox in sandboxes:
            sandbox.stop()


def _system() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _token(sandbox: Sandbox) -> str:
    return sandbox.tenant.token({"grant_type": "client_credentials", "client_id": sandbox.client_id,
                                 "client_secret": sandbox.client_secret, "audience": sandbox.audience}).body["access_token"]


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Many-tenant figures (README, "Several tenants", "How many run at once"): 100 stand-in tenants,
each its own `Sandbox` (5,000 applications, 100 ms latency, 20 requests/s, burst 10), every one's
`export-clients` at one fire time from one `runner serve` with RUNNER_MAX_RUNS=8.

1. One `serve` on SQLite, on the first night (a new database: each run learns its tenant's bucket
   from its first answers) and on the next (runs start from what the first saw, kept in the
   database, as every night after an installation's first does): the wall from the fire time to
   the last run's end beside the floor the rate limit allows, ceil(tenants / max runs) waves of one tenant's export, each
   (pages - burst) / rate + latency, plus a token; the 429s the tenants answered (bar: 0); runs
   succeeded; the most in progress at once (bar: max runs); the peak RSS of `serve` (VmHWM).
2. On PostgreSQL (RUNNER_TEST_POSTGRES_URL), one `serve`, then two replicas on one database: the
   two's wall beside the one's, and how the runs split between them (they share the waves through
   their claims). Each night prints its `serve`s' CPU seconds: on a small machine the figures are
   CPU-bound (the stand-ins run in this process), not bound by the tenants' rate limit.

Usage: python bench/tenants.py [--tenants N] [--apps N] [--rate R] [--max-runs N] [--skip-replicas]
  --rate R   each tenant's requests/s (default 20); a lower one (5) makes a night bound by the rate
             limit rather than by this machine's CPU, where two replicas on one machine show their gain
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _common import RUNNER, clean_env, state_dir

from batchrunner.sandbox import Sandbox

LATENCY, RATE, BURST, PER_PAGE = 0.1, 20, 10, 100
LEAD_SECONDS = 20  # start-up before the fire time: imports, migrations, 100 tokens checked


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--apps", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--max-runs", type=int, default=8)
    parser.add_argument("--skip-replicas", action="store_true")
    args = parser.parse_args()
    sandboxes = [Sandbox(clients=1, seed=100 + i).start() for i in range(args.tenants)]
    try:
        pages = math.ceil(args.apps / PER_PAGE)
        waves = math.ceil(args.tenants / args.max_runs)
        floor = waves * (max(0, pages - BURST) / args.rate + LATENCY)
        print(f"{args.tenants} tenants x {args.apps:,} applications ({pages} pages), {LATENCY * 1000:.0f} ms latency, "
              f"{args.rate:g}/s burst {BURST}; RUNNER_MAX_RUNS={args.max_runs}: {waves} waves, floor {floor:.1f} s plus a token")
        state = state_dir()
        sqlite = f"sqlite:///{state / 'runner.db'}"
        report("one serve, SQLite, first night", night(sandboxes, args, state, sqlite, replicas=1), floor, args)
        report("one serve, SQLite, next night", night(sandboxes, args, state, sqlite, replicas=1), floor, args)
        server = os.environ.get("RUNNER_TEST_POSTGRES_URL")
        if args.skip_replicas or not server:
            print("two replicas: skipped" + ("" if server else " (set RUNNER_TEST_POSTGRES_URL)"))
            return
        with postgres(server) as url:
            night(sandboxes, args, state_dir(), url, replicas=1)  # the first night teaches the database the buckets
            single = night(sandboxes, args, state_dir(), url, replicas=1)
        report("one serve, PostgreSQL, next night", single, floor, args)
        with postgres(server) as url:
            night(sandboxes, args, state_dir(), url, replicas=1)
            two = night(sandboxes, args, state_dir(), url, replicas=2)
        report("two replicas, PostgreSQL, next night", two, math.ceil(args.tenants / (2 * args.max_runs)) / waves * floor, args)
        print(f"  two replicas' wall / one's on PostgreSQL: {two['wall'] / single['wall']:.2f}")
    finally:
        for sandbox in sandboxes:
            sandbox.stop()


def night(sandboxes, args, state: Path, url: str, replicas: int) -> dict:
    """Every tenant's export-clients at one fire time; the runs as recorded, the 429s, each serve's peak RSS."""
    for sandbox in sandboxes:
        sandbox.reset()
        tenant = sandbox.tenant
        tenant.set_clients(args.apps)
        tenant.latency, tenant.rate, tenant.burst = LATENCY, args.rate, BURST
    fire = (datetime.now(timezone.utc) + timedelta(seconds=LEAD_SECONDS)).replace(microsecond=0)
    db = _database(url)  # migrated once here, so the replicas start alike
    env = clean_env(None, state, RUNNER_DATABASE_URL=url, RUNNER_MAX_RUNS=args.max_runs, RUNNER_TIMEZONE="UTC",
                    RUNNER_TENANTS_FILE=tenants_file(sandboxes, state, fire), RUNNER_SCHEDULE_EXPORT_CLIENTS="off")
    logs = [open(state / f"serve{i}.log", "w") for i in range(replicas)]
    procs = [subprocess.Popen(RUNNER + ["serve"], env=env, stdout=subprocess.DEVNULL, stderr=log) for log in logs]
    stand_ins = time.process_time()  # this process's CPU is the stand-ins' (each tenant's server threads)
    postgres_cpu = _postgres_cpu()
    deadline = time.monotonic() + LEAD_SECONDS + 1200
    while len(_finished(db, fire)) < len(sandboxes) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            sys.exit(f"serve ended early; see {state}/serve*.log")
        time.sleep(0.5)
    peaks = [_peak_mb(p.pid) for p in procs]
    cpu = sum(_cpu(p.pid) for p in procs)
    stand_ins = time.process_time() - stand_ins
    postgres_cpu = _postgres_cpu() - postgres_cpu
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait()
    runs = _finished(db, fire)
    db.dispose()
    return {"runs": runs, "fire": fire, "peaks": peaks, "logs": state, "cpu": cpu, "stand_ins": stand_ins, "postgres": postgres_cpu,
            "wall": (max(r.finished_at for r in runs) - fire).total_seconds() if runs else math.nan,
            "429s": sum(s.tenant.responses_429 for s in sandboxes)}


def tenants_file(sandboxes, state: Path, fire: datetime) -> Path:
    """Each stand-in a tenant whose only job in `serve` is export-clients at `fire` (UTC)."""
    from batchrunner.runs.registry import discover

    others = [name for name in discover(()) if name != "export-clients"]
    parts = []
    for i, sandbox in enumerate(sandboxes):
        secret = state / f"t{i}.secret"
        secret.write_text(sandbox.client_secret)
        os.chmod(secret, 0o600)
        parts.append(f'[tenants.t{i:03d}]\ndomain = "{sandbox.base_url}"\nclient_id = "{sandbox.client_id}"\n'
                     f'client_secret_file = "{secret}"\n'
                     f'[tenants.t{i:03d}.jobs.export-clients]\nschedule = "{fire.second} {fire.minute} {fire.hour} * * *"\n'
                     + "".join(f'[tenants.t{i:03d}.jobs.{name}]\nschedule = "off"\n' for name in others))
    path = state / "tenants.toml"
    path.write_text("\n".join(parts))
    return path


def report(title: str, night: dict, floor: float, args) -> None:
    runs = night["runs"]
    statuses = Counter(r.status for r in runs)
    delays = sorted((r.started_at - night["fire"]).total_seconds() for r in runs)
    print(f"{title}: wall {night['wall']:.1f} s beside a floor of {floor:.1f} s plus a token "
          f"(ratio {night['wall'] / floor:.2f}); runs {dict(statuses)} of {args.tenants}")
    print(f"  most in progress at once {_most_at_once(runs)} (bar: {args.max_runs} per serve); "
          f"start delays {delays[0]:.1f} to {delays[-1]:.1f} s; 429s {night['429s']} (bar: 0)")
    print(f"  runs per serve {sorted(Counter(r.pid for r in runs).values())}; CPU of serve {night['cpu']:.0f} s, of the stand-ins {night['stand_ins']:.0f} s, of PostgreSQL {night['postgres']:.0f} s; peak RSS of serve "
          f"{', '.join(f'{p:.0f} MB' for p in night['peaks'])}; logs in {night['logs']}")


def _most_at_once(runs) -> int:
    events = sorted([(r.started_at, 1) for r in runs] + [(r.finished_at, -1) for r in runs])
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def _database(url: str):
    from batchrunner.store.database import open_database

    return open_database(url)


def _finished(db, fire: datetime) -> list:
    from sqlalchemy import select

    from batchrunner.store.schema import runs

    with db.read() as conn:
        return conn.execute(select(runs.c.tenant, runs.c.status, runs.c.started_at, runs.c.finished_at, runs.c.pid)
                            .where(runs.c.job == "export-clients", runs.c.scheduled_for == fire,
                                   runs.c.finished_at.is_not(None))).all()


def _peak_mb(pid: int) -> float:
    """VmHWM of a live process (serve ends with os._exit, so bench/_peak.py's atexit never runs)."""
    with open(f"/proc/{pid}/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmHWM:"))) / 1024


def _cpu(pid: int, children: bool = False) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _postgres_cpu() -> float:
    """CPU seconds of the PostgreSQL processes on this machine so far (a backend that ended counts in
    its parent's children's time): on 2 cores it is CPU the serves do not get."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() == "postgres":
                    total += _cpu(int(pid), children=True)
        except OSError:  # ended meanwhile
            continue
    return total


class postgres:
    """A database of its own on the server, dropped afterwards."""

    def __init__(self, server: str):
        self.server, self.name = server, f"runner_bench_{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> str:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        self.admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        return make_url(self.server).set(database=self.name).render_as_string(hide_password=False)

    def __exit__(self, *exc) -> None:
        from sqlalchemy import text

        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Replica figures (README, "Running on several hosts"): 3 `runner serve` replicas on one PostgreSQL database, 200
trivial jobs every 5 seconds, for a minute. Prints duplicate runs (bar: 0), missed fire times
(bar: 0) and claim latency (a run's start minus its fire time) p50 and p99.

Needs RUNNER_TEST_POSTGRES_URL (a server where it may create and drop a database).
Usage: python bench/replicas.py [--seconds N]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

from _common import ROOT, RUNNER, clean_env, percentile, state_dir
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from batchrunner.store.database import open_database
from batchrunner.store.schema import runs

REPLICAS, EVERY = 3, 5


def main() -> None:
    server = os.environ.get("RUNNER_TEST_POSTGRES_URL") or sys.exit("set RUNNER_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 60.0
    name = f"runner_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        measure(url, seconds)
    finally:
        open_database(url, migrate=False).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def measure(url: str, seconds: float) -> None:
    db = open_database(url)  # migrated once here, so the replicas start alike
    env = clean_env(None, state_dir(), RUNNER_DATABASE_URL=url, RUNNER_JOBS=ROOT / "bench" / "many_jobs.py", RUNNER_SCHEDULE_EXPORT_CLIENTS="off")
    logs = state_dir()
    replicas = [subprocess.Popen(RUNNER + ["serve"], env=env, stdout=subprocess.DEVNULL, stderr=open(logs / f"replica{i}.log", "w"))
                for i in range(REPLICAS)]
    time.sleep(3)  # start-up
    begin = datetime.now(timezone.utc)
    cpu_before = sum(_cpu(p.pid) for p in replicas)
    time.sleep(seconds)
    end = datetime.now(timezone.utc)
    cpu = sum(_cpu(p.pid) for p in replicas) - cpu_before
    time.sleep(EVERY)  # let the last fires of the window finish
    for proc in replicas:
        proc.send_signal(signal.SIGTERM)
    for proc in replicas:
        proc.wait()
    errors = [(logs / f"replica{i}.log").read_text() for i in range(REPLICAS)]
    print(f"replicas' logs: {logs}")
    with db.read() as conn:
        rows = conn.execute(select(runs.c.job, runs.c.scheduled_for, runs.c.status, runs.c.started_at, runs.c.pid)
                            .where(runs.c.scheduled_for >= begin, runs.c.scheduled_for < end)).all()
    report(rows, _fire_times(begin, end), cpu, seconds, errors)


def report(rows, fire_times, cpu, seconds, errors) -> None:
    claims = Counter((r.job, r.scheduled_for) for r in rows)
    expected = {(f"bench-{n:03d}", t) for n in range(200) for t in fire_times}
    late = [(r.started_at - r.scheduled_for).total_seconds() * 1000 for r in rows]
    by_replica = Counter(r.pid for r in rows)
    print(f"{REPLICAS} replicas, 200 jobs every {EVERY} s, {seconds:.0f} s: {len(expected)} fire times expected, {len(rows)} runs recorded")
    print(f"  duplicate runs {sum(n - 1 for n in claims.values())}  (bar: 0)")
    missed = expected - set(claims)
    print(f"  missed fire times {len(missed)}  (bar: 0)" + (f"; fire times missed: {sorted({t.strftime('%H:%M:%S') for _, t in missed})}" if missed else ""))
    print(f"  statuses {dict(Counter(r.status for r in rows))}; runs per replica {sorted(by_replica.values())}")
    print(f"  claim latency p50 {percentile(late, 50):.0f} ms, p99 {percentile(late, 99):.0f} ms")
    print(f"  replicas' CPU {cpu:.1f} s in {seconds:.0f} s ({100 * cpu / seconds / REPLICAS:.0f} % of a core each)")
    problems = [line for err in errors for line in err.splitlines() if " ERROR " in line or "Traceback" in line]
    print(f"  error lines logged {len(problems)}" + (f"; first: {problems[0]}" if problems else ""))


def _fire_times(begin: datetime, end: datetime) -> list[datetime]:
    first = begin.replace(microsecond=0) + timedelta(seconds=-begin.second % EVERY)
    if first < begin:
        first += timedelta(seconds=EVERY)
    return [first + timedelta(seconds=EVERY * i) for i in range(int((end - first).total_seconds() // EVERY) + 1) if first + timedelta(seconds=EVERY * i) < end]


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()

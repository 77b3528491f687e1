#!/usr/bin/env python3
"""Last seen figures (README, "User maintenance: `users-cleanup`", Last seen), on SQLite, each part in
a process of its own so that its peak RSS (VmHWM) is its own:

1. The upsert export-logs makes per archived file: 10,000 login events of 10,000 users into a table
   of 200,000 users, ms per file (one executemany), and a replay of the same file.
2. The once-only read of an existing archive after the upgrade: 10 and 40 files of 10,000 of the
   stand-in's events (200,000 users): events/s and peak RSS (bar: flat, within 10 MB of each other).
3. users-cleanup's selection of 200,000 exported users that `last_login` alone would all select,
   every one looked up (500 at a time) in a table of 200,000: seconds and peak RSS against 1,000
   users (bar: within 10 MB).

Usage: python bench/last_seen.py
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USERS = 200_000
PER_FILE = 10_000


def peak_mb() -> float:
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmHWM:"))) / 1024


def database(folder: Path, rows: int):
    from batchrunner.outputs.last_seen import Batch
    from batchrunner.store.database import open_database

    db = open_database(f"sqlite:///{folder / 'runner.db'}")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for first in range(0, rows, PER_FILE):
        batch = Batch()
        for n in range(first, min(rows, first + PER_FILE)):
            batch.see({"type": "sertft", "user_id": f"auth0|{n:024x}", "date": (start + timedelta(seconds=n)).isoformat(), "log_id": str(n)})
        batch.save(db, "default")
    return db


def upsert() -> dict:
    from batchrunner.outputs.last_seen import Batch

    with tempfile.TemporaryDirectory() as folder:
        db = database(Path(folder), USERS)
        later = datetime(2026, 6, 1, tzinfo=timezone.utc)
        timings = []
        for _ in range(2):  # a file, then the same file again (a replay after a kill)
            batch = Batch()
            for n in range(0, USERS, USERS // PER_FILE):
                batch.see({"type": "ssa", "user_id": f"auth0|{n:024x}", "date": later.isoformat(), "log_id": str(n)})
            started = time.perf_counter()
            batch.save(db, "default")
            timings.append((time.perf_counter() - started) * 1000)
    return {"first_ms": round(timings[0], 1), "replay_ms": round(timings[1], 1)}


def make_archive(folder: str, files: int) -> dict:
    """An archive of `files` files of the stand-in's events, as export-logs lays them out."""
    from batchrunner.sandbox.logs import LogStore

    root = Path(folder) / "logs"
    store = LogStore(7, time.time, events=files * PER_FILE, users=USERS)
    store.max_take = PER_FILE
    after = None
    while events := store.after(after, PER_FILE):
        day = root / events[0]["date"][:10].replace("-", "/")
        day.mkdir(parents=True, exist_ok=True)
        with gzip.open(day / f"{events[0]['log_id']}-{events[-1]['log_id']}.jsonl.gz", "wt", encoding="utf-8") as out:
            out.writelines(json.dumps(e) + "\n" for e in events)
        after = events[-1]["log_id"]
    return {}


def backfill(folder: str, files: int) -> dict:
    from batchrunner.outputs.job_state import JobState
    from batchrunner.outputs.last_seen import catch_up
    from batchrunner.store.database import open_database

    state = JobState(open_database(f"sqlite:///{folder}/runner.db"), "export-logs")
    before = peak_mb()
    started = time.perf_counter()
    catch_up(state, Path(folder) / "logs", None, _Quiet())
    seconds = time.perf_counter() - started
    return {"files": files, "events_per_s": round(files * PER_FILE / seconds), "seconds": round(seconds, 2),
            "peak_mb_before": round(before, 1), "peak_mb": round(peak_mb(), 1)}


def selection(users: int) -> dict:
    from batchrunner.cleanup.rules import Policy, Rule
    from batchrunner.cleanup.selection import Known, Tally, select
    from batchrunner.outputs.last_seen import lookup

    with tempfile.TemporaryDirectory() as folder:
        db = database(Path(folder), USERS)
        calls = []

        def logins(ids):
            calls.append(1)
            return lookup(db, "default", ids)

        exported = ({"user_id": f"auth0|{n:024x}", "email": f"user{n}@example.com", "created_at": "2021-01-01T00:00:00.000Z",
                     "last_login": "2021-06-01T00:00:00.000Z", "email_verified": True} for n in range(users))
        policy = Policy(rules=(Rule("inactive", 30, "block"),), max_fraction=1.0)
        tally = Tally()
        now = datetime(2026, 1, 20, tzinfo=timezone.utc)  # the table's events: 2026-01-01 onwards, kept if within 30 days
        started = time.perf_counter()
        selected = sum(1 for _ in select(exported, policy, Known(set(), {}, logins), now, tally))
        seconds = time.perf_counter() - started
        return {"users": users, "selected": selected, "kept_by_login_events": tally.kept_by_login_events, "lookups": len(calls),
                "seconds": round(seconds, 2), "peak_mb": round(peak_mb(), 1)}


class _Quiet:
    def info(self, *args):
        pass

    warning = info


def part(name: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--part", name, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    if sys.argv[1:2] == ["--part"]:
        name, args = sys.argv[2], [int(a) if a.isdigit() else a for a in sys.argv[3:]]
        parts = {"upsert": upsert, "make_archive": make_archive, "backfill": backfill, "selection": selection}
        print(json.dumps(parts[name](*args)))
        return
    print("upsert of a 10,000-event file into 200,000 users:", part("upsert"))
    found = []
    for files in (10, 40):
        with tempfile.TemporaryDirectory() as folder:
            part("make_archive", folder, str(files))
            found.append(part("backfill", folder, str(files)))
    small, large = found
    print("backfill:", small, large, f"peak RSS {large['peak_mb'] - small['peak_mb']:+.1f} MB from 10 to 40 files")
    few, many = part("selection", "1000"), part("selection", str(USERS))
    print("selection:", few, many, f"peak RSS {many['peak_mb'] - few['peak_mb']:+.1f} MB from 1,000 to 200,000 users")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""User export figures (README, "Development"):

1. Peak RSS of the real `runner run-job export-users` in a child process, against the stand-in
   tenant in this process, exporting 1,000 and 1,000,000 users (bar: within 20 MB of each other),
   with the job's wall, the download's size and the CSV's.
2. The conversion after the download, as the job does it (asyncjobs.gzip_lines, which
   asyncjobs.lines reads the download with, then exports.export_csv with the job's columns) over a
   local gzip file of the same shape as the stand-in's download: rows a second (bar: 150,000 or
   better), the best of three runs (other work on the machine only ever slows one down).

Usage: python bench/users.py [--skip-memory] [--users N]   (N: users for the conversion, default 1,000,000)
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from _common import clean_env, measured, state_dir

from batchrunner.auth0 import asyncjobs
from batchrunner.jobs.export_users import csv_columns, fields
from batchrunner.outputs.dated_csv import export_csv
from batchrunner.sandbox import Sandbox, Sizes
from batchrunner.sandbox.exports import _json_writer
from batchrunner.sandbox.users import user

MILLION = 1_000_000


def export(users: int) -> dict:
    with Sandbox(clients=10, sizes=Sizes(export_users=users)).start() as sandbox:
        sandbox.set_scopes(["read:users"])
        state = state_dir()
        code, out, err, wall, rss = measured(["run-job", "export-users", "--json"], clean_env(sandbox, state))
        if code != 0:
            sys.exit(f"export-users of {users} users failed: {err}")
        result = json.loads(out)["result"]
        download = max(job.size for job in sandbox.exports.jobs.values())
    if result["rows"] != users:
        sys.exit(f"exported {result['rows']} rows of {users}")
    return {"rss": rss, "wall": wall, "seconds": result["seconds"], "download": download,
            "csv": Path(result["path"]).stat().st_size}


def local_download(users: int, directory: Path) -> Path:
    """The stand-in's download for the job's fields, written once to a local gzip file."""
    path = directory / "users.json.gz"
    write = _json_writer([{"name": source, "export_as": column} for column, source in fields({})])
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
        for start in range(0, users, 10_000):
            out.write("".join(write(user(1, i)) for i in range(start, min(users, start + 10_000))))
    return path


def conversion(users: int, runs: int = 3) -> float:
    """Rows a second from the gzip download to the CSV files, as the job converts; the best of `runs`."""
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp:
        path = local_download(users, Path(tmp))
        return max(_convert(path, users, Path(tmp) / str(run)) for run in range(runs))


def _convert(path: Path, users: int, directory: Path) -> float:
    ctx = SimpleNamespace(export_dir=directory / "exports", log=logging.getLogger("bench"),
                          now=lambda: datetime.now(timezone.utc))
    started = time.perf_counter()
    # asyncjobs.lines reads the download's stream with gzip_lines; here the stream is a file.
    with open(path, "rb") as download:
        result = export_csv(ctx, "users", csv_columns(fields({})), asyncjobs.gzip_lines(download, "job_local"))
    seconds = time.perf_counter() - started
    assert result["rows"] == users
    shutil.rmtree(directory)  # two CSVs of a million users each: not three times over
    return users / seconds


def main() -> None:
    users = int(sys.argv[sys.argv.index("--users") + 1]) if "--users" in sys.argv else MILLION
    rate = conversion(users)
    print(f"conversion of {users:,} users (gzip JSON Lines to users-*.csv and users-latest.csv): "
          f"{rate:,.0f} rows/s  (bar: 150,000 or better)")
    if "--skip-memory" in sys.argv:
        return
    small, large = export(1_000), export(MILLION)
    print(f"export-users of 1,000,000 users: job {large['seconds']:.1f} s (the stand-in builds the file meanwhile), "
          f"whole process {large['wall']:.1f} s")
    print(f"  download {large['download'] / 1e6:.1f} MB of gzip, CSV {large['csv'] / 1e6:.1f} MB")
    print(f"peak RSS: {small['rss']:.1f} MB at 1,000 users, {large['rss']:.1f} MB at 1,000,000; "
          f"difference {large['rss'] - small['rss']:.1f} MB  (bar: within 20 MB)")


if __name__ == "__main__":
    main()

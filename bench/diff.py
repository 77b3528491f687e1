#!/usr/bin/env python3
"""Drift figures (README, "Development"): `runner diff` in a child process on two client snapshots of
100,000 rows each with 1 % of the rows differing (600 changed, 200 removed, 200 added), written as
the snapshot job writes them (tables.sorted_rows and outputs.write_rows, sorted by client_id, a
manifest.json keeping the key): wall time and peak RSS of the whole process (bars: under 5 s,
under 100 MB), for the terminal report and for --json.

Usage: python bench/diff.py [--rows N]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _common import clean_env, measured, state_dir

from batchrunner.jobs.export_clients import CLIENTS
from batchrunner.outputs.drift import MANIFEST
from batchrunner.outputs.tables import sorted_rows
from batchrunner.outputs.writers import write_rows
from batchrunner.sandbox.tenant import application

ROWS = 100_000
SEED = 3


def snapshot(directory: Path, items) -> None:
    directory.mkdir(parents=True)
    rows = sorted_rows(CLIENTS, items)
    write_rows(directory / "clients.csv", CLIENTS.header, rows)
    resources = {"clients": {"file": "clients.csv", "rows": len(rows), "key": list(CLIENTS.key)}}
    (directory / MANIFEST).write_text(json.dumps({"tenant": "bench", "resources": resources}, indent=2) + "\n")


def tenants(rows: int):
    """The applications of the old and the new snapshot: 1 % differ."""
    differ = rows // 100
    changed, removed, added = range(0, differ * 6 // 10), range(rows - differ * 2 // 10, rows), differ * 2 // 10
    old = (application(SEED, i, keys=False) for i in range(rows))
    new = [application(SEED, i, keys=False) for i in range(rows - len(removed))]
    for i in changed:
        i = i * 97 % len(new)  # spread over the file
        new[i] = {**new[i], "description": f"changed {i}", "callbacks": [*new[i]["callbacks"], "https://new.example/cb"]}
    new += [application(SEED, rows + k, keys=False) for k in range(added)]
    return old, new, (len(changed), len(removed), added)


def main() -> None:
    rows = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else ROWS
    state = state_dir()
    root = state / "exports" / "snapshots"
    old, new, (changed, removed, added) = tenants(rows)
    snapshot(root / "20261124T023000Z", old)
    snapshot(root / "20261125T023000Z", new)
    size = (root / "20261125T023000Z" / "clients.csv").stat().st_size
    print(f"two client snapshots of {rows:,} rows ({size / 1e6:.1f} MB each); {changed} changed, {removed} removed, {added} added")
    env = clean_env(None, state)
    for args in (["diff"], ["diff", "--json"]):
        code, out, err, wall, rss = measured(args, env)
        if code != 1:
            sys.exit(f"runner {' '.join(args)} exited {code}, expected 1: {err}")
        if "--json" in args:
            summary = json.loads(out)["summary"]["clients"]
            assert summary == {"added": added, "removed": removed, "changed": changed}, summary
        print(f"runner {' '.join(args)}: {wall:.2f} s (bar: under 5 s), peak RSS {rss:.1f} MB (bar: under 100 MB), "
              f"{len(out):,} bytes of output")


if __name__ == "__main__":
    main()

"""The access snapshot's pipeline (README, "The access snapshot: `snapshot`"): choose tables, check scopes, fetch, write a
directory that appears whole, point `latest` at it.

The job (jobs/snapshot.py) declares the tables; everything here is shared machinery.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from batchrunner import __version__
from batchrunner.auth0.tokens import GRANT_WHERE
from batchrunner.errors import ApiError, ConfigError, UsageError
from batchrunner.operating import notifications as alerts
from batchrunner.outputs import drift
from batchrunner.outputs.atomic import atomic_text, clean_leftovers, prepare_export_dir
from batchrunner.outputs.dated_csv import terminal_progress
from batchrunner.outputs.tables import Table, fetch_all, write
from batchrunner.outputs.writers import point_link, staged_directory

SETTING = "RUNNER_SNAPSHOT_RESOURCES"
NAME_FORMAT = "%Y%m%dT%H%M%SZ"


def choose(tables: Sequence[Table], env, params: dict) -> list[Table]:
    """The tables `--param resources` or RUNNER_SNAPSHOT_RESOURCES name (a comma list; all when unset)."""
    by_name = {t.name: t for t in tables}
    given = params.get("resources") if "resources" in params else env.get(SETTING)
    names = [n.strip() for n in (given or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        problem = f"unknown resource {unknown[0]!r}; choose from {', '.join(by_name)}"
        if "resources" in params:
            raise UsageError(f"--param resources: {problem}")
        raise ConfigError(SETTING, problem)
    return [by_name[n] for n in names] if names else list(tables)


def closure(tables: Sequence[Table], wanted: Sequence[Table]) -> list[Table]:
    """`wanted` and every table they read (client grants read the clients for their names)."""
    by_name = {t.name: t for t in tables}
    found: dict[str, Table] = {}
    todo = list(wanted)
    while todo:
        table = todo.pop()
        if table.name not in found:
            found[table.name] = table
            todo.extend(by_name[n] for n in table.needs)
    return [t for t in tables if t.name in found]


def missing_scopes(tables: Sequence[Table], granted: set[str]) -> dict[str, tuple[str, ...]]:
    """Per table, the scopes of which the token holds none (Auth0 accepts any one of them)."""
    return {t.name: t.listing.scopes for t in tables if not set(t.listing.scopes) & granted}


def check_scopes(api, tables: Sequence[Table]) -> None:
    """Fail before the first API request when the token cannot read every table, naming every gap."""
    token = api.tokens.token()
    gaps = missing_scopes(tables, set(token.scope.split()))
    if not gaps:
        return
    # A token issued before the scopes were granted carries the old ones: the next run gets a new one.
    api.tokens.invalidate(token)
    needs = "; ".join(f"{name} needs {' or '.join(scopes)}" for name, scopes in gaps.items())
    raise ApiError(f"the token cannot read every resource ({needs}); grant the scopes to application "
                   f"{api.client_id} ({GRANT_WHERE}) or leave the resources out with {SETTING}")


def take(ctx, tables: Sequence[Table]) -> dict:
    """One snapshot of the chosen tables into {export_dir}/snapshots/NAME/; the run's result."""
    started, clock_start = ctx.now(), time.monotonic()
    wanted = choose(tables, ctx.settings.env, ctx.params)
    needed = closure(tables, wanted)
    root = ctx.export_dir / "snapshots"
    prepare_export_dir(root, ctx.log)  # made 0750 and checked writable before the token is asked for
    for leftover in clean_leftovers(root):
        ctx.log.info("removed %s, left by an interrupted run", leftover.name)
    check_scopes(ctx.api, needed)
    name = started.strftime(NAME_FORMAT)
    with _scratch(root, name) as scratch:
        with terminal_progress(ctx.job or "snapshot", ctx.api) as progress:
            fetched = fetch_all(ctx.api, needed, progress=progress, spill=scratch)
        if (root / name).exists():
            raise ApiError(f"a snapshot named {name} exists already (two runs in one second?); run again")
        with staged_directory(root / name) as staged:
            for table in wanted:
                write(staged, fetched[table.name])
            resources = {t.name: {"file": f"{t.name}.csv", "rows": len(fetched[t.name].rows), "key": list(t.key)} for t in wanted}
            manifest = _manifest(ctx, started, resources)
            _write_json(staged / drift.MANIFEST, manifest)
            changes, note = _drift(root, name, drift.SnapshotFolder.of(staged, manifest, label=name), scratch, staged)
    point_link(root / "latest", name)
    counts = {n: r["rows"] for n, r in resources.items()}
    ctx.log.info("snapshot %s: %s", name, ", ".join(f"{n} {c}" for n, c in counts.items()))
    ctx.log.info("%s", note)
    if changes is not None and changes.any:
        alerts.notify(ctx, "drift", f"Auth0 drift in {ctx.api.base_url}: {note}", changes=changes.summary)
    return {"path": str(root / name), "resources": counts, "requests": ctx.api.stats.requests,
            "seconds": round(time.monotonic() - clock_start, 3),
            "changes": changes.totals if changes else None,
            "changes_by_resource": changes.summary if changes else None, "drift": note}


@contextmanager
def _scratch(root: Path, name: str) -> Iterator[Path]:
    """A hidden directory beside the snapshots for the sorted runs of big tables and the changes
    found (README, "The access snapshot: `snapshot`": memory); removed at the end, and after a kill
    by the next run's clean_leftovers (its name ends .partial)."""
    path = Path(tempfile.mkdtemp(prefix=f".{name}.scratch.", suffix=".partial", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _drift(root: Path, name: str, new: "drift.SnapshotFolder", scratch: Path, staged: Path):
    """Changes since the earlier snapshots (each resource against the newest that holds it), written
    to changes.json in `staged` as they are found, and a line saying what was compared. The
    Changes returned hold the counts, not the changes."""
    found = drift.ChangesFile(scratch)
    try:
        changes = drift.compare_each(drift.older(root, name), new, found.record)
        if changes is not None:
            with atomic_text(staged / drift.CHANGES) as handle:
                found.write(handle, changes)
    except drift.OtherTenant as exc:  # AUTH0_DOMAIN changed: one line, not a diff of two tenants
        return None, str(exc)
    except drift.SnapshotError as exc:
        return None, f"compared with nothing: {exc}"
    finally:
        found.close()
    if changes is None:
        return None, "the first snapshot: nothing to compare it with"
    totals = changes.totals
    note = (f"since {_since(changes)}: {totals['added']} added, {totals['removed']} removed, "
            f"{totals['changed']} changed (changes.json)")
    if changes.not_compared:
        note += f"; not compared (no snapshot to compare them with): {', '.join(changes.not_compared)}"
    return changes, note


def _since(changes: "drift.Changes") -> str:
    """The snapshot compared with, or each one with its resources when a partial one held only some."""
    by_source: dict[str, list[str]] = {}
    for resource, source in changes.sources.items():
        by_source.setdefault(source, []).append(resource)
    if len(by_source) <= 1:
        return changes.old
    return " and ".join(f"{source} ({', '.join(names)})" for source, names in sorted(by_source.items(), reverse=True))


def _manifest(ctx, started, resources: dict) -> dict:
    from batchrunner.cli.render import iso

    return {
        "tenant": ctx.api.base_url,
        "started_at": iso(started),
        "finished_at": iso(ctx.now()),
        "runner_version": __version__,
        "resources": resources,
    }


def _write_json(path: Path, value: dict) -> None:
    with atomic_text(path) as handle:
        json.dump(value, handle, indent=2, ensure_ascii=False)
        handle.write("\n")

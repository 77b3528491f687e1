"""The dated-CSV export every such job shares (README, "The export: `export-clients`"): `{stem}-YYYYMMDDTHHMMSSZ.csv`, then
`{stem}-latest.csv` replaced by a copy, each complete or absent, rows streamed (flat memory)."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from batchrunner.cli.render import plural
from batchrunner.outputs.atomic import clean_leftovers, copy_atomic, prepare_export_dir
from batchrunner.outputs.writers import Column, write_csv
from batchrunner.progress import Progress


@dataclass
class DatedExport:
    """An export whose folder is ready: checked writable, its own leftovers removed."""

    ctx: object
    stem: str
    started: float = field(default_factory=time.monotonic)

    def write(self, columns: Sequence[Column], items: Iterable[dict]) -> dict:
        """Write `items` to the dated file and the latest copy; the run's result."""
        directory = self.ctx.export_dir
        target = directory / f"{self.stem}-{self.ctx.now():%Y%m%dT%H%M%SZ}.csv"
        latest = directory / f"{self.stem}-latest.csv"
        rows = write_csv(target, columns, items)
        copy_atomic(target, latest)
        self.ctx.log.info("exported %s to %s", plural(rows, "row"), target)
        return {"rows": rows, "path": str(target), "latest": str(latest), "seconds": round(time.monotonic() - self.started, 3)}


def prepare(ctx, stem: str) -> DatedExport:
    """Make and check the export folder and remove what a killed run of this export left, before
    anything is asked of Auth0 (a folder that cannot be written fails the run at once)."""
    export = DatedExport(ctx, stem)
    prepare_export_dir(ctx.export_dir, ctx.log)
    # Exactly this export's files: another job's stem may start with this one ("clients-spa").
    names = re.compile(rf"{re.escape(stem)}-(?:\d{{8}}T\d{{6}}Z|latest)\.csv")
    for leftover in clean_leftovers(ctx.export_dir, names):
        ctx.log.info("removed %s, left by an interrupted run", leftover.name)
    return export


def export_csv(ctx, stem: str, columns: Sequence[Column], items: Iterable[dict]) -> dict:
    """Write `items` to the dated file and the latest copy; the run's result. `items` is read only
    once the folder is ready, so a lazy listing makes no request before that."""
    return prepare(ctx, stem).write(columns, items)


@contextmanager
def terminal_progress(label: str, api=None) -> Iterator[Progress | None]:
    """A status line on stderr while the block runs, when stderr is a terminal; else None.

    Given the run's `api`, the line counts down every wait for the rate limit meanwhile.
    """
    progress = Progress.on_terminal(label)
    told = api.on_wait if api is not None else None
    if progress and api is not None:
        api.on_wait = progress.waiting
    try:
        yield progress
    finally:
        if progress:
            if api is not None:
                api.on_wait = told
            progress.close()

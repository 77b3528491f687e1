"""The dated-CSV export every such job shares (SPEC section 6): `{stem}-YYYYMMDDTHHMMSSZ.csv`, then
`{stem}-latest.csv` replaced by a copy, each complete or absent, rows streamed (flat memory)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

from .files import clean_partials, copy_atomic, prepare_export_dir
from .output import plural
from .outputs import Column, write_csv
from .progress import Progress


def export_csv(ctx, stem: str, columns: Sequence[Column], items: Iterable[dict]) -> dict:
    """Write `items` to the dated file and the latest copy; the run's result."""
    started = time.monotonic()
    directory = ctx.export_dir
    prepare_export_dir(directory, ctx.log)
    for leftover in clean_partials(directory, f"{stem}-"):
        ctx.log.info("removed %s, left by an interrupted run", leftover.name)
    target = directory / f"{stem}-{ctx.now():%Y%m%dT%H%M%SZ}.csv"
    latest = directory / f"{stem}-latest.csv"
    rows = write_csv(target, columns, items)
    copy_atomic(target, latest)
    ctx.log.info("exported %s to %s", plural(rows, "row"), target)
    return {"rows": rows, "path": str(target), "latest": str(latest), "seconds": round(time.monotonic() - started, 3)}


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

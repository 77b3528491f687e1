"""Sorting more rows than memory should hold (README, "The access snapshot: `snapshot`", memory):
sorted runs written to files, merged when read.

A list of up to `run_rows` rows is sorted in memory and returned as it is. A longer one is cut into
runs of `run_rows`, each sorted (Python's sort is stable) and written to a file in the given
directory; reading merges the runs with heapq.merge, which takes equal keys from the earlier run
first. So the rows come out in exactly the order one in-memory sort of them all would give, byte for
byte, with memory for one run while sorting and a batch per run while merging.
"""

from __future__ import annotations

import heapq
import os
import pickle
import tempfile
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

RUN_ROWS = 50_000  # rows sorted in memory at once: about 35 MB of organization members
BATCH = 1_000  # rows written and read back per pickle: a merge holds one batch per run


class SortedRuns:
    """The rows of sorted runs on disk, merged each time they are iterated; `len` is their count.

    `remove()` deletes the files; after it the rows cannot be read again."""

    def __init__(self, paths: list[Path], count: int, key: Callable):
        self.paths, self.count, self.key = paths, count, key

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Sequence[str]]:
        return heapq.merge(*(_read(path) for path in self.paths), key=self.key)

    def remove(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)


def sort(rows: Iterable[Sequence[str]], key: Callable, directory: Path, run_rows: int = RUN_ROWS,
         label: str = "rows") -> list | SortedRuns:
    """`rows` sorted by `key`: a list when they fit in one run, else SortedRuns in `directory`
    (files named LABEL.*.run). A failure while reading `rows` removes the runs written so far."""
    rows = iter(rows)
    paths: list[Path] = []
    count = 0
    try:
        while True:
            run = list(islice(rows, run_rows))
            run.sort(key=key)
            if not paths and len(run) < run_rows:
                return run  # small: no file at all
            if run:
                paths.append(_write(directory, label, run))
                count += len(run)
            if len(run) < run_rows:
                return SortedRuns(paths, count, key)
            run = None  # freed before the next run is read, so two never coexist
    except BaseException:
        SortedRuns(paths, count, key).remove()
        raise


def _write(directory: Path, label: str, run: list) -> Path:
    descriptor, name = tempfile.mkstemp(prefix=f"{label}.", suffix=".run", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for start in range(0, len(run), BATCH):
                pickle.dump(run[start:start + BATCH], handle, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _read(path: Path) -> Iterator[Sequence[str]]:
    # Our own file, written by _write above in this run: pickle reads nothing from outside.
    with open(path, "rb") as handle:
        while True:
            try:
                batch = pickle.load(handle)
            except EOFError:
                return
            yield from batch

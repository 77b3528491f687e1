"""The one pipeline of the tabular exports: lists in, sorted CSV tables out (README, "Write your own job" and "The access snapshot: `snapshot`").

A job declares its tables as data; this module fetches, joins, sorts and writes them:

    Table("role_members", ROLE_MEMBERS, columns=[("role_id", "role.id"), ...],
          key=("role_id", "user_id"), parent=("roles", "role"))

- `parent=(TABLE, NAME)`: the list is read once per row of TABLE (its `id` fills the listing's
  `{id}`), and that row's cells are given to each item under NAME.
- `join=(NAME, TABLE, FIELD)`: each item gets the row of TABLE whose first column equals the
  item's FIELD, under NAME (a grant's `client.name`).

Tables without a parent or join are fetched at once, the others as soon as what they read is in;
lists of many parents run side by side. Every request passes the tenant's one pacer, so the
concurrency only fills the rate limit, never exceeds it.

Memory stays flat whatever a list's size: each parent's list is read at most AHEAD batches ahead of
the sorting, and given a `spill` directory a table of more than `run_rows` rows is sorted in runs on
disk (outputs/spill.py) and merged when written, byte for byte as an in-memory sort would order it.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Sequence

from batchrunner import logs
from batchrunner.auth0 import lists
from batchrunner.auth0.api import DaemonPool
from batchrunner.auth0.lists import Listing
from batchrunner.outputs import spill as spilling
from batchrunner.outputs import writers as outputs
from batchrunner.outputs.writers import Column, write_rows
from batchrunner.progress import Tally

FAN_OUT = 8  # lists of different parents fetched at once (role members of 8 roles, say)
# Batches of a parent's list read ahead of the sorting: 16 parents x 10 x 100 members, a few MB,
# where a whole list held at once was 0.7 KiB a member (a million members, 700 MB).
AHEAD = 10
WINDOW = 2 * FAN_OUT  # parents whose lists are asked for ahead of the one being read
RUN_ROWS = spilling.RUN_ROWS


@dataclass(frozen=True)
class Table:
    name: str  # the file stem: role_members -> role_members.csv
    listing: Listing
    columns: Sequence[Column]
    key: tuple[str, ...]  # columns rows are sorted by, compared as strings
    parent: tuple[str, str] | None = None  # (table, name the parent row goes under)
    join: tuple[str, str, str] | None = None  # (name, table, the item's field matching the table's first column)

    @property
    def header(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def needs(self) -> set[str]:
        return {t for t in (self.parent and self.parent[0], self.join and self.join[1]) if t}


@dataclass
class Fetched:
    table: Table
    rows: list[Sequence[str]] | spilling.SortedRuns  # iterable again and again, with len()

    def as_dicts(self) -> list[dict]:
        return [dict(zip(self.table.header, values)) for values in self.rows]


def fetch_all(api, tables: Sequence[Table], stopping=None, progress=None, spill: Path | None = None,
              run_rows: int = RUN_ROWS) -> dict[str, Fetched]:
    """Every table's rows, sorted by its key; tables a chosen one needs are fetched too.

    `progress` (a status line on a terminal) shows the tables done and the rows read. With `spill`
    (a directory the caller removes), a table of more than `run_rows` rows is sorted on disk there.
    """
    chosen = {t.name: t for t in tables}
    tally = Tally(progress, len(chosen)) if progress else None
    futures: dict[str, Future] = {}
    # Daemon threads, not waited for on the way out: an interrupted run (SIGTERM, its time limit)
    # paged on until every list was done, 59 requests and 11 s after the signal.
    tables_pool, lists_pool = DaemonPool("table", len(chosen)), DaemonPool("list", FAN_OUT)

    def fetch(table: Table) -> Fetched:
        inputs = {name: futures[name].result() for name in sorted(table.needs)}
        items = _items(api, table, inputs, lists_pool)
        fetched = Fetched(table, sorted_rows(table, tally.counting(items) if tally else items, spill, run_rows))
        if tally:
            tally.part_done()
        return fetched

    for table in _in_dependency_order(chosen):
        futures[table.name] = tables_pool.submit(logs.tagged(fetch), table)
    try:
        return {name: future.result() for name, future in futures.items()}
    finally:
        for future in futures.values():
            future.cancel()
        tables_pool.shutdown()
        lists_pool.shutdown()


def sorted_rows(table: Table, items: Iterable[dict], spill: Path | None = None,
                run_rows: int = RUN_ROWS) -> list[Sequence[str]] | spilling.SortedRuns:
    """The items' rows sorted by the table's key: in memory, or with `spill` in runs on disk when
    there are more than `run_rows` (the same order either way)."""
    positions = [table.header.index(name) for name in table.key]

    def key(values):
        return [values[i] for i in positions]

    rows = outputs.rows(items, table.columns)
    if spill is not None:
        return spilling.sort(rows, key, spill, run_rows, label=table.name)
    rows = list(rows)
    rows.sort(key=key)
    return rows


def write(directory: Path, fetched: Fetched) -> Path:
    path = directory / f"{fetched.table.name}.csv"
    write_rows(path, fetched.table.header, fetched.rows)
    return path


def _items(api, table: Table, inputs: dict[str, Fetched], pool: DaemonPool):
    joined = _join_index(table, inputs)
    if table.parent is None:
        for item in lists.items(api, table.listing):
            yield _joined(item, table, joined)
        return
    source, as_name = table.parent
    parents = inputs[source].as_dicts()
    # Each parent's list is read by a worker, a few batches ahead; items are taken in the parents' order.
    # Only WINDOW parents are asked for ahead of the one being read: while one organization's million
    # members page, ten thousand small ones are not fetched and held meanwhile.
    abandoned = threading.Event()
    waiting, pending = iter(parents), deque()

    def ask(parent: dict) -> None:
        feed = _Feed(abandoned)
        future = pool.submit(logs.tagged(feed.fill), api, table.listing, parent["id"])
        future.add_done_callback(feed.cancelled)
        pending.append((parent, feed, future))

    for parent in islice(waiting, WINDOW):
        ask(parent)
    try:
        while pending:
            parent, feed, _ = pending.popleft()
            for following in islice(waiting, 1):
                ask(following)
            for item in feed:
                yield _joined({**item, as_name: parent}, table, joined)
    finally:
        abandoned.set()  # workers blocked on a full feed give up
        for _, _, future in pending:
            future.cancel()


_END = object()


class _Feed:
    """One parent's list, passed from the worker that pages it to the reader in batches, at most
    AHEAD of them waiting: one organization's million members pass through, never held at once."""

    def __init__(self, abandoned: threading.Event):
        self.batches: queue.Queue = queue.Queue(AHEAD)
        self.abandoned = abandoned

    def fill(self, api, listing: Listing, parent_id: str) -> None:
        """In the worker: every batch of the list, then the end (or the error that ended it)."""
        try:
            items = lists.items(api, listing, id=parent_id)
            for batch in iter(lambda: list(islice(items, lists.TAKE)), []):
                if not self._put(batch):
                    return
        except BaseException as exc:  # handed to the reader, who raises it as before
            self._put(exc)
            return
        self._put(_END)

    def cancelled(self, future: Future) -> None:
        """A list never started (the pool shut down as the run failed): its reader is told, not left waiting."""
        if future.cancelled():
            self.batches.put_nowait(CancelledError())

    def _put(self, value) -> bool:
        while not self.abandoned.is_set():
            try:
                self.batches.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        """In the reader: the items in order, or the worker's error raised."""
        while True:
            value = self.batches.get()
            if value is _END:
                return
            if isinstance(value, BaseException):
                raise value
            yield from value


def _join_index(table: Table, inputs: dict[str, Fetched]) -> dict | None:
    if table.join is None:
        return None
    _, source, _ = table.join
    first = inputs[source].table.header[0]
    return {r[first]: r for r in inputs[source].as_dicts()}


def _joined(item: dict, table: Table, index: dict | None) -> dict:
    if index is None:
        return item
    as_name, _, field = table.join
    return {**item, as_name: index.get(str(item.get(field)), {})}


def _in_dependency_order(chosen: dict[str, Table]) -> list[Table]:
    done: list[Table] = []
    while len(done) < len(chosen):
        ready = [t for t in chosen.values() if t not in done and t.needs <= {d.name for d in done}]
        if not ready:
            missing = sorted({n for t in chosen.values() for n in t.needs} - set(chosen))
            raise ValueError(f"tables need tables not chosen: {', '.join(missing)}")
        done.extend(ready)
    return done

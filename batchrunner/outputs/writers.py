"""Outputs that are complete or absent (README, "The export: `export-clients`" and "Write your own job"): CSV tables, gzip JSON Lines, and a
set of files that appears whole (a directory written under a hidden name and renamed into place).

A CSV column is declared as `(name, source)`: `source` is a field path (`"jwt_configuration.alg"`)
or a function of the item. Every cell goes through one rule set: lists joined by one space (a space
inside an item written `%20`), booleans `true`/`false`, nothing as an empty cell, and a cell a
spreadsheet would run as a formula neutralised (files.neutralise).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import tempfile
from contextlib import contextmanager
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence, Union

from batchrunner.outputs.atomic import (EXPORT_MODE, FORMULA_PREFIXES, atomic_file, atomic_text, make_folders, neutralise,
                                        rename_into_place, staging, sync_dir)

LIST_SEPARATOR = " "
# Items made into rows, and rows handed to the CSV writer, at once: a Management API page. A paged
# export then writes each page as it comes, and after the last answer only its rows are left to
# make (1,000 left ten pages' worth, 25 ms at 50 requests/s); the C loops are as fast per row.
BATCH = 100
Source = Union[str, Callable[[dict], Any]]
Column = tuple[str, Source]


def read(item: dict, source: Source) -> Any:
    if callable(source):
        return source(item)
    if isinstance(source, Key):
        return item.get(source) if isinstance(item, dict) else None
    value: Any = item
    for part in source.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        # Items are URLs, grant types, scopes: a space inside one is percent-encoded so the separator stays unambiguous.
        return LIST_SEPARATOR.join(str(part).replace(" ", "%20") for part in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(value)


def row(item: dict, columns: Sequence[Column]) -> list[str]:
    return [neutralise(cell(read(item, source))) for _, source in columns]


def rows(items: Iterable[dict], columns: Sequence[Column]) -> Iterator[tuple[str, ...]]:
    """`row` of each item, exactly, made faster (see `row_batches`)."""
    for batch in row_batches(items, columns):
        yield from batch


def row_batches(items: Iterable[dict], columns: Sequence[Column]) -> Iterator[list[tuple[str, ...]]]:
    """`row` of each item, in lists of up to BATCH, made a column of a batch at a time: a million
    users are nine million cells, and a column of plain strings (most are) is read, checked and kept
    in a few C loops where a cell at a time would be a Python loop each."""
    sources = [source for _, source in columns]
    keys = [source for source in sources if _is_key(source)]
    take_keys = itemgetter(*keys) if len(keys) > 1 else None
    absent = dict.fromkeys(keys)
    readers = [_reader(source) for source in sources]
    items = iter(items)
    for batch in iter(lambda: list(islice(items, BATCH)), []):
        if not sources:
            yield [()] * len(batch)
            continue
        values = {}
        if take_keys is not None and set(map(type, batch)) == {dict}:
            # Every key of every item in two C calls: each item over the absent ones, then taken.
            values = dict(zip(keys, zip(*map(take_keys, [{**absent, **item} for item in batch]))))
        yield list(zip(*[_cells(list(values[source]) if source in values else list(map(reader, batch)))
                         for source, reader in zip(sources, readers)]))


def _cells(values: list) -> list[str]:
    """neutralise(cell(value)) of each value of a column."""
    kinds = set(map(type, values))
    if list in kinds or tuple in kinds:
        joined = _joined(values) if kinds <= _LISTS else None
        if joined is None:
            return [neutralise(cell(value)) for value in values]
        values, kinds = joined, {str}
    if not kinds <= _PLAIN:  # objects, fractions: a cell at a time
        return [neutralise(cell(value)) for value in values]
    if kinds <= {bool, type(None)}:
        return list(map(_TEXTS.__getitem__, values))
    if kinds != {str}:
        values = [value if type(value) is str else "" if value is None else ("true" if value else "false")
                  if type(value) is bool else str(value) for value in values]
    # Each value follows a newline in the joined text, so a formula shows as a newline and its first
    # character (a newline inside a value can only make the check look closer, never miss one).
    if not _FORMULA_AFTER_NEWLINE.search("\n" + "\n".join(values)):
        return values
    return ["'" + value if value[:1] in _FORMULA_FIRST else value for value in values]  # as neutralise()


def _joined(values: list) -> list[str] | None:
    """cell() of each of a column of lists (URLs, origins, grant types), in C loops; None when an item
    is no string or holds a space (whose `%20` cell() writes a cell at a time)."""
    lists = [value or () for value in values]
    try:
        joined = list(map(LIST_SEPARATOR.join, lists))
    except TypeError:
        return None
    separators = sum(map(len, lists)) - sum(map(bool, lists))
    return joined if "\n".join(joined).count(LIST_SEPARATOR) == separators else None


class Key(str):
    """A column's source that is one field, named as it is, dots and all (`"user_metadata.locale"`
    as a key of a flat item), where a plain string would be a path."""


def _is_key(source: Source) -> bool:
    return isinstance(source, Key) or (type(source) is str and "." not in source)


def _reader(source: Source) -> Callable[[dict], Any]:
    if callable(source):
        return source
    if _is_key(source):
        return lambda item: item.get(source) if isinstance(item, dict) else None
    return lambda item: read(item, source)


# What neutralise() acts on, by first character: each of files.FORMULA_PREFIXES is one.
assert all(len(prefix) == 1 for prefix in FORMULA_PREFIXES)
_FORMULA_FIRST = frozenset(FORMULA_PREFIXES)
# Led by a literal newline, which the regular expression engine scans for fast.
_FORMULA_AFTER_NEWLINE = re.compile("\n[" + re.escape("".join(FORMULA_PREFIXES)) + "]")
_LISTS = {list, tuple, type(None)}
_PLAIN = {str, type(None), bool, int}  # whose cells are their text: cell() of them is "", true/false, str()
_TEXTS = {value: cell(value) for value in (None, True, False)}  # for columns of only these (1 == True)


def write_csv(path: Path, columns: Sequence[Column], items: Iterable[dict]) -> int:
    """Write `items` as CSV rows under a temporary name and rename it into place; the row count."""
    return _write(path, [name for name, _ in columns], row_batches(items, columns))


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    values = iter(rows)
    return _write(path, header, iter(lambda: list(islice(values, BATCH)), []))


def _write(path: Path, header: Sequence[str], batches: Iterable[list[Sequence[str]]]) -> int:
    count = 0
    # The byte-order mark makes Excel read the file as UTF-8 (README, "The export: `export-clients`" allows it). Written by
    # hand: with "utf-8-sig" every row would pass through a codec written in Python.
    with atomic_text(path, encoding="utf-8") as handle:
        handle.write("\ufeff")
        text = CsvText()
        handle.write(text.quoted(header))
        for batch in batches:
            handle.write(text.of(batch))
            count += len(batch)
    return count


class CsvText:
    """Rows as the csv module writes them (QUOTE_MINIMAL, CRLF), a batch at a time.

    The csv module reads every character of every cell twice, in C: 20 to 40 ms for an export of
    5,000 applications, a sixth of `serve`'s CPU per run (README, "Development"). A cell without a
    comma, a quote or a line break is written bare, so a row of such cells is its cells joined by
    commas: made by str.join and checked with a few searches of that line. A row that needs quotes
    (or a batch with a cell that is no string) goes through the csv module: the bytes are the same.
    """

    def __init__(self):
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def of(self, batch: Sequence[Sequence[str]]) -> str:
        try:
            lines = [",".join(row) for row in batch]
        except TypeError:  # a cell that is no string: the csv module writes it as it writes it
            return self.quoted_rows(batch)
        if not lines:
            return ""
        # Rows the csv module quotes: a cell that holds a comma (more commas than cells less one), a
        # quote or a line break, or one empty cell (written `""`).
        for number in [number for number, (line, row) in enumerate(zip(lines, batch))
                       if line.count(",") + 1 != len(row) or '"' in line or "\n" in line or "\r" in line or not line]:
            lines[number] = self.quoted(batch[number])[:-2]
        return "\r\n".join(lines) + "\r\n"

    def quoted(self, row: Sequence) -> str:
        return self.quoted_rows([row])

    def quoted_rows(self, rows: Sequence[Sequence]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerows(rows)
        return self._buffer.getvalue()


def read_rows(path: Path) -> Iterator[dict]:
    """The rows of a CSV this module wrote, as dicts (for comparing snapshots)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        yield from csv.DictReader(handle)


def write_jsonl_gz(path: Path, items: Iterable[object]) -> int:
    """gzip of JSON Lines, one item a line, complete or absent; the line count."""
    with atomic_file(path) as raw:
        return jsonl_gz_into(raw, items)


def jsonl_gz_into(raw: IO[bytes], items: Iterable[object]) -> int:
    """`items` as gzip JSON Lines into the binary file `raw` (left open); the line count. No name and
    no time in the gzip header: the same items make the same bytes."""
    count = 0
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
        text = io.TextIOWrapper(zipped, encoding="utf-8", newline="\n")
        for item in items:
            text.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
            text.write("\n")
            count += 1
        text.flush()
        text.detach()
    return count


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """A hidden directory beside `final` to fill; on success it is renamed to `final` in one step.

    On failure it is removed; after a kill it stays hidden (`.NAME.partial`) for `clean_leftovers`.
    `final` must not exist: a set of files is published under a new name.
    """
    make_folders(final.parent)
    staged = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    with staging(staged, lambda tmp: rename_into_place(tmp, final)):
        yield staged
        _sync_tree(staged)
        os.chmod(staged, 0o750)


def point_link(link: Path, target: str) -> None:
    """Make `link` a relative symlink to `target`, replaced in one rename (readers never see it missing)."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.partial")
    temporary.unlink(missing_ok=True)
    with staging(temporary, lambda tmp: rename_into_place(tmp, link)):
        os.symlink(target, temporary)


def _sync_tree(directory: Path) -> None:
    for file in directory.rglob("*"):
        if file.is_file():
            os.chmod(file, EXPORT_MODE)
    sync_dir(directory)


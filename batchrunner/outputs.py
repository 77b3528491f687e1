"""Outputs that are complete or absent (SPEC sections 6 and 11): CSV tables, gzip JSON Lines, and a
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
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, Union

from .files import EXPORT_MODE, atomic_file, atomic_text, neutralise, sync_dir

LIST_SEPARATOR = " "
Source = Union[str, Callable[[dict], Any]]
Column = tuple[str, Source]


def read(item: dict, source: Source) -> Any:
    if callable(source):
        return source(item)
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


def write_csv(path: Path, columns: Sequence[Column], items: Iterable[dict]) -> int:
    """Write `items` as CSV rows under a temporary name and rename it into place; the row count."""
    return write_rows(path, [name for name, _ in columns], (row(item, columns) for item in items))


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    count = 0
    # utf-8-sig: the byte-order mark makes Excel read the file as UTF-8 (SPEC section 6 allows it).
    with atomic_text(path, encoding="utf-8-sig") as handle:
        writer = csv.writer(handle, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        for values in rows:
            writer.writerow(values)
            count += 1
    return count


def read_rows(path: Path) -> Iterator[dict]:
    """The rows of a CSV this module wrote, as dicts (for comparing snapshots)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        yield from csv.DictReader(handle)


def write_jsonl_gz(path: Path, items: Iterable[object]) -> int:
    """gzip of JSON Lines, one item a line, complete or absent; the line count."""
    count = 0
    with atomic_file(path) as raw:
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

    On failure it is removed; after a kill it stays hidden (`.NAME.partial`) for `clean_staged`.
    `final` must not exist: a set of files is published under a new name.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield staged
        _sync_tree(staged)
        os.chmod(staged, 0o750)
        os.rename(staged, final)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    sync_dir(final.parent)


def clean_staged(directory: Path) -> list[Path]:
    """Remove hidden `.partial` files and directories a killed run left in `directory`."""
    removed = []
    for leftover in directory.glob(".*.partial") if directory.is_dir() else ():
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def point_link(link: Path, target: str) -> None:
    """Make `link` a relative symlink to `target`, replaced in one rename (readers never see it missing)."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.partial")
    temporary.unlink(missing_ok=True)
    os.symlink(target, temporary)
    os.replace(temporary, link)
    sync_dir(link.parent)


def _sync_tree(directory: Path) -> None:
    for file in directory.rglob("*"):
        if file.is_file():
            os.chmod(file, EXPORT_MODE)
    sync_dir(directory)


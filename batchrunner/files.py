"""Files that are complete or absent: written under a temporary name, flushed, synced and renamed.

Also the one rule for CSV cells that a spreadsheet would run as a formula.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

# OWASP's list for CSV injection: a cell starting with one of these is read as a formula by
# Excel, LibreOffice and Google Sheets. A leading apostrophe makes it text and shows as nothing.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# Readable by the owner and its group (say, auditors), not by everyone: an inventory of
# callback URLs is no secret, but no business of other users of the machine either.
EXPORT_MODE = 0o640


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


@contextmanager
def atomic_text(path: Path, newline: str = "", encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text file at `path` that is complete or absent (see `atomic_file`)."""
    with atomic_file(path, "w", newline=newline, encoding=encoding) as handle:
        yield handle


@contextmanager
def atomic_file(path: Path, mode: str = "wb", **options) -> Iterator[IO]:
    """Open a temporary file beside `path`; on success it replaces `path` in one rename, on failure it is removed.

    The temporary name starts with a dot and ends in `.partial`, so no reader globbing `*.csv`
    picks up a file in the making, and `clean_partials` can remove what a killed process left.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, EXPORT_MODE)
        os.replace(tmp, path)
    except BaseException:
        _remove(Path(tmp))
        raise
    _sync_dir(path.parent)


def copy_atomic(source: Path, target: Path) -> None:
    """Replace `target` with a copy of `source`, atomically.

    A copy, not a hard link: whoever opens `clients-latest.csv` and saves it in place must not
    change the dated file too.
    """
    with open(source, "rb") as src, atomic_file(target) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def clean_partials(directory: Path, stem: str) -> list[Path]:
    """Remove temporary files a killed run left behind (their writer is gone: we hold the job's run)."""
    removed = []
    for leftover in directory.glob(f".{stem}*.partial"):
        _remove(leftover)
        removed.append(leftover)
    return removed


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _sync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

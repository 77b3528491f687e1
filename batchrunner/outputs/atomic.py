"""Files that are complete or absent: written under a temporary name, flushed, synced and renamed;
`staging`, the life every such output shares (a file, a staged directory, a link), and
`clean_leftovers`, the one cleaner of what a killed run left.

Also the export folder (created 0750, a warning when others may write into it), the one rule for
CSV cells that a spreadsheet would run as a formula, and one-line errors for a folder that cannot
be written (permissions, a full disk) instead of a traceback naming a temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator

from batchrunner.errors import RunnerError

# OWASP's list for CSV injection: a cell starting with one of these is read as a formula by
# Excel, LibreOffice and Google Sheets; OWASP ASVS 5.0 (1.2.10) adds the NUL character.
# A leading apostrophe makes it text and shows as nothing.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")

# Readable by the owner and its group (say, auditors), not by everyone: an inventory of
# callback URLs is no secret, but no business of other users of the machine either.
EXPORT_MODE = 0o640
# The folder likewise; and writable by its owner only, or anyone could plant clients-latest.csv.
EXPORT_DIR_MODE = 0o750
EXPORT_SETTING = "RUNNER_EXPORT_DIR"

# Temporary files this process is writing now: `remove_open_partials` deletes them when the
# process ends with a writer still going (serve past its stop timeout, the README's "The export: `export-clients`").
_open_partials: set[Path] = set()
_partials_lock = threading.Lock()
_ending = False  # set by remove_open_partials: no temporary file may start after it


class WriteError(RunnerError):
    """A folder that cannot be written (permissions, a full disk): one line naming it and its setting."""

    def __init__(self, directory: Path, error: OSError, setting: str = EXPORT_SETTING):
        super().__init__(str(directory), error.strerror or str(error), setting)
        self.directory, self.error, self.setting = directory, error, setting

    def message(self) -> str:
        if self.error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            fix = f"free some space there, or set {self.setting} to a folder on another disk"
        else:
            fix = f"make it a folder the runner's user can write, or set {self.setting} to one"
        return f"{self.setting}: cannot write exports to {self.directory}: {self.error.strerror or self.error}; {fix}"


def prepare_export_dir(directory: Path, log: logging.Logger, setting: str = EXPORT_SETTING) -> None:
    """Create an output folder (and missing parents) 0750, or stricter as the umask says; check that
    a file can be made in it; warn when an existing one lets its group or others write into it.

    Every job calls it before its first request to Auth0: a bulk export can take an hour, and must
    not end in a folder that cannot take its file (README, "The export")."""
    make_folders(directory, setting)
    with _reporting(directory, setting):
        # A file made and dropped, nameless where the file system allows (O_TMPFILE): the only
        # honest test of "can write" (a read-only mount, ACLs, root without CAP_DAC_OVERRIDE).
        tempfile.TemporaryFile(dir=directory).close()
        mode = stat.S_IMODE(directory.stat().st_mode)
    writers = [who for who, bit in (("its group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if mode & bit]
    if writers:
        log.warning(
            "%s %s is writable by %s (mode %04o): they could replace the exports; chmod go-w %s",
            setting, directory, " and ".join(writers), mode, directory,
        )


def make_folders(directory: Path, setting: str = EXPORT_SETTING) -> None:
    """`directory` and its missing parents, each made 0750 (or stricter as the umask says): the mode
    of every folder the runner writes outputs into (exports, snapshots, the log archive's days)."""
    for missing in reversed([d for d in (directory, *directory.parents) if not d.exists()]):
        with _reporting(missing.parent, setting):  # the folder that refused a new entry is the one to fix
            missing.mkdir(mode=EXPORT_DIR_MODE, exist_ok=True)
    if not directory.is_dir():
        raise WriteError(directory, FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST)), setting)


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


@contextmanager
def atomic_text(path: Path, newline: str = "", encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text file at `path` that is complete or absent (see `atomic_file`)."""
    with atomic_file(path, "w", newline=newline, encoding=encoding) as handle:
        yield handle


@contextmanager
def atomic_file(path: Path, mode: str = "wb", setting: str = EXPORT_SETTING, place: Callable[[Path], None] | None = None,
                **options) -> Iterator[IO]:
    """Open a temporary file beside `path`; on success it replaces `path` in one rename, on failure it is removed.

    The temporary name starts with a dot and ends in `.partial`, so no reader globbing `*.csv`
    picks up a file in the making, and `clean_leftovers` can remove what a killed process left.
    An OSError of the folder or of a write through the handle is a WriteError naming `setting`.
    `place(temporary)`, when given, puts the written file in place instead of the rename (a
    checkpointed archive publishes it together with its checkpoint: JobState.publish).
    """
    directory = path.parent
    with _reporting(directory, setting):
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=directory)
    with staging(Path(name), place or (lambda tmp: rename_into_place(tmp, path, setting))) as tmp:
        handle = os.fdopen(fd, mode, **options)
        try:
            yield _Guarded(handle, directory, setting)
            with _reporting(directory, setting):
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            with contextlib.suppress(OSError):  # flushed already on success; removed anyway on failure
                handle.close()
        with _reporting(directory, setting):
            os.chmod(tmp, EXPORT_MODE)


@contextmanager
def staging(tmp: Path, place: Callable[[Path], None]) -> Iterator[Path]:
    """The one life of every output made under a hidden temporary name (a file, a directory): the
    body fills `tmp`; on success `place(tmp)` puts it in place durably, on failure (or once the
    process is ending, `remove_open_partials`) it is removed, whatever it is."""
    _track(tmp)
    try:
        yield tmp
        place(tmp)
    except BaseException:
        remove_output(tmp)
        raise
    finally:
        with _partials_lock:
            _open_partials.discard(tmp)


def rename_into_place(tmp: Path, final: Path, setting: str = EXPORT_SETTING) -> None:
    """`tmp` renamed to `final` (a file replaces one of that name; a directory needs a new name), the folder synced."""
    with _reporting(final.parent, setting):
        os.replace(tmp, final)
        sync_dir(final.parent)


def copy_atomic(source: Path, target: Path, setting: str = EXPORT_SETTING) -> None:
    """Replace `target` with a copy of `source`, atomically.

    A copy, not a hard link: whoever opens `clients-latest.csv` and saves it in place must not
    change the dated file too.
    """
    with _reporting(source.parent, setting):
        src = open(source, "rb")
    with src, atomic_file(target, setting=setting) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def remove_open_partials() -> list[Path]:
    """Remove the temporary files this process is still writing, and start no other: for a process
    that exits with a writer still going (`serve` past its stop timeout, its run recorded)."""
    global _ending
    with _partials_lock:
        _ending = True
        removed = sorted(_open_partials)
        for tmp in removed:
            remove_output(tmp)
        _open_partials.clear()
    return removed


def _track(tmp: Path) -> None:
    with _partials_lock:
        if _ending:
            remove_output(tmp)
            raise RunnerError("the process is ending; no file is written")
        _open_partials.add(tmp)


class _Guarded:
    """The file being written, whose write errors (a full disk, a quota) become one WriteError line."""

    def __init__(self, handle: IO, directory: Path, setting: str):
        self._handle, self._directory, self._setting = handle, directory, setting

    def write(self, data):
        # Once per CSV row: a try costs nothing where a context manager cost a quarter of the
        # conversion of a user export (2.5 µs a row).
        try:
            return self._handle.write(data)
        except OSError as exc:
            raise WriteError(self._directory, exc, self._setting) from None

    def writelines(self, lines) -> None:
        with _reporting(self._directory, self._setting):
            self._handle.writelines(lines)

    def __getattr__(self, name):
        return getattr(self._handle, name)


@contextmanager
def _reporting(directory: Path, setting: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise WriteError(directory, exc, setting) from None


def clean_leftovers(directory: Path, names: re.Pattern | None = None) -> list[Path]:
    """Remove the hidden `.partial` files and directories a killed run left in `directory` (their
    writer is gone: we hold the job's run).

    With `names`, only those of an output whose whole name it matches: `.clients-*.partial` would
    also take a running job's `.clients-spa-….partial` (another job, another lock)."""
    removed = []
    with _reporting(directory, EXPORT_SETTING):
        for leftover in directory.glob(".*.partial"):
            match = _PARTIAL.fullmatch(leftover.name)
            if names is None or (match and names.fullmatch(match["name"])):
                remove_output(leftover)
                removed.append(leftover)
    return removed


# What atomic_file and staged_directory name a temporary: `.{name}.{mkstemp's random part}.partial`.
_PARTIAL = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]+\.partial")


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def remove_output(path: Path) -> None:
    """Remove a file or a whole directory (a staged set of files) that may be gone already."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        _remove(path)


def sync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Files are complete or absent; formula cells are neutralised."""

import os
import re
import stat
from pathlib import Path

import pytest

from batchrunner.outputs.atomic import EXPORT_MODE, atomic_text, clean_leftovers, copy_atomic, neutralise


@pytest.mark.parametrize("cell, expected", [
    ("=SUM(A1)", "'=SUM(A1)"), ("+1", "'+1"), ("-1", "'-1"), ("@cmd", "'@cmd"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("\0x", "'\0x"), ("plain", "plain"), ("", ""), ("a=b", "a=b"),
])
def test_neutralise(cell, expected):
    assert neutralise(cell) == expected


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_text(target) as handle:
            handle.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_finished_write_replaces_the_file_with_the_export_mode(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    with atomic_text(target) as handle:
        handle.write("new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == EXPORT_MODE
    copy_atomic(target, tmp_path / "sub" / "latest.csv")
    assert (tmp_path / "sub" / "latest.csv").read_text() == "new"


def test_clean_leftovers_removes_only_the_named_outputs_leftovers(tmp_path):
    (tmp_path / ".clients-x.csv.abc.partial").write_text("x")
    (tmp_path / "clients-latest.csv").write_text("keep")
    assert [p.name for p in clean_leftovers(tmp_path, re.compile(r"clients-x\.csv"))] == [".clients-x.csv.abc.partial"]
    assert os.listdir(tmp_path) == ["clients-latest.csv"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_a_full_disk_while_rows_are_written_is_one_line_naming_the_fix(tmp_path):
    from batchrunner.outputs.atomic import WriteError, _Guarded

    full = open("/dev/full", "w", buffering=1)  # line-buffered: each row reaches the device
    guarded = _Guarded(full, tmp_path, "RUNNER_EXPORT_DIR")
    with pytest.raises(WriteError) as caught:
        guarded.write("a,b\r\n")
    with pytest.raises(OSError):
        full.close()  # what the failed write left in the buffer is still not written
    assert caught.value.message() == (f"RUNNER_EXPORT_DIR: cannot write exports to {tmp_path}: No space left on device; "
                                      "free some space there, or set RUNNER_EXPORT_DIR to a folder on another disk")

"""Every log line of a run carries its job and run id, also those written by its helper threads."""

from __future__ import annotations

import io
import logging

import pytest

from batchrunner import logs
from batchrunner.runs import records as runs
from batchrunner.store.database import open_database


@pytest.fixture
def log_lines():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.setup(stream=stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logs.bind("-", None)


def test_the_heartbeat_thread_logs_with_the_runs_tags(tmp_path, log_lines):
    db = open_database(f"sqlite:///{tmp_path / 'runner.db'}")
    logs.bind("export-clients", 41)
    with runs.Heartbeat(db, 41, every=0.01) as heartbeat:  # no run 41 is running: as if marked abandoned
        assert heartbeat.lost.wait(10)
    assert " WARNING job=export-clients run=41 run 41 was marked abandoned by another process; asking the job to stop\n" in log_lines.getvalue()

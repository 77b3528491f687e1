"""The progress line on a terminal: pages, rows, rate and waits, and never a log line glued to it."""

from __future__ import annotations

import io
import logging
import os
import pty
import re
import subprocess
import sys

import pytest

from batchrunner import logs
from batchrunner.progress import Progress
from conftest import RUNNER

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR) "

# Nothing here concerns the database: SQLite alone keeps the suite short.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def log_to():
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def setup(stream):
        logs.setup(stream=stream)

    yield setup
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_a_log_line_ends_the_progress_line_before_it_is_written(log_to):
    term, now = Terminal(), [0.0]
    log_to(term)
    progress = Progress("export-clients", term, clock=lambda: now[0])
    now[0] = 2.0
    progress.update(1, 50, 100, requests=39)
    logging.getLogger("runner.api").warning("retrying after: HTTP 429 from GET /api/v2/clients")
    progress.waiting(1.234)
    now[0] = 4.0
    progress.update(2, 50, 200, requests=80)
    progress.close()
    lines = term.getvalue().split("\n")
    assert lines[0] == "\rexport-clients: page 1 of 50, 100 rows, 19.5 req/s\x1b[K"
    assert re.fullmatch(STAMP + "job=- run=- retrying after: HTTP 429 from GET /api/v2/clients", lines[1])
    assert lines[2:] == [
        "\rexport-clients: page 1 of 50, 100 rows, waiting 1.2 s for the rate limit\x1b[K"
        "\rexport-clients: page 2 of 50, 200 rows, 20.0 req/s\x1b[K",
        "",
    ]


def test_nothing_is_drawn_where_stderr_is_no_terminal():
    assert Progress.on_terminal("export-clients", io.StringIO()) is None


@SQLITE_ONLY
def test_run_job_on_a_terminal_keeps_log_lines_whole(env, tenant, tmp_path):
    app = tenant.tenant
    app.set_clients(1000)
    app.fail_next("/api/v2/clients", [429], retry_after=1)  # a wait for the rate limit before the first page
    app.expire_tokens_after(6)  # a log line ("token rejected") while pages come in
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(RUNNER), "run-job", "export-clients"], env=env, cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=60) == 0
    proc.stdout.close()
    text = b"".join(chunks).decode().replace("\r\n", "\n")  # the terminal turns each \n into \r\n
    logged = [line for line in text.split("\n") if re.search(STAMP, line)]
    assert any("token rejected" in line for line in logged)
    assert all(re.match(STAMP, line) for line in logged), [line for line in logged if not re.match(STAMP, line)]
    # The 429 answers page 0 or page 1 asked beside it: the wait shows at the first page or the next.
    assert re.search(r"\rexport-clients: (first page|page 1 of 10, 100 rows, \d+\.\d req/s), waiting \d\.\d s for the rate limit\x1b\[K", text)
    assert re.search(r"\rexport-clients: page 10 of 10, 1000 rows, \d+\.\d req/s\x1b\[K\n", text)
    # The log line came while a status line was on the terminal (pages 2 to 10 are asked for, and one
    # may meet the expired token, before page 1 is shown: only the wait's line is sure to come first).
    assert text.index("\rexport-clients: ") < text.index("token rejected")

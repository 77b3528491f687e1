"""The progress line on a terminal: pages, rows, rate and waits, and never a log line glued to it."""

from __future__ import annotations

import io
import logging
import re

import pytest

from batchrunner import logs
from batchrunner.progress import Progress
from batchrunner.repeats import Repeats
from conftest import on_a_terminal, wait_for

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


def on_terminal(env, cwd, job: str) -> str:
    """What `runner run-job JOB` writes to stderr when stderr is a terminal; it must succeed."""
    return on_a_terminal(env, cwd, ["run-job", job], "stderr")


@SQLITE_ONLY
def test_run_job_on_a_terminal_keeps_log_lines_whole(env, tenant, tmp_path):
    app = tenant.tenant
    app.set_clients(1000)
    app.fail_next("/api/v2/clients", [429], retry_after=1)  # a wait for the rate limit before the first page
    app.expire_tokens_after(6)  # a log line ("token rejected") while pages come in
    text = on_terminal(env, tmp_path, "export-clients")
    logged = [line for line in text.split("\n") if re.search(STAMP, line)]
    assert any("token rejected" in line for line in logged)
    assert all(re.match(STAMP, line) for line in logged), [line for line in logged if not re.match(STAMP, line)]
    # The 429 answers page 0 or page 1 asked beside it: the wait shows at the first page or the next.
    assert re.search(r"\rexport-clients: (first page|page 1 of 10, 100 rows, \d+\.\d req/s), waiting \d\.\d s for the rate limit\x1b\[K", text)
    assert re.search(r"\rexport-clients: page 10 of 10, 1000 rows, \d+\.\d req/s\x1b\[K\n", text)
    # The log line came while a status line was on the terminal (pages 2 to 10 are asked for, and one
    # may meet the expired token, before page 1 is shown: only the wait's line is sure to come first).
    assert text.index("\rexport-clients: ") < text.index("token rejected")


def test_a_wait_counts_down_on_the_line_and_ends():
    term, now = Terminal(), [10.0]
    progress = Progress("snapshot", term, clock=lambda: now[0])
    progress.show("2 of 9 tables, 1,200 rows")
    progress.waiting(3.0)
    now[0] = 11.0
    wait_for(lambda: "waiting 2.0 s" in term.getvalue(), timeout=5)  # the line is redrawn as time passes
    now[0] = 13.5
    wait_for(lambda: term.getvalue().endswith("\rsnapshot: 2 of 9 tables, 1,200 rows\x1b[K"), timeout=5)
    progress.close()
    assert term.getvalue().split("\r")[1:4] == [
        "snapshot: 2 of 9 tables, 1,200 rows\x1b[K",
        "snapshot: 2 of 9 tables, 1,200 rows, waiting 3.0 s for the rate limit\x1b[K",
        "snapshot: 2 of 9 tables, 1,200 rows, waiting 2.0 s for the rate limit\x1b[K",
    ]


def test_repeated_warnings_are_one_line_and_a_count(caplog):
    now = [0.0]
    repeats = Repeats(logging.getLogger("runner.api"), window=30, clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="runner.api"):
        for second in range(40):
            now[0] = float(second)
            repeats.warning("retrying after: %s", f"HTTP 429 from GET /api/v2/roles/rol_{second}/users")
        repeats.warning("retrying after: %s", "HTTP 503 from GET /api/v2/roles")
        repeats.flush()
    assert caplog.messages == [
        "retrying after: HTTP 429 from GET /api/v2/roles/rol_0/users",
        "retrying after: HTTP 429 from GET …: 29 more times within 30 s",  # told when the window has passed
        "retrying after: HTTP 429 from GET /api/v2/roles/rol_30/users",
        "retrying after: HTTP 503 from GET /api/v2/roles",
        "retrying after: HTTP 429 from GET …: 9 more times within 9 s",  # told as the run ends
    ]


@SQLITE_ONLY
def test_a_storm_of_429s_is_one_warning_and_a_count(runner, tenant):
    tenant.tenant.set_clients(1000)
    tenant.tenant.fail_next("/api/v2/clients", [429] * 6, retry_after=1)
    shown = runner("run-job", "export-clients")
    assert shown.returncode == 0, shown.stderr
    told = [line.split(" run=1 ")[1] for line in shown.stderr.splitlines() if "retrying after" in line]
    assert told[0].startswith("retrying after: HTTP 429 from GET /api/v2/clients")
    assert re.fullmatch(r"retrying after: HTTP 429 from GET …: 5 more times within \d+ s", told[-1]), told
    assert len(told) <= 3, told  # one a window of 30 s, not one a retry


@SQLITE_ONLY
def test_snapshot_on_a_terminal_shows_its_tables_and_rows(env, tenant, tmp_path):
    tenant.set_scopes(["read:clients", "read:client_grants", "read:resource_servers", "read:roles", "read:users",
                       "read:connections", "read:organizations", "read:organization_members"])
    text = on_terminal(env, tmp_path, "snapshot")
    assert "\rsnapshot: 0 of 9 tables, 0 rows\x1b[K" in text
    assert re.search(r"\rsnapshot: 9 of 9 tables, \d[\d,]* rows\x1b\[K\n", text), text


@SQLITE_ONLY
def test_export_logs_on_a_terminal_counts_the_events(env, tenant, tmp_path):
    tenant.set_scopes(["read:logs"])
    held = len(tenant.logs.held())
    text = on_terminal(env, tmp_path, "export-logs")
    assert "\rexport-logs: reading events\x1b[K" in text
    assert f"\rexport-logs: {held:,} events read\x1b[K" in text or f"\rexport-logs: {held + 1:,} events read" in text, text


@SQLITE_ONLY
def test_export_users_on_a_terminal_shows_auth0s_job_then_the_rows(env, tenant, tmp_path):
    tenant.set_scopes(["read:users", "read:connections"])
    text = on_terminal(env, tmp_path, "export-users")
    assert re.search(r"\rexport-users: Auth0's job job_\w+ (pending|processing), \d+ % done, waiting \d\.\d s before looking again\x1b\[K", text), text
    assert f"\rexport-users: {tenant.exports.users:,} users written\x1b[K" in text


def test_one_row_is_one_row():
    term = Terminal()
    progress = Progress("export-clients", term, clock=lambda: 1.0)
    progress.update(1, 1, 1, requests=1)
    assert term.getvalue() == "\rexport-clients: page 1 of 1, 1 row, 0.0 req/s\x1b[K"

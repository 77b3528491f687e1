"""Shared fixtures: the stand-in tenant (one per session), databases (SQLite, and PostgreSQL where
RUNNER_TEST_POSTGRES_URL is set), and a helper that runs the real `runner` command in a process.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "runner.py"
POSTGRES_ENV = "RUNNER_TEST_POSTGRES_URL"
SKIP_PG = f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"


def pytest_configure(config):
    config.addinivalue_line("markers", "waits: spends its time waiting for a schedule or a time limit; runs first")


def pytest_collection_modifyitems(items):
    """The tests that mostly wait go first: in parallel (scripts/test) they overlap the others
    instead of being the last still running."""
    items.sort(key=lambda item: item.get_closest_marker("waits") is None)  # a stable sort


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """One line for the PostgreSQL tests skipped without RUNNER_TEST_POSTGRES_URL, not one per test."""
    skipped = terminalreporter.stats.get("skipped", [])
    postgres = [r for r in skipped if isinstance(r.longrepr, tuple) and r.longrepr[2].endswith(SKIP_PG)]
    if postgres:
        terminalreporter.stats["skipped"] = [r for r in skipped if r not in postgres]
    yield
    if postgres:
        terminalreporter.stats["skipped"] = skipped  # the closing count still includes them
        terminalreporter.write_line(f"SKIPPED [{len(postgres)}] {SKIP_PG}")


# For a test whose claim holds on either database: one of them keeps the suite short.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

_counting = threading.Lock()


def _count_answers_in_flight() -> None:
    """Count the stand-in's answers under way, per server: a test's end waits for those its processes
    left (a page asked with a latency set), else one lands after the next test's reset and counts there."""
    from batchrunner.sandbox import server

    handler = server._Handler
    if getattr(handler, "counts_in_flight", False):
        return
    dispatch = handler._dispatch

    def counted(self):
        with _counting:
            self.server.in_flight = getattr(self.server, "in_flight", 0) + 1
        try:
            dispatch(self)
        finally:
            with _counting:
                self.server.in_flight -= 1

    handler._dispatch, handler.counts_in_flight = counted, True


@pytest.fixture(scope="session", autouse=True)
def _compiled_sources():
    """The runner's modules compiled once: with PYTHONDONTWRITEBYTECODE set, each of the suite's
    hundreds of `runner` processes would compile them again (about 0.1 s of CPU each)."""
    import compileall

    for folder in ("batchrunner", "jobs", "migrations"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    compileall.compile_file(RUNNER, quiet=1)


@pytest.fixture(scope="session")
def sandbox():
    from batchrunner.sandbox import Sandbox

    _count_answers_in_flight()
    with Sandbox(clients=25, seed=7).start() as sb:
        yield sb


@pytest.fixture
def tenant(sandbox):
    """The stand-in tenant, reset to its defaults for this test."""
    sandbox.reset()
    yield sandbox
    end_started_processes()  # they ask nothing more
    wait_for(lambda: getattr(sandbox._server, "in_flight", 0) == 0, timeout=15)
    sandbox.reset()


@pytest.fixture
def lone_tenant():
    """A stand-in of this test's own, for a test that leaves answers of many seconds in flight when
    it ends (a latency of 25 s): they land on no other test's tenant, and no test waits for them."""
    from batchrunner.sandbox import Sandbox

    _count_answers_in_flight()
    sb = Sandbox(clients=25, seed=7).start()
    yield sb
    sb.stop()


@pytest.fixture(scope="session")
def postgres_server_url():
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(SKIP_PG)
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url):
    """A database of its own for this test session, dropped at the end."""
    name = f"runner_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    from batchrunner.store import database as dbmodule

    for known in list(dbmodule._databases.values()):
        known.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each database-facing test runs on SQLite and, where configured, on PostgreSQL (emptied first)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'runner.db'}"
    url = request.getfixturevalue("postgres_url")
    empty_database(url)
    return url


def empty_database(url: str) -> None:
    from batchrunner.store.database import open_database

    db = open_database(url)
    with db.write() as conn:
        conn.execute(text("TRUNCATE runs, token_cache, token_issuances, pruned_runs, maintenance, job_state, rate_limit_buckets, user_actions, last_seen RESTART IDENTITY"))


@pytest.fixture
def clean_env(tmp_path):
    """The environment without any of the runner's settings, and this test's export directory."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH0_", "RUNNER_", "STATE_DIRECTORY", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_"))}
    return {**base, "RUNNER_EXPORT_DIR": str(tmp_path / "exports"), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def local_env(clean_env, database_url):
    """A clean environment for the runner with this test's database and export directory, no tenant."""
    return {**clean_env, "RUNNER_DATABASE_URL": database_url}


@pytest.fixture
def env(local_env, tenant):
    """The same, pointed at the stand-in tenant."""
    return {**local_env, **tenant.settings()}


def _runner(env, cwd):
    def run(*args, extra_env=None, timeout=60, **kwargs):
        return subprocess.run(
            [sys.executable, str(RUNNER), *args],
            env={**env, **(extra_env or {})},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )

    return run


@pytest.fixture
def runner(env, tmp_path):
    """Run `python runner.py ARGS...` in a process, in this test's directory; returns CompletedProcess."""
    return _runner(env, tmp_path)


@pytest.fixture
def local_runner(local_env, tmp_path):
    """The same without a tenant."""
    return _runner(local_env, tmp_path)


_started: list[subprocess.Popen] = []


def start_runner(env, cwd, *args, **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), *args],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )
    _started.append(proc)
    return proc


def end_started_processes() -> None:
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    """A test that fails half-way must not leave a `runner serve` behind to disturb the next."""
    yield
    end_started_processes()


JOBS = str(Path(__file__).parent / "fixture_jobs")
QUIET = {  # the tiny test jobs loaded, every job's schedule off unless a test turns it on
    "RUNNER_JOBS": JOBS,
    "RUNNER_SCHEDULE_EXPORT_CLIENTS": "off",
    "RUNNER_SCHEDULE_SNAPSHOT": "off",
    "RUNNER_SCHEDULE_EXPORT_LOGS": "off",
    "RUNNER_SCHEDULE_EXPORT_USERS": "off",
    "RUNNER_SCHEDULE_TENANT_CHECKS": "off",
    "RUNNER_SCHEDULE_USERS_CLEANUP": "off",
    "RUNNER_SCHEDULE_EXPORT_LOGS": "off",
    "RUNNER_SCHEDULE_HELLO": "off",
    "RUNNER_SCHEDULE_SLEEPY": "off",
    "RUNNER_SCHEDULE_FAILING": "off",
    "RUNNER_SCHEDULE_LEAKY": "off",
    "RUNNER_SCHEDULE_PING": "off",
    "RUNNER_SCHEDULE_STUBBORN": "off",
    "RUNNER_SCHEDULE_DRIFTY": "off",
}


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def stop(proc, timeout=30):
    """SIGTERM, as systemd stops a service; the exit code and what it wrote on stderr."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def run_runner(env, cwd, *args, timeout=60):
    """`python runner.py ARGS...` with `env`, in `cwd`, to its end; returns CompletedProcess."""
    return _runner(env, cwd)(*args, timeout=timeout)


def on_a_terminal(env, cwd, args, stream: str) -> str:
    """What `python runner.py ARGS...` writes to `stream` ("stdout" or "stderr") when that one is a
    terminal (a pty) and the other a pipe; the run must succeed."""
    main, child = pty.openpty()
    other = {"stdout": "stderr", "stderr": "stdout"}[stream]
    proc = subprocess.Popen([sys.executable, str(RUNNER), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            **{stream: child, other: subprocess.PIPE})
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
    shown = b"".join(chunks).decode()
    with getattr(proc, other) as piped:
        assert proc.wait(timeout=60) == 0, (shown, piped.read())
    return shown.replace("\r\n", "\n")  # the terminal turns each \n into \r\n


SKEWED = str(Path(__file__).parent / "skewed.py")


def run_skewed(env, cwd, seconds: float, *args, other_node: bool = False, timeout=60):
    """The runner in a process whose clock runs `seconds` ahead, on this node or as on another host."""
    return subprocess.run(
        [sys.executable, SKEWED, str(seconds), *(["--other-node"] if other_node else []), *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


class Refusals:
    """Makes the database refuse some updates, as a full or read-only one would, until the test ends.

    A trigger, so the runner's own processes meet it: `refuse("runs", "NEW.status <> 'running'")`.
    On PostgreSQL the error is SQLSTATE 53100 (disk full); SQLite's triggers can only abort.
    """

    def __init__(self, url: str):
        from batchrunner.store.database import open_database

        self.db = open_database(url)
        self.made: list[tuple[str, str]] = []

    def refuse(self, table: str, condition: str, message: str = "could not extend file: No space left on device") -> None:
        name = f"refuse_{table}_{len(self.made)}"
        with self.db.write() as conn:
            if self.db.dialect == "postgresql":
                conn.execute(text(
                    f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                    f"$$ BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'disk_full'; END $$"))
                conn.execute(text(f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION {name}()"))
            else:
                conn.execute(text(f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW WHEN {condition} BEGIN SELECT RAISE(ABORT, '{message}'); END"))
        self.made.append((name, table))

    def allow(self) -> None:
        with self.db.write() as conn:
            for name, table in self.made:
                if self.db.dialect == "postgresql":
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
                    conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))
                else:
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        self.made.clear()


@pytest.fixture
def refusals(database_url):
    made = Refusals(database_url)
    yield made
    made.allow()

"""The database: engine set-up, transactions, and the few statements that differ by dialect.

Everything dialect-specific lives here, so the rest of the runner is the same on SQLite and
PostgreSQL. The contract the rest relies on:

- `read()` gives a connection in a transaction that may be read-only.
- `write()` gives a connection in a transaction that holds the write lock from its first
  statement: `BEGIN IMMEDIATE` on SQLite, where a deferred read-then-write transaction fails
  at once under WAL whatever the busy timeout; on PostgreSQL, rows read with `for_update()`
  are locked until commit.
- `insert_ignore()` inserts a row unless its unique key exists.
- `ensure_schema()` brings the tables to the migrations' head, once, whoever else is trying.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import Table, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from . import clock
from .errors import ConfigError, RunnerError

# The migrations in migrations/versions, oldest first; a test checks the two agree. Comparing with
# a constant keeps Alembic out of the start-up path of every command (SPEC section 10).
SCHEMA_REVISIONS = ("0001", "0002", "0003")
SCHEMA_HEAD = SCHEMA_REVISIONS[-1]

SQLITE_BUSY_TIMEOUT_MS = 30_000

# How long a write that must not be lost (the end of a run) keeps trying while the database is
# unreachable: long enough for a PostgreSQL restart or fail-over.
OUTAGE_SECONDS = 60.0
OUTAGE_ATTEMPTS = 20  # more than the backoff fits in OUTAGE_SECONDS: the time is the bound

T = TypeVar("T")


class DatabaseError(RunnerError):
    """The runner's database cannot be reached or is not the runner's."""


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = _create_engine(url)
        self.dialect = self.engine.dialect.name
        self._schema_checked = False

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(runner_write=True)
            with conn.begin():
                yield conn

    @staticmethod
    def for_update(stmt):
        """Lock the selected rows until commit (PostgreSQL); SQLite's write() already holds the lock."""
        return stmt.with_for_update()

    def insert_ignore(self, conn: Connection, table: Table, values: dict) -> bool:
        """Insert unless the row's unique key exists; True when a row was inserted."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return conn.execute(insert(table).values(**values).on_conflict_do_nothing()).rowcount == 1

    def ensure_schema(self) -> None:
        if self._schema_checked:
            return
        if self.current_revision() != SCHEMA_HEAD:
            self.upgrade()
        self._schema_checked = True

    def current_revision(self) -> str | None:
        """The schema's revision; None for a new database. DatabaseError for one the runner cannot use."""
        try:
            with self.read() as conn:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError as exc:
            # Only now ask why (off every command's start-up path): a new database, or an unusable one.
            if self._has_no_tables():
                return None
            raise DatabaseError(f"cannot use the database {self.safe_url}: {_first_line(exc)}; check RUNNER_DATABASE_URL") from None
        if revision is not None and revision not in SCHEMA_REVISIONS:
            raise DatabaseError(
                f"the database {self.safe_url} is at revision {revision}, newer than this runner knows "
                f"({SCHEMA_HEAD}); upgrade the runner, or point RUNNER_DATABASE_URL elsewhere"
            )
        return revision

    def _has_no_tables(self) -> bool:
        try:
            with self.read() as conn:
                return "alembic_version" not in inspect(conn).get_table_names()
        except DBAPIError:
            return False

    def upgrade(self) -> None:
        """Apply every pending migration, serialised with any other process doing the same.

        Callers check `current_revision()` first, which refuses a database the runner cannot use.
        """
        from alembic import command

        with self.write() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7401227)"))  # any constant: the runner's migration lock
            command.upgrade(alembic_config(conn), "head")
        self._schema_checked = True

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def through_outages(call: Callable[[], T], seconds: float = OUTAGE_SECONDS, sleep=clock.sleep) -> T:
    """`call()`, called again while the database is unreachable (restarted, connection dropped), for a bounded time."""
    from . import retry  # here, not at the top: it loads requests, which `runner history` does not need

    return retry.retrying(OUTAGE_ATTEMPTS, seconds, sleep, retry_on=OperationalError)(call)


def alembic_config(conn: Connection | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    config.attributes["connection"] = conn
    return config


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("RUNNER_DATABASE_URL", f"{url!r} is not a database URL; e.g. sqlite:///var/runner.db") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigError(
            "RUNNER_DATABASE_URL",
            f"no driver for {parsed.drivername} ({exc}); for PostgreSQL install the extra: pip install '.[postgres]'",
        ) from None


def _sqlite_engine(url) -> Engine:
    if url.database and url.database != ":memory:":
        _create_private_file(Path(url.database))
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy's begin event, not the driver, decide how transactions start.
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        if url.database:
            _tighten_sidecars(Path(url.database))

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("runner_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _create_private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does: it holds bearer tokens (SPEC section 4)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError as exc:
        raise ConfigError("RUNNER_DATABASE_URL", f"cannot create the database file {path}: {exc.strerror}") from None


def _tighten_sidecars(path: Path) -> None:
    # SQLite gives -wal and -shm the main file's mode; this covers files left by an older umask.
    for suffix in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + suffix)
        try:
            if sidecar.stat().st_mode & 0o077:
                os.chmod(sidecar, 0o600)
        except FileNotFoundError:
            pass


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


_databases: dict[str, Database] = {}


class NoDatabase(DatabaseError):
    """A command that only reads found no SQLite file where the settings point (it creates none)."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


def sqlite_file(url: str) -> Path | None:
    """The absolute path of a SQLite database file; None for another database or an in-memory one."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).absolute()


def open_database(url: str, *, migrate: bool = True, create: bool = True) -> Database:
    """One Database per URL per process, its schema brought up to date on first use.

    `create=False` (commands that only read): NoDatabase where a SQLite file does not exist yet.
    """
    db = _databases.get(url)
    if db is None and not create:
        path = sqlite_file(url)
        if path is not None and not path.exists():
            raise NoDatabase(path)
    if db is None:
        db = _databases[url] = Database(url)
    if migrate:
        db.ensure_schema()
    return db

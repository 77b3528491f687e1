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
- `database_time(conn)` is the database's clock: heartbeats and token leases are written and
  judged by it alone, so hosts (or processes) whose clocks disagree do not declare each other dead.
- A database error leaves `read()` and `write()` as a `DatabaseError`: one line naming the
  database (password masked), the problem and the fix. `transient` is true only for
  connection-class errors (server gone, connection cut), the only ones worth trying again;
  `Conflict` (a unique key or another constraint) is the one a caller may expect and catch.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import Float, Table, create_engine, event, func, inspect, literal_column, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from batchrunner import clock
from batchrunner.errors import ConfigError, RunnerError, one_line

# The migrations in migrations/versions, oldest first; a test checks the two agree. Comparing with
# a constant keeps Alembic out of the start-up path of every command (README, "Development").
SCHEMA_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010")
SCHEMA_HEAD = SCHEMA_REVISIONS[-1]

# How long SQLite waits for another process's write lock; `?timeout=SECONDS` in the URL changes it.
SQLITE_BUSY_SECONDS = 30.0
SQLITE_MAGIC = b"SQLite format 3\x00"

# How long a write that must not be lost (the end of a run) keeps trying while the database is
# unreachable: long enough for a PostgreSQL restart or fail-over.
OUTAGE_SECONDS = 60.0
OUTAGE_ATTEMPTS = 20  # more than the backoff fits in OUTAGE_SECONDS: the time is the bound

T = TypeVar("T")


class DatabaseError(RunnerError):
    """The runner's database failed: one line naming it (password masked), the problem and the fix.

    `kind` says which problem (unreachable, locked, read-only, full, damaged, not-a-database,
    io, conflict, other); `transient` is true for connection-class errors alone.
    """

    def __init__(self, text: str, kind: str = "other"):
        super().__init__(text)
        self.kind = kind
        self.transient = kind == "unreachable"


class Conflict(DatabaseError):
    """A write refused by a constraint: a unique key another process claimed first, a check, a trigger."""


class Database:
    def __init__(self, url: str):
        self.url = url
        self.busy_seconds = SQLITE_BUSY_SECONDS
        self.engine = _create_engine(url, self)
        self.dialect = self.engine.dialect.name
        self._schema_checked = False

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, durable: bool = False) -> Iterator[Connection]:
        """`durable`: the commit is on disk when it returns, also on SQLite (synchronous=FULL), whose
        other commits may be rolled back by a power loss (synchronous=NORMAL, fast and never corrupt)."""
        with self._errors(), self.engine.connect() as conn:
            conn.execution_options(runner_write=True, runner_durable=durable)
            with conn.begin():
                yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (DBAPIError, PoolTimeout) as exc:
            raise self.explain(exc) from exc

    @staticmethod
    def for_update(stmt):
        """Lock the selected rows until commit (PostgreSQL); SQLite's write() already holds the lock."""
        return stmt.with_for_update()

    def seconds_between(self, start, end):
        """`end - start` in seconds, computed by the database: the status page reads thousands of
        durations, and converting two times a row in Python cost it most of its 200 ms."""
        if self.dialect == "postgresql":
            return func.extract("epoch", end - start).cast(Float)
        return (func.julianday(end) - func.julianday(start)) * 86400.0

    def _insert(self, table: Table):
        """INSERT of this database's dialect, which has ON CONFLICT (both SQLite and PostgreSQL do)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def insert_ignore(self, conn: Connection, table: Table, values: dict) -> bool:
        """Insert unless the row's unique key exists; True when a row was inserted."""
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING.
        stmt = self._insert(table).values(**values).on_conflict_do_nothing().returning(literal_column("1"))
        return conn.execute(stmt).first() is not None

    def upsert_newer(self, conn: Connection, table: Table, rows: list[dict], newer: str) -> None:
        """Insert each row, or overwrite the row of its primary key where this one's `newer` column is
        later: the newest kept, whatever the order, and a row given twice changes nothing. One
        statement for all the rows (executemany)."""
        if not rows:
            return
        stmt = self._insert(table)
        keys = [column.name for column in table.primary_key.columns]
        stmt = stmt.on_conflict_do_update(index_elements=keys, where=table.c[newer] < stmt.excluded[newer],
                                          set_={name: stmt.excluded[name] for name in rows[0] if name not in keys})
        conn.execute(stmt, rows)

    def ensure_schema(self, create: bool = True) -> None:
        """Bring the schema to head; `create=False`: NoDatabase where the runner's tables are not there
        (a command that only reads makes no tables in whatever database it is pointed at)."""
        if self._schema_checked:
            return
        revision = self.current_revision()
        if revision is None and not create:
            raise NoDatabase(absent(self.url))
        if revision != SCHEMA_HEAD:
            self.upgrade()
        self._schema_checked = True

    def current_revision(self) -> str | None:
        """The schema's revision; None for a new database. DatabaseError for one the runner cannot use."""
        try:
            with self.read() as conn:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DatabaseError as exc:
            # Only now ask why (off every command's start-up path): a new database, or an unusable one.
            if self._has_no_tables():
                return None
            if exc.kind == "other":
                raise DatabaseError(f"cannot use the database {self.safe_url}: {_first_line(exc.__cause__)}; check RUNNER_DATABASE_URL") from None
            raise
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
        except DatabaseError:
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
        return safe_url(self.url)

    def dispose(self) -> None:
        self.engine.dispose()

    def explain(self, exc: Exception) -> DatabaseError:
        """The one line a person reads for a database error, and its kind."""
        reason, where = _first_line(exc), self.safe_url
        if isinstance(exc, IntegrityError):
            return Conflict(f"the database {where} refused a write: {reason}", "conflict")
        if _is_connection_error(exc):
            return DatabaseError(f"cannot reach the database {where}: {reason}; check that it is running, and RUNNER_DATABASE_URL", "unreachable")
        if self.dialect == "sqlite":
            return self._explain_sqlite(exc, reason, where)
        state = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
        if state == "25006":
            return DatabaseError(f"the database {where} is read-only ({reason}); after a fail-over, point RUNNER_DATABASE_URL at the primary", "read-only")
        if state.startswith("53"):
            return DatabaseError(f"the database server of {where} is out of resources ({reason}); free disk space or memory on it", "full")
        return DatabaseError(f"the database {where} failed: {reason}")

    def _explain_sqlite(self, exc: Exception, reason: str, where: str) -> DatabaseError:
        name = getattr(getattr(exc, "orig", None), "sqlite_errorname", "") or ""
        path = make_url(self.url).database or ":memory:"
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return DatabaseError(
                f"the database {where} is locked: another process held it for more than {self.busy_seconds:g} s; "
                f"run again, or find that process (fuser {path})", "locked")
        if name.startswith("SQLITE_CORRUPT") or (name.startswith("SQLITE_NOTADB") and _looks_like_sqlite(path)):
            return DatabaseError(
                f"the database file {path} is damaged ({reason}); restore it from a backup, or move it aside "
                "and the runner makes a new one (without the run history and the token ledger)", "damaged")
        if name.startswith("SQLITE_NOTADB"):
            return DatabaseError(f"cannot use the database {where}: {reason}; check RUNNER_DATABASE_URL", "not-a-database")
        if name.startswith("SQLITE_READONLY"):
            return DatabaseError(f"the database {where} is read-only ({reason}); check that the runner's user may write {path} and its folder", "read-only")
        if name.startswith("SQLITE_FULL"):
            return DatabaseError(f"the disk holding the database {path} is full ({reason}); free some space", "full")
        if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")):
            return DatabaseError(f"cannot read or write the database {where} ({reason}); check the disk and the file's permissions", "io")
        return DatabaseError(f"the database {where} failed: {reason}")


def database_time(conn: Connection) -> datetime:
    """The database's current time, in UTC: the one clock heartbeats and leases are written and judged by.

    On PostgreSQL that is the server's clock, whichever host asks; SQLite's is this machine's
    system clock, which every process sharing the file shares.
    """
    if conn.dialect.name == "postgresql":
        return conn.execute(text("SELECT clock_timestamp()")).scalar().astimezone(timezone.utc)
    value = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar()
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


class _Outage(Exception):
    def __init__(self, error: DatabaseError):
        super().__init__(str(error))
        self.error = error


def through_outages(call: Callable[[], T], seconds: float = OUTAGE_SECONDS, sleep=clock.sleep) -> T:
    """`call()`, called again while the database is unreachable (restarted, connection dropped), for a bounded time.

    Only connection-class errors are tried again: a read-only, full, locked or damaged database
    fails at once, with its one line.
    """
    from batchrunner.auth0 import retry  # here, not at the top: it loads requests, which `runner history` does not need

    def attempt() -> T:
        try:
            return call()
        except DatabaseError as exc:
            if exc.transient:
                raise _Outage(exc) from None
            raise

    try:
        return retry.retrying(OUTAGE_ATTEMPTS, seconds, sleep, retry_on=_Outage)(attempt)
    except _Outage as outage:
        raise outage.error from None


def _is_connection_error(exc: Exception) -> bool:
    if isinstance(exc, PoolTimeout) or getattr(exc, "connection_invalidated", False):
        return True
    orig = getattr(exc, "orig", None)
    if orig is None or type(orig).__module__.startswith("sqlite3"):
        return False  # SQLite has no connection to lose: its errors are about the file
    state = getattr(orig, "sqlstate", None)
    if state:  # class 08: connection exception; 57P01-03: the server shut down or is starting
        return state.startswith("08") or state in ("57P01", "57P02", "57P03")
    return isinstance(exc, OperationalError)  # psycopg: no SQLSTATE when the connection itself failed


def _looks_like_sqlite(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def safe_url(url: str) -> str:
    """The URL to show a person: any password masked, also in a URL too broken to parse."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return _masked(url)
    if _stray_at(parsed):
        return _masked(url)
    if "password" in parsed.query:  # libpq takes one there too
        parsed = parsed.update_query_dict({"password": "***"})
    return parsed.render_as_string(hide_password=True).replace("password=%2A%2A%2A", "password=***")


def _stray_at(parsed) -> bool:
    """An unencoded @ in the password: SQLAlchemy ends the password at its first @ and takes the rest
    for the host (or, past a /, the database), which a URL shown or the driver's error would show."""
    where = (parsed.host or "") + ("" if parsed.get_backend_name() == "sqlite" else parsed.database or "")
    return "@" in where


def _masked(url: str) -> str:
    # A password may hold '@', ':' or '/': everything between the first ':' of the user part and
    # the last '@' goes.
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.split(':', 1)[0]}:***@{host}"
    rest = re.sub(r"(?i)(password=)[^&]*", r"\1***", rest)
    return f"{scheme}{sep}{rest}"


def alembic_config(conn: Connection | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_migrations()))
    config.attributes["connection"] = conn
    return config


def _create_engine(url: str, db: Database) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("RUNNER_DATABASE_URL", f"'{_masked(url)}' is not a database URL; e.g. sqlite:///var/runner.db") from None
    except ValueError:  # SQLAlchemy's int() of the port
        raise ConfigError(
            "RUNNER_DATABASE_URL",
            f"'{_masked(url)}' has a port that is not a number; a password that holds @, : or / must be "
            "percent-encoded (@ as %40, : as %3A, / as %2F)",
        ) from None
    if _stray_at(parsed):
        raise ConfigError("RUNNER_DATABASE_URL", f"'{_masked(url)}' has an @ in its password or user name; "
                          "percent-encode it (@ as %40, : as %3A, / as %2F)")
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, db)
        if parsed.get_backend_name() == "postgresql":
            from batchrunner.store.schema import add_postgresql_options

            add_postgresql_options()
        # hide_parameters: a failed statement's error must not carry its values (a bearer token) into a log.
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigError(
            "RUNNER_DATABASE_URL",
            f"no driver for {parsed.drivername} ({exc}); for PostgreSQL install the extra: pip install '.[postgres]'",
        ) from None


def _sqlite_engine(url, db: Database) -> Engine:
    _refuse_sqlite_host(url)
    db.busy_seconds = _busy_seconds(url)
    if url.database and url.database != ":memory:":
        _create_private_file(Path(url.database))
        _tighten_sidecars(Path(url.database))  # before SQLite opens them (a -shm it may not write: a read-only database)
    engine = create_engine(url, connect_args={"timeout": db.busy_seconds}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy's begin event, not the driver, decide how transactions start.
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(db.busy_seconds * 1000)}")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        if url.database:
            _tighten_sidecars(Path(url.database))

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        options = conn.get_execution_options()
        # A connection's safety level cannot change inside a transaction: set it before, only when it differs.
        level = "FULL" if options.get("runner_durable") else "NORMAL"
        if conn.connection.info.get("synchronous", "NORMAL") != level:
            conn.exec_driver_sql(f"PRAGMA synchronous={level}")
            conn.connection.info["synchronous"] = level
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("runner_write") else "BEGIN")

    return engine


def _refuse_sqlite_host(url) -> None:
    """`sqlite://var/runner.db` (two slashes) makes `var` a host and opens ./runner.db: refused, with
    the form meant."""
    if url.host or url.username or url.port:
        meant = "/".join(part for part in (url.host, url.database) if part)
        raise ConfigError("RUNNER_DATABASE_URL", f"'{_masked(url.render_as_string(hide_password=False))}' has two slashes, "
                          f"which make {url.host or url.username!r} a host name; write {url.drivername}:///{meant} "
                          "(three slashes before a relative path, four before an absolute one)")


def _busy_seconds(url) -> float:
    given = url.query.get("timeout")
    if given is None:
        return SQLITE_BUSY_SECONDS
    try:
        seconds = float(given)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ConfigError("RUNNER_DATABASE_URL", f"timeout={given} is not a number of seconds from 0 to 3600")
    return seconds


def _create_private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does: it holds bearer tokens (README, "Tokens").

    An existing one that its group or others may use loses that access (the owner's own is kept: a
    file made read-only stays so, and SQLite opens it read-only, so the commands that only read work
    and a write names the database as read-only). Opened, not only looked at: a symlink's target is
    what gets created and changed."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDONLY | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError("RUNNER_DATABASE_URL", f"cannot create or open the database file {path}: {exc.strerror}; make its "
                          "folder one the runner's user can write, or point RUNNER_DATABASE_URL elsewhere") from None
    try:
        mode = os.fstat(fd).st_mode & 0o777
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    except OSError:
        raise ConfigError("RUNNER_DATABASE_URL", f"the database file {path} holds tokens and others may use it (mode "
                          f"{mode:04o}), and it is not the runner's user's to change; run `chmod go= {path}` as its owner, "
                          "or give it to the runner's user") from None
    finally:
        os.close(fd)


def _tighten_sidecars(path: Path) -> None:
    # SQLite gives -wal and -shm the main file's mode when it makes them; this covers files left by
    # an older umask, and a database made read-only and then writable again (its -shm would stay
    # read-only, and every write fail as if the database were).
    try:
        wanted = path.stat().st_mode & 0o700
    except OSError:
        return
    for suffix in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + suffix)
        try:
            if sidecar.stat().st_mode & 0o777 != wanted:
                os.chmod(sidecar, wanted)
        except OSError:  # gone, or not ours: SQLite says what it cannot do
            pass


def _first_line(exc: Exception) -> str:
    # The driver's own message, first line only: what follows (PostgreSQL's DETAIL, SQLAlchemy's
    # SQL) may quote a row's values.
    return one_line(getattr(exc, "orig", None) or exc)


_databases: dict[str, Database] = {}


class NoDatabase(DatabaseError):
    """A command that only reads found no database, or none of the runner's tables in it (it creates none).

    `where` says which, as `absent()` words it."""

    def __init__(self, where: str):
        super().__init__(where)
        self.where = where


def absent(url: str) -> str:
    """What a reading command found missing: `no database at PATH`, or `no runner tables in the database URL`."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return f"no database at {path}"
    return f"no runner tables in the database {f'sqlite:///{path}' if path else safe_url(url)}"


def sqlite_file(url: str) -> Path | None:
    """The absolute path of a SQLite database file; None for another database or an in-memory one."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None  # not a URL the runner can use: opening it says why, in one line
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    _refuse_sqlite_host(parsed)
    return Path(parsed.database).absolute()


def close_all() -> None:
    """Close every database this process opened (a process that ends: SQLite folds its WAL into the file)."""
    for db in _databases.values():
        try:
            db.dispose()
        except Exception:  # the process ends either way; what was committed is in the database
            pass


def open_database(url: str, *, migrate: bool = True, create: bool = True) -> Database:
    """One Database per URL per process, its schema brought up to date on first use.

    `create=False` (commands that only read): NoDatabase where a SQLite file does not exist yet.
    """
    db = _databases.get(url)
    if db is None and not create:
        path = sqlite_file(url)
        if path is not None and not path.exists():
            raise NoDatabase(absent(url))
    if db is None:
        db = _databases[url] = Database(url)
    if migrate:
        db.ensure_schema(create=create)
    return db


def _migrations() -> Path:
    """migrations/: inside the package once installed (pyproject.toml maps it there), beside it in a checkout."""
    import batchrunner

    package = Path(batchrunner.__file__).resolve().parent
    inside = package / "migrations"
    return inside if (inside / "env.py").is_file() else package.parent / "migrations"

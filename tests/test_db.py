"""The schema is Alembic's alone, the models say the same as the migrations, and a database the
runner cannot use (locked, read-only, damaged, a broken URL) is one line, not a traceback."""

import os
import stat

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from batchrunner import clock
from batchrunner.errors import ConfigError
from batchrunner.runs import records as runs
from batchrunner.store.database import SCHEMA_HEAD, SCHEMA_REVISIONS, Database, alembic_config, open_database, safe_url
from batchrunner.store.schema import RunStatus, Trigger, metadata, token_issuances
from batchrunner.store.schema import runs as runs_table
from conftest import JOBS, QUIET, SQLITE_ONLY, empty_database, run_runner, start_runner, wait_for


def test_the_code_knows_every_migration():
    script = ScriptDirectory.from_config(alembic_config())
    assert tuple(reversed([rev.revision for rev in script.walk_revisions()])) == SCHEMA_REVISIONS
    assert script.get_current_head() == SCHEMA_HEAD


def test_migrations_create_exactly_the_models(database_url):
    db = open_database(database_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_the_partial_indexes_carry_their_condition_on_postgresql():
    # models.py names PostgreSQL's condition only once a PostgreSQL database is opened (not at
    # import, which would load SQLAlchemy's whole PostgreSQL dialect on SQLite too).
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex

    Database("postgresql+psycopg://runner@127.0.0.1:1/none")  # an engine only: nothing connects
    ddl = {index.name: str(CreateIndex(index).compile(dialect=postgresql.dialect())) for index in runs_table.indexes}
    assert ddl["uq_runs_one_running_per_job"].endswith("WHERE status = 'running'")
    assert ddl["uq_runs_job_scheduled_for"].endswith("WHERE status != 'abandoned' AND scheduled_for IS NOT NULL")


def test_db_upgrade_on_a_current_database_says_so(runner):
    first = runner("db", "upgrade")
    assert first.returncode == 0
    assert runner("db", "upgrade").stdout.strip().endswith(f"is up to date (revision {SCHEMA_HEAD}).")


def test_a_database_of_the_first_revision_is_brought_up_to_date_with_its_runs(local_runner, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = open_database(url, migrate=False)
    with db.write() as conn:
        command.upgrade(alembic_config(conn), SCHEMA_REVISIONS[0])
        conn.execute(text(
            "INSERT INTO runs (job, \"trigger\", status, started_at, finished_at, host, pid) "
            "VALUES ('export-clients', 'manual', 'succeeded', '2026-01-02 03:04:05', '2026-01-02 03:05:00', 'old', 7)"
        ))
    result = local_runner("history", "--json", extra_env={"RUNNER_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert '"started_at": "2026-01-02T03:04:05Z"' in result.stdout
    assert open_database(url, migrate=False).current_revision() == SCHEMA_HEAD


@SQLITE_ONLY
def test_a_database_file_others_may_read_loses_their_access_and_its_owner_keeps_theirs(local_runner, tmp_path):
    # It holds bearer tokens (README, "Tokens"). Made 0640 by hand, or 0440 (read-only for its owner).
    path = tmp_path / "state" / "kept.db"
    url = {"RUNNER_DATABASE_URL": f"sqlite:///{path}"}
    assert local_runner("db", "upgrade", extra_env=url).returncode == 0
    for given, left in ((0o640, 0o600), (0o440, 0o400)):
        os.chmod(path, given)
        result = local_runner("history", extra_env=url)
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(path.stat().st_mode) == left


@SQLITE_ONLY
def test_a_database_url_naming_a_dangling_symlink_creates_its_target_private(local_runner, tmp_path):
    target = tmp_path / "elsewhere" / "runner.db"
    target.parent.mkdir()
    link = tmp_path / "state" / "runner.db"
    link.parent.mkdir()
    link.symlink_to(target)
    assert local_runner("db", "upgrade", extra_env={"RUNNER_DATABASE_URL": f"sqlite:///{link}"}).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_database_path_that_cannot_be_created_is_a_setting_error(local_runner):
    result = local_runner("db", "upgrade", extra_env={"RUNNER_DATABASE_URL": "sqlite:////proc/no-such-dir/runner.db"})
    assert result.returncode == 2
    assert result.stderr == ("runner: RUNNER_DATABASE_URL: cannot create or open the database file /proc/no-such-dir/runner.db: No "
                             "such file or directory; make its folder one the runner's user can write, or point RUNNER_DATABASE_URL "
                             "elsewhere\n")


def test_a_file_that_is_not_a_database_is_one_line(local_runner, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("these are not the tables you are looking for\n" * 100)
    result = local_runner("history", extra_env={"RUNNER_DATABASE_URL": f"sqlite:///{junk}"})
    assert result.returncode == 1
    assert result.stderr == f"runner: cannot use the database sqlite:///{junk}: file is not a database; check RUNNER_DATABASE_URL\n"


def test_a_database_newer_than_the_runner_is_refused_in_one_line(local_runner, tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with open_database(url).write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    for command_line in (["history"], ["db", "upgrade"]):
        result = local_runner(*command_line, extra_env={"RUNNER_DATABASE_URL": url})
        assert result.returncode == 1
        assert result.stderr == (
            f"runner: the database {url} is at revision 0099, newer than this runner knows ({SCHEMA_HEAD}); "
            "upgrade the runner, or point RUNNER_DATABASE_URL elsewhere\n"
        )


# --- database errors: one line naming the database, its exit code, and no run left `running` ---------


def _sqlite_env(clean_env, tmp_path, **query):
    path = tmp_path / "state" / "runner.db"
    url = f"sqlite:///{path}" + "".join(f"?{k}={v}" for k, v in query.items())
    return {**clean_env, **QUIET, "RUNNER_DATABASE_URL": url, "SLEEPY_SECONDS": "2"}, url, path


def test_sqlite_locked_past_the_busy_timeout_at_the_start_is_one_line(clean_env, tmp_path):
    env, url, path = _sqlite_env(clean_env, tmp_path, timeout="0.5")
    db = open_database(url)
    with db.write():  # another process holds the write lock all along
        result = run_runner(env, tmp_path, "run-job", "hello")
    assert result.returncode == 1
    assert result.stderr == (
        f"runner: the database {url} is locked: another process held it for more than 0.5 s; "
        f"run again, or find that process (fuser {path})\n"
    )


def _abandoned_by_the_next_sweep(db, job):
    [run] = runs.history(db, job)
    assert run["status"] == "running"  # its end was not written, and its process is gone
    assert [m["id"] for m in runs.sweep_dead(db, clock.utcnow())] == [run["id"]]
    assert [r["status"] for r in runs.history(db, job)] == ["abandoned"]


def test_sqlite_locked_at_a_runs_end_is_one_line_and_the_run_is_abandoned_by_the_next_sweep(clean_env, tmp_path):
    env, url, _ = _sqlite_env(clean_env, tmp_path, timeout="0.5")
    db = open_database(url)
    proc = start_runner(env, tmp_path, "run-job", "sleepy")
    wait_for(lambda: [r["status"] for r in runs.history(db, "sleepy")] == ["running"])
    with db.write():  # held from before the run ends until its process has given up
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"runner: run 1 succeeded, but its end could not be recorded: the database {url} is locked: another "
        f"process held it for more than 0.5 s; run again, or find that process (fuser {db.engine.url.database}); "
        "it shows as abandoned once the database takes writes again"
    )
    _abandoned_by_the_next_sweep(db, "sleepy")


READ_ONLY = "?options=-c%20default_transaction_read_only%3Don"


def test_postgresql_read_only_at_the_start_is_one_line(clean_env, tmp_path, postgres_url):
    empty_database(postgres_url)
    url = postgres_url + READ_ONLY
    result = run_runner({**clean_env, **QUIET, "RUNNER_DATABASE_URL": url}, tmp_path, "run-job", "hello")
    assert result.returncode == 1
    assert result.stderr.startswith(f"runner: the database {safe_url(url)} is read-only (cannot execute ")
    assert result.stderr.endswith(" in a read-only transaction); after a fail-over, point RUNNER_DATABASE_URL at the primary\n")
    assert result.stderr.count("\n") == 1


def test_postgresql_read_only_after_a_fail_over_at_a_runs_end_is_one_line_and_the_run_is_abandoned(clean_env, tmp_path, postgres_url):
    empty_database(postgres_url)
    env = {**clean_env, **QUIET, "RUNNER_DATABASE_URL": postgres_url, "SLEEPY_SECONDS": "3"}
    db = open_database(postgres_url)
    proc = start_runner(env, tmp_path, "run-job", "sleepy")
    wait_for(lambda: [r["status"] for r in runs.history(db, "sleepy")] == ["running"])
    name = make_url(postgres_url).database
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:  # as a fail-over to a standby: connections cut, the new ones read-only
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        out, err = proc.communicate(timeout=30)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        admin.dispose()
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"runner: run 1 succeeded, but its end could not be recorded: the database {safe_url(postgres_url)} is read-only "
        "(cannot execute UPDATE in a read-only transaction); after a fail-over, point RUNNER_DATABASE_URL at the primary; "
        "it shows as abandoned once the database takes writes again"
    )
    db.dispose()  # its connections were cut too
    _abandoned_by_the_next_sweep(db, "sleepy")


# --- RUNNER_DATABASE_URL that cannot be parsed ---------------------------------------------------


@pytest.mark.parametrize("url, shown, problem", [
    ("postgresql+psycopg://runner:Sup3r-s3cret@db.internal:abc/runner", "postgresql+psycopg://runner:***@db.internal:abc/runner",
     "has a port that is not a number"),
    ("postgresql+psycopg://runner:p@ss:Sup3r-s3cret@db.internal/runner", "postgresql+psycopg://runner:***@db.internal/runner",
     "has a port that is not a number"),
    ("postgresql+psycopg//runner:Sup3r-s3cret@db.internal/runner", "postgresql+psycopg//runner:***@db.internal/runner",
     "is not a database URL"),
])
def test_a_database_url_that_cannot_be_parsed_is_one_line_with_the_password_masked(clean_env, tmp_path, url, shown, problem):
    result = run_runner({**clean_env, "RUNNER_DATABASE_URL": url}, tmp_path, "history")
    assert result.returncode == 2
    assert result.stderr.startswith(f"runner: RUNNER_DATABASE_URL: '{shown}' {problem}")
    assert result.stderr.count("\n") == 1
    assert "s3cret" not in result.stdout + result.stderr



@pytest.mark.parametrize("command_line", [["history"], ["run-job", "hello"], ["db", "upgrade"], ["metrics"]])
def test_a_password_with_an_unencoded_at_never_shows_its_tail(clean_env, tmp_path, command_line):
    url = "postgresql+psycopg://postgres:s3cr@t-Pa55@127.0.0.1:5432/runner"
    assert safe_url(url) == "postgresql+psycopg://postgres:***@127.0.0.1:5432/runner"
    result = run_runner({**clean_env, "RUNNER_DATABASE_URL": url, "RUNNER_JOBS": JOBS}, tmp_path, *command_line)
    assert (result.returncode, result.stderr) == (2, (
        "runner: RUNNER_DATABASE_URL: 'postgresql+psycopg://postgres:***@127.0.0.1:5432/runner' has an @ in its password "
        "or user name; percent-encode it (@ as %40, : as %3A, / as %2F)\n"))
    assert "Pa55" not in result.stdout + result.stderr


def test_a_password_with_an_at_and_a_slash_is_masked_whole():
    url = "postgresql+psycopg://runner:a@b/Pa55@db.internal/runner"
    assert safe_url(url) == "postgresql+psycopg://runner:***@db.internal/runner"
    with pytest.raises(ConfigError) as err:
        Database(url)
    assert "Pa55" not in str(err.value) and "b/" not in str(err.value)


@pytest.mark.parametrize("command_line", [["history"], ["jobs"], ["run-job", "hello"], ["db", "upgrade"], ["prune"]])
def test_a_sqlite_url_with_two_slashes_is_exit_2_showing_the_form_meant(clean_env, tmp_path, command_line):
    env = {**clean_env, "RUNNER_DATABASE_URL": "sqlite://var/runner.db", "RUNNER_JOBS": JOBS}
    result = run_runner(env, tmp_path, *command_line)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", (
        "runner: RUNNER_DATABASE_URL: 'sqlite://var/runner.db' has two slashes, which make 'var' a host name; "
        "write sqlite:///var/runner.db (three slashes before a relative path, four before an absolute one)\n"))
    assert sorted(os.listdir(tmp_path)) == []  # no stray ./runner.db


@pytest.mark.parametrize("command_line, nothing", [
    (["history"], "No runs recorded yet"), (["jobs"], "No job has run yet"),
    (["token", "status"], "No cached token"), (["token", "issuances"], "No token issued yet"),
])
def test_reading_commands_create_no_table_in_an_empty_postgresql_database(postgres_server_url, clean_env, tmp_path, command_line, nothing):
    name = f"runner_empty_{os.getpid()}_{command_line[-1]}"
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server_url).set(database=name)
    try:
        result = run_runner({**clean_env, "RUNNER_DATABASE_URL": url.render_as_string(hide_password=False)}, tmp_path, *command_line)
        probe = create_engine(url)
        with probe.connect() as conn:
            tables = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar()
        probe.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    assert (result.returncode, tables) == (0, 0), result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"{nothing}: no runner tables in the database {url.render_as_string(hide_password=True)}; to read another, set "
        "RUNNER_DATABASE_URL (or STATE_DIRECTORY, whose runner.db is the default)")


# --- a damaged SQLite file ---------------------------------------------------------------------------


def _damaged(tmp_path, *objects):
    """A database with a run and an issuance whose pages holding `objects` (tables, indexes, or 'schema') are overwritten."""
    path = tmp_path / "state" / "runner.db"
    db = open_database(f"sqlite:///{path}")
    started = runs.start(db, "hello", Trigger.MANUAL, None, {}, clock.utcnow())
    runs.finish(db, started.run_id, RunStatus.SUCCEEDED, clock.utcnow(), result={"greeting": "hi"})
    with db.write() as conn:
        conn.execute(insert(token_issuances).values(
            issued_at=clock.utcnow(), expires_at=clock.utcnow(), tenant="t", client_id="c", audience="a",
            requested_by="test", host="h", pid=1))
        pages = dict(conn.execute(text("SELECT name, rootpage FROM sqlite_master")).all())
    db.dispose()  # the last connection to close writes the WAL into the file
    with open(path, "r+b") as f:
        for name in objects:
            f.seek(100 if name == "schema" else (pages[name] - 1) * 4096)  # page 1 starts with the file header
            f.write(b"\xff" * 64)
    return path


DAMAGED = ("runner: the database file {path} is damaged (database disk image is malformed); restore it from a backup, "
           "or move it aside and the runner makes a new one (without the run history and the token ledger)\n")


@pytest.mark.parametrize("objects, commands", [
    (("schema",), [["history"], ["jobs"], ["token", "status"], ["token", "issuances"], ["run-job", "hello"], ["db", "upgrade"]]),
    (("runs", "ix_token_issuances_issued_at"), [["history"], ["jobs"], ["token", "issuances"], ["run-job", "hello"]]),
], ids=["schema", "tables"])
def test_a_damaged_sqlite_file_is_one_line_on_every_command(clean_env, tmp_path, objects, commands):
    path = _damaged(tmp_path, *objects)
    env = {**clean_env, **QUIET, "RUNNER_DATABASE_URL": f"sqlite:///{path}"}
    for command_line in commands:
        result = run_runner(env, tmp_path, *command_line)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", DAMAGED.format(path=path)), command_line

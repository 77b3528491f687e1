"""The schema is Alembic's alone, the models say the same as the migrations, and a database the
runner cannot use is one line, not a traceback."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from batchrunner.db import SCHEMA_HEAD, SCHEMA_REVISIONS, alembic_config, open_database
from batchrunner.models import metadata


def test_the_code_knows_every_migration():
    script = ScriptDirectory.from_config(alembic_config())
    assert tuple(reversed([rev.revision for rev in script.walk_revisions()])) == SCHEMA_REVISIONS
    assert script.get_current_head() == SCHEMA_HEAD


def test_migrations_create_exactly_the_models(database_url):
    db = open_database(database_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


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


def test_a_database_path_that_cannot_be_created_is_a_setting_error(local_runner):
    result = local_runner("db", "upgrade", extra_env={"RUNNER_DATABASE_URL": "sqlite:////proc/no-such-dir/runner.db"})
    assert result.returncode == 2
    assert result.stderr == "runner: RUNNER_DATABASE_URL: cannot create the database file /proc/no-such-dir/runner.db: No such file or directory\n"


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

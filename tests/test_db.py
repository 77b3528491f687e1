"""The schema is Alembic's alone, and the models say the same as the migrations."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from batchrunner.db import SCHEMA_HEAD, alembic_config, open_database
from batchrunner.models import metadata


def test_the_code_knows_the_newest_migration():
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD


def test_migrations_create_exactly_the_models(database_url):
    db = open_database(database_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_db_upgrade_on_a_current_database_says_so(runner):
    first = runner("db", "upgrade")
    assert first.returncode == 0
    assert runner("db", "upgrade").stdout.strip().endswith(f"is up to date (revision {SCHEMA_HEAD}).")

"""Alembic environment: runs on the connection the runner hands over (batchrunner.store.database.Database.upgrade).

With no connection handed over (the `alembic` command line), it connects to RUNNER_DATABASE_URL.
"""

from alembic import context

from batchrunner.store.schema import metadata


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from batchrunner.config import load_settings
    from batchrunner.store.database import Database

    with Database(load_settings().database_url).write() as conn:
        run(conn)

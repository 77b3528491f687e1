"""`runner db upgrade`: the runner's own database brought up to date explicitly (README, "Commands")."""

from __future__ import annotations

import click

from batchrunner.cli.common import checked_settings


@click.group()
def db():
    """The runner's own database (RUNNER_DATABASE_URL)."""


@db.command("upgrade")
def db_upgrade():
    """Apply pending migrations to RUNNER_DATABASE_URL.

    Every other command brings the database up to date on its own; this one
    does it explicitly, e.g. once before starting replicas on a new database.
    """
    from batchrunner.store.database import SCHEMA_HEAD, open_database

    database = open_database(checked_settings().database_url, migrate=False)
    before = database.current_revision()
    database.upgrade()
    if before == SCHEMA_HEAD:
        click.echo(f"Database {database.safe_url} is up to date (revision {SCHEMA_HEAD}).")
    else:
        click.echo(f"Database {database.safe_url} upgraded from {before or 'empty'} to revision {SCHEMA_HEAD}.")


def register(cli: click.Group) -> None:
    cli.add_command(db)

"""What every command shares: its settings checked, its one line on stderr, the database it reads (README, "Commands").

Cheap to import (click only): each command module imports it at start-up, the rest inside the functions.
"""

from __future__ import annotations

import click


def say(text: str, warning: bool = False) -> None:
    """A command's own line on stderr (`runner: TEXT`), or a JSON log record where the logs are JSON:
    a log shipper reading `serve` or `run-job` gets JSON throughout (README, RUNNER_LOG_FORMAT)."""
    import logging

    from batchrunner.logs import as_json

    if as_json():
        logging.getLogger("runner").log(logging.WARNING if warning else logging.ERROR, "%s", text)
    else:
        click.echo(f"runner: {'warning: ' if warning else ''}{text}", err=True)


def checked_settings(logs: bool = False, log_format: str | None = None):
    """The settings, checked (a bad one is exit 2); a RUNNER_* variable that is no setting is named on stderr.

    `logs` (run-job, serve): log lines are set up first, in the format asked for, so that even the
    line of a bad setting is in it."""
    import os

    from batchrunner.cli.startup import imports_done
    from batchrunner.config import chosen_log_format, load_settings
    from batchrunner.logs import setup

    imports_done()  # every command reads its settings after its own imports
    if logs:
        setup(fmt=log_format or chosen_log_format(os.environ))
    settings = load_settings()
    for name in settings.unknown:
        say(f"{name} is not a setting of the runner; ignored (see README, Configuration)", warning=True)
    for line in settings.warnings:
        say(line, warning=True)
    return settings


def reading_db(settings):
    """The database for a command that only reads, which creates none: None where there is none yet."""
    from batchrunner.store.database import NoDatabase, open_database

    try:
        return open_database(settings.database_url, create=False)
    except NoDatabase:
        return None


def no_database(settings, nothing: str, as_json: bool) -> None:
    """One line: where a reading command looked, and how to point it elsewhere (on stderr beside JSON)."""
    from batchrunner.store.database import absent

    click.echo(f"{nothing}: {absent(settings.database_url)}; to read another, set "
               "RUNNER_DATABASE_URL (or STATE_DIRECTORY, whose runner.db is the default)", err=as_json)


def where(db) -> str:
    """The database in use, as a person can find it again: a SQLite file by its absolute path, passwords masked."""
    from batchrunner.store.database import sqlite_file

    path = sqlite_file(db.url)
    return f"sqlite:///{path}" if path else db.safe_url


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")(fn)


def settings_and_db(required: bool = True):
    """Settings and the database; these commands read (or prune) what exists and create no database.

    Without a database: a one-line error, or None where the command can do without (`required=False`).
    """
    from batchrunner.cli.startup import imports_done
    from batchrunner.config import load_settings
    from batchrunner.store.database import NoDatabase, open_database

    imports_done()
    settings = load_settings()
    try:
        return settings, open_database(settings.database_url, create=False)
    except NoDatabase as exc:
        if not required:
            return settings, None
        raise NoDatabase(f"{exc.where}; set RUNNER_DATABASE_URL (or STATE_DIRECTORY, whose runner.db "
                         "is the default) to the one the runner uses") from None


def tenant_option(help_text: str):
    return click.option("--tenant", "tenant_name", metavar="NAME", help=help_text)


def chosen_tenants(settings, name: str | None, jobs=None) -> tuple[dict, list]:
    """Every tenant (README, "Several tenants") and those `--tenant NAME` means (all of them without it).

    `jobs`, the registry where the command has loaded it, checks the tenants file's job names."""
    from batchrunner.tenants import load_tenants, pick

    tenants = load_tenants(settings.env, jobs)
    return tenants, pick(tenants, name)


def with_tenant_column(tenants: dict, rows: list[dict]) -> bool:
    """A table shows a TENANT column when there is more than one tenant: configured, or in the rows."""
    return len(set(tenants) | {r.get("tenant") for r in rows if r.get("tenant")}) > 1

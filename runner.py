#!/usr/bin/env python3
"""The runner's command line: each command parses, calls one core function, renders the result.

Run `python runner.py --help` from a checkout, or `runner --help` once installed.
"""

from __future__ import annotations

import sys

import click

from batchrunner import __version__
from batchrunner.errors import RunnerError


class RunnerGroup(click.Group):
    """Turns every RunnerError into one line on stderr and its exit code (SPEC section 3)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RunnerError as exc:
            from batchrunner.logs import redact

            click.echo(f"runner: {redact(exc.message())}", err=True)
            ctx.exit(exc.exit_code)


def _db():
    from batchrunner.config import load_settings
    from batchrunner.db import open_database

    return open_database(load_settings().database_url)


def _json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")(fn)


@click.group(cls=RunnerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
def cli():
    """Run scheduled batch jobs against the Auth0 Management API.

    Settings come from environment variables (AUTH0_DOMAIN, AUTH0_CLIENT_ID,
    AUTH0_CLIENT_SECRET, RUNNER_DATABASE_URL, ...); see the README.
    """


# --- tokens -----------------------------------------------------------------------------------


@cli.group()
def token():
    """The shared Management API token cache and its issuance ledger."""


@token.command("status")
@_json_option
def token_status(as_json):
    """Cached tokens: audience, client id, scope, issued and expiry times (never the token)."""
    from batchrunner import clock, output, tokencache

    rows = tokencache.status(_db(), clock.utcnow())
    if as_json:
        keys = ("audience", "client_id", "scope", "issued_at", "expires_at", "valid")
        click.echo(output.to_json([{k: r[k] for k in keys} for r in rows]))
    elif not rows:
        click.echo("No cached token. `runner token print` or any job gets one.")
    else:
        click.echo(output.table(
            [(r["audience"], r["client_id"], r["scope"], r["issued_at"], r["expires_at"], "yes" if r["valid"] else "no (expired)") for r in rows],
            ["AUDIENCE", "CLIENT ID", "SCOPE", "ISSUED", "EXPIRES", "VALID"],
        ))


@token.command("print")
def token_print():
    """Print a valid access token, from the cache or newly issued.

    For ad-hoc calls: curl -H "Authorization: Bearer $(runner token print)" ...
    The token is a secret: do not paste it into tickets or chats.
    """
    from batchrunner.config import load_credentials
    from batchrunner.logs import redact_secret
    from batchrunner.tokencache import cached_source

    credentials = load_credentials()
    redact_secret(credentials.client_secret)
    click.echo(cached_source(_db(), credentials, "token print").token().access_token)


@token.command("issuances")
@_json_option
def token_issuances(as_json):
    """Every token issued by Auth0 to the runner, newest first, with counts per month."""
    from batchrunner import output, tokencache

    rows = tokencache.issuances(_db())
    if as_json:
        keys = ("issued_at", "expires_at", "audience", "client_id", "scope", "requested_by", "run_id", "host", "pid")
        click.echo(output.to_json([{k: r[k] for k in keys} for r in rows]))
        return
    if not rows:
        click.echo("No token issued yet.")
        return
    click.echo(output.table(
        [(r["issued_at"], r["expires_at"], r["audience"], r["client_id"], r["scope"], r["requested_by"], f"{r['host']}:{r['pid']}") for r in rows],
        ["ISSUED", "EXPIRES", "AUDIENCE", "CLIENT ID", "SCOPE", "REQUESTED BY", "HOST:PID"],
    ))
    click.echo("\n" + output.table(tokencache.monthly_counts(rows), ["MONTH (UTC)", "TOKENS ISSUED"]))


# --- database ---------------------------------------------------------------------------------


@cli.group()
def db():
    """The runner's own database (RUNNER_DATABASE_URL)."""


@db.command("upgrade")
def db_upgrade():
    """Apply pending migrations. Other commands do this on their own for SQLite."""
    from batchrunner.config import load_settings
    from batchrunner.db import SCHEMA_HEAD, open_database

    database = open_database(load_settings().database_url, migrate=False)
    before = database.current_revision()
    database.upgrade()
    if before == SCHEMA_HEAD:
        click.echo(f"Database {database.safe_url} is up to date (revision {SCHEMA_HEAD}).")
    else:
        click.echo(f"Database {database.safe_url} upgraded from {before or 'empty'} to revision {SCHEMA_HEAD}.")


def main():
    cli(prog_name="runner")


if __name__ == "__main__":
    sys.exit(main())

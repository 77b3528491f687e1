"""`runner token ...`: the shared token cache and its issuance ledger (README, "Tokens")."""

from __future__ import annotations

import click

from batchrunner.cli.common import (checked_settings, chosen_tenants, json_option, no_database, reading_db, tenant_option,
                                    with_tenant_column)

TENANT_HELP = "Only this tenant's tokens (RUNNER_TENANTS_FILE); default: every tenant's."
ONE_TENANT_HELP = "The tenant whose credentials to use (RUNNER_TENANTS_FILE); needed where there are several."


@click.group()
def token():
    """The shared Management API token cache and its issuance ledger."""


def _named(rows: list[dict], tenants: dict, chosen: list, tenant_name: str | None) -> list[dict]:
    """Each row with the name of the tenant whose domain it is (the database keeps the domain: README,
    "Several tenants"), None for a domain no tenant has now; only the chosen tenants' rows with --tenant."""
    from batchrunner.config import origin

    names = {}
    for tenant in tenants.values():
        if tenant.domain:
            names.setdefault(origin(tenant.domain), tenant.name)
    named = [{**r, "domain": r["tenant"], "tenant": names.get(origin(r["tenant"]))} for r in rows]
    if tenant_name is None or tenant_name == "all":
        return named
    return [r for r in named if r["tenant"] in {t.name for t in chosen}]


def _read(tenant_name, read):
    """What `token status` and `token issuances` share: the settings, the tenants, the database (None
    where there is none yet) and the rows `read(db)` gives, each named by its tenant."""
    settings = checked_settings()
    tenants, chosen = chosen_tenants(settings, tenant_name)
    db = reading_db(settings)
    return settings, tenants, db, _named(read(db) if db is not None else [], tenants, chosen, tenant_name)


@token.command("status")
@json_option
@tenant_option(TENANT_HELP)
def token_status(as_json, tenant_name):
    """Cached tokens: audience, client id, scope, issued and expiry times (never the token)."""
    from batchrunner import clock
    from batchrunner.auth0 import tokencache
    from batchrunner.cli import render as output

    settings, tenants, db, rows = _read(tenant_name, lambda db: tokencache.status(db, clock.utcnow()))
    if db is None:
        no_database(settings, "No cached token", as_json)
        if not as_json:
            return
    if as_json:
        keys = ("tenant", "domain", "audience", "client_id", "scope", "issued_at", "expires_at", "valid")
        click.echo(output.to_json([{k: r[k] for k in keys} for r in rows]))
    elif not rows:
        click.echo("No cached token. `runner token print` or any job gets one.")
    else:
        several = with_tenant_column(tenants, rows)
        click.echo(output.table(
            [((r["tenant"] or r["domain"],) if several else ()) + (r["audience"], r["client_id"], r["scope"], r["issued_at"],
             r["expires_at"], "yes" if r["valid"] else "no (expired)") for r in rows],
            (["TENANT"] if several else []) + ["AUDIENCE", "CLIENT ID", "SCOPE", "ISSUED", "EXPIRES", "VALID"],
            width=output.terminal_width(),
        ))


@token.command("print")
@tenant_option(ONE_TENANT_HELP)
def token_print(tenant_name):
    """Print a valid access token, from the cache or newly issued.

    For ad-hoc calls: curl -H "Authorization: Bearer $(runner token print)" ...
    The token is a secret: do not paste it into tickets or chats.
    """
    click.echo(_token_source("token print", tenant_name).token().access_token)


@token.command("check")
@tenant_option(ONE_TENANT_HELP)
def token_check(tenant_name):
    """Ask Auth0 for a new token now, to check the credentials.

    A cached token shows only that the secret worked when it was issued;
    this asks Auth0 whatever is cached (one token of the monthly quota),
    and caches the new token for the jobs. Exit 0 when Auth0 issued one,
    1 with Auth0's reason when it refused.
    """
    from batchrunner.cli.render import iso

    source = _token_source("token check", tenant_name)
    fresh = source.renew()
    click.echo(f"The credentials work: Auth0 issued a token for {source.key.client_id} ({source.key.audience}), "
               f"scope {fresh.scope or '(none)'}, valid until {iso(fresh.expires_at)}.")


def _token_source(requested_by: str, tenant_name: str | None = None):
    """The cached token source for the tenant's credentials; warnings (a scope never to grant) on stderr."""
    from batchrunner.auth0.http import new_session
    from batchrunner.auth0.tokencache import cached_source
    from batchrunner.errors import UsageError
    from batchrunner.logs import redact_secret, setup
    from batchrunner.store.database import open_database

    settings = checked_settings()
    setup(level="WARNING", fmt=settings.log_format)
    tenants, chosen = chosen_tenants(settings, tenant_name)
    if len(chosen) != 1:
        raise UsageError(f"there are several tenants ({', '.join(t.name for t in chosen)}); give --tenant NAME")
    credentials = chosen[0].credentials()
    redact_secret(credentials.client_secret)
    session = new_session(pool_size=1, settings=settings)
    return cached_source(open_database(settings.database_url), credentials, requested_by, session=session)


@token.command("issuances")
@json_option
@tenant_option(TENANT_HELP)
def token_issuances(as_json, tenant_name):
    """Every token issued by Auth0 to the runner, newest first, with counts per month."""
    from batchrunner.auth0 import tokencache
    from batchrunner.cli import render as output

    settings, tenants, db, rows = _read(tenant_name, tokencache.issuances)
    if db is None:
        no_database(settings, "No token issued yet", as_json)
    if as_json:
        keys = ("tenant", "domain", "issued_at", "expires_at", "audience", "client_id", "scope", "requested_by", "run_id", "host", "pid")
        click.echo(output.to_json([{k: r[k] for k in keys} for r in rows]))
        return
    if db is None:
        return
    if not rows:
        click.echo("No token issued yet.")
        return
    several = with_tenant_column(tenants, rows)
    click.echo(output.table(
        [((r["tenant"] or r["domain"],) if several else ()) + (r["issued_at"], r["expires_at"], r["audience"], r["client_id"],
         r["scope"], r["requested_by"], f"{r['host']}:{r['pid']}") for r in rows],
        (["TENANT"] if several else []) + ["ISSUED", "EXPIRES", "AUDIENCE", "CLIENT ID", "SCOPE", "REQUESTED BY", "HOST:PID"],
        width=output.terminal_width(),
    ))
    click.echo("\n" + output.table(tokencache.monthly_counts(rows), ["MONTH (UTC)", "TOKENS ISSUED"]))


def register(cli: click.Group) -> None:
    cli.add_command(token)

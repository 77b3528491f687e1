"""`runner tenants`: who the runner works for (README, "Several tenants"): each tenant's domain, client
id, jobs, cached token's validity (never the token) and last run."""

from __future__ import annotations

import click

from batchrunner.cli.common import checked_settings, chosen_tenants, json_option, no_database, reading_db


@click.command("tenants")
@json_option
def tenants_command(as_json):
    """The tenants: domain, client id, jobs, cached token and last run.

    One, `default` (the AUTH0_* variables), without RUNNER_TENANTS_FILE.
    The token's validity comes from the shared cache; no token is asked for
    and no secret is read.
    """
    from batchrunner import clock
    from batchrunner.cli import render as output
    from batchrunner.runs.registry import discover

    settings = checked_settings()
    registry = discover(settings.job_paths)
    tenants, _ = chosen_tenants(settings, None, registry)
    db = reading_db(settings)
    rows = overview(tenants, registry, db, clock.utcnow())
    if as_json:
        click.echo(output.to_json(rows))
    else:
        click.echo(output.table(
            [(r["name"], _host(r["domain"]), r["client_id"] or "-", _jobs(r["jobs"], registry), _token(r["token"]), _last(r["last_run"]))
             for r in rows],
            ["TENANT", "DOMAIN", "CLIENT ID", "JOBS", "TOKEN", "LAST RUN"],
            width=output.terminal_width(),
        ))
    if db is None:
        no_database(settings, "No run recorded and no token cached yet", as_json)


def overview(tenants: dict, registry: dict, db, now) -> list[dict]:
    """One dict per tenant, in the tenants file's order: what `runner tenants --json` prints."""
    from batchrunner.auth0 import tokencache
    from batchrunner.runs import records

    cached = tokencache.status(db, now) if db is not None else []
    return [{
        "name": tenant.name,
        "domain": tenant.domain,
        "client_id": tenant.client_id,
        "jobs": [name for name in registry if tenant.runs(name)],
        "token": _cached_token(tenant, cached),
        "last_run": _public_last(records.history(db, limit=1, tenant=tenant.name)) if db is not None else None,
    } for tenant in tenants.values()]


def _cached_token(tenant, cached: list[dict]) -> dict | None:
    """The tenant's cached token (its domain and client id; the cache is per domain): valid and when it
    expires; None when none is cached. The best one first: a valid one, the latest to expire."""
    from batchrunner.config import origin

    if not tenant.domain:
        return None
    mine = [r for r in cached if origin(r["tenant"]) == origin(tenant.domain) and r["client_id"] == tenant.client_id]
    if not mine:
        return None
    best = max(mine, key=lambda r: (r["valid"], r["expires_at"]))
    return {"valid": best["valid"], "expires_at": best["expires_at"], "audience": best["audience"], "scope": best["scope"]}


def _public_last(rows: list[dict]) -> dict | None:
    if not rows:
        return None
    run = rows[0]
    return {k: run[k] for k in ("id", "job", "status", "started_at", "finished_at")}


def _host(domain: str | None) -> str:
    return domain.split("://", 1)[-1] if domain else "- (AUTH0_DOMAIN not set)"


def _jobs(names: list[str], registry: dict) -> str:
    return f"every job ({len(names)})" if len(names) == len(registry) else (", ".join(names) or "none")


def _token(token: dict | None) -> str:
    from batchrunner.cli.render import iso

    if token is None:
        return "none cached"
    return f"{'valid until' if token['valid'] else 'expired'} {iso(token['expires_at'])}"


def _last(run: dict | None) -> str:
    from batchrunner.cli.render import iso

    return f"{run['job']} {run['status']} {iso(run['started_at'])} (run {run['id']})" if run else "never"


def register(cli: click.Group) -> None:
    cli.add_command(tenants_command)

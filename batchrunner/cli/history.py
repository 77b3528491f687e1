"""`runner jobs` and `runner history`: the registered jobs and the recorded runs (README, "Commands")."""

from __future__ import annotations

import click

from batchrunner.cli.common import (checked_settings, chosen_tenants, json_option, no_database, reading_db, tenant_option,
                                    where, with_tenant_column)


@click.command("jobs")
@json_option
@tenant_option("Only this tenant's jobs (RUNNER_TENANTS_FILE); default: every tenant's.")
def jobs_command(as_json, tenant_name):
    """Registered jobs: schedule in force, next run, last run and its status."""
    from batchrunner.cli import render as output
    from batchrunner.runs.overview import job_overview
    from batchrunner.runs.registry import discover

    settings = checked_settings()
    tenants, chosen = chosen_tenants(settings, tenant_name, discover(settings.job_paths))
    db = reading_db(settings)
    rows = job_overview(settings, db, tenants=chosen)
    if as_json:
        click.echo(output.to_json(rows))
    else:
        several = with_tenant_column(tenants, rows)
        click.echo(output.table(
            [((r["tenant"],) if several else ()) + (r["name"], r["schedule"], r["next_run"], _last(r["last_run"]), r["description"])
             for r in rows],
            (["TENANT"] if several else []) + ["JOB", "SCHEDULE", f"NEXT RUN (UTC)", "LAST RUN", "DESCRIPTION"],
            width=output.terminal_width(),
        ))
    if db is None:
        no_database(settings, "\nNo job has run yet" if not as_json else "No job has run yet", as_json)
    elif not as_json:
        click.echo(f"\ndatabase: {where(db)}")


def _last(last) -> str:
    from batchrunner.cli.render import iso

    return f"{last['status']} {iso(last['started_at'])}" if last else "never"


@click.command("history")
@click.option("--job", "job_name", metavar="NAME", help="Only runs of this job.")
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True, help="How many runs to show.")
@json_option
@tenant_option("Only runs for this tenant (RUNNER_TENANTS_FILE); default: every tenant's.")
def history_command(job_name, limit, as_json, tenant_name):
    """Recorded runs, newest first."""
    from batchrunner.cli import render as output
    from batchrunner.runs import records as runs
    from batchrunner.runs.overview import recent_runs

    settings = checked_settings()
    tenants, chosen = chosen_tenants(settings, tenant_name)
    only = chosen[0].name if tenant_name and len(chosen) == 1 else None  # `all`: every tenant
    db = reading_db(settings)
    rows = recent_runs(db, job_name, limit, tenant=only) if db is not None else []
    if as_json:
        click.echo(output.to_json([runs.public(r) for r in rows]))
    if db is None:
        no_database(settings, "No runs recorded yet", as_json)
    if as_json or db is None:
        return
    if not rows:
        nothing = "No runs recorded yet" if not job_name else f"No runs of {job_name} recorded yet"
        click.echo(f"{nothing} in {where(db)}.")
        return
    several = with_tenant_column(tenants, rows)
    click.echo(output.table(
        [(r["id"], r["job"], *((r["tenant"],) if several else ()), r["trigger"], r["status"], r["started_at"], _duration(r),
          r["error"] or output.summary(r["result"]).lstrip(": ")) for r in rows],
        ["RUN", "JOB", *(["TENANT"] if several else []), "TRIGGER", "STATUS", "STARTED (UTC)", "TOOK", "ERROR / RESULT"],
        width=output.terminal_width(),
    ))
    click.echo(f"\ndatabase: {where(db)}")


def _duration(row) -> str:
    if not row["finished_at"]:
        return "-"
    return f"{(row['finished_at'] - row['started_at']).total_seconds():.1f}s"


def register(cli: click.Group) -> None:
    cli.add_command(jobs_command)
    cli.add_command(history_command)

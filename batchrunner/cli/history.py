"""`runner jobs` and `runner history`: the registered jobs and the recorded runs (README, "Commands")."""

from __future__ import annotations

import click

from batchrunner.cli.common import checked_settings, json_option, no_database, reading_db, where


@click.command("jobs")
@json_option
def jobs_command(as_json):
    """Registered jobs: schedule in force, next run, last run and its status."""
    from batchrunner.cli import render as output
    from batchrunner.runs.overview import job_overview

    settings = checked_settings()
    db = reading_db(settings)
    rows = job_overview(settings, db)
    if as_json:
        click.echo(output.to_json(rows))
    else:
        click.echo(output.table(
            [(r["name"], r["schedule"], r["next_run"], _last(r["last_run"]), r["description"]) for r in rows],
            ["JOB", "SCHEDULE", f"NEXT RUN (UTC)", "LAST RUN", "DESCRIPTION"], width=output.terminal_width(),
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
def history_command(job_name, limit, as_json):
    """Recorded runs, newest first."""
    from batchrunner.cli import render as output
    from batchrunner.runs import records as runs
    from batchrunner.runs.overview import recent_runs

    settings = checked_settings()
    db = reading_db(settings)
    rows = recent_runs(db, job_name, limit) if db is not None else []
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
    click.echo(output.table(
        [(r["id"], r["job"], r["trigger"], r["status"], r["started_at"], _duration(r), r["error"] or output.summary(r["result"]).lstrip(": ")) for r in rows],
        ["RUN", "JOB", "TRIGGER", "STATUS", "STARTED (UTC)", "TOOK", "ERROR / RESULT"], width=output.terminal_width(),
    ))
    click.echo(f"\ndatabase: {where(db)}")


def _duration(row) -> str:
    if not row["finished_at"]:
        return "-"
    return f"{(row['finished_at'] - row['started_at']).total_seconds():.1f}s"


def register(cli: click.Group) -> None:
    cli.add_command(jobs_command)
    cli.add_command(history_command)

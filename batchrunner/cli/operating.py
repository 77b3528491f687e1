"""The operator's commands of the README's "Operating it unattended": `runner prune`, `runner metrics`, `runner check`.

Each a thin skin over its module, registered by main.py; heavy imports happen inside the
commands, off every other command's start-up.
"""

from __future__ import annotations

import click

from batchrunner.cli.common import settings_and_db


@click.command("prune")
@click.option("--older-than", "days", type=click.FloatRange(0, 100_000, max_open=True), metavar="DAYS",  # prune.MAX_DAYS
              help="Prune what is older than DAYS instead of RUNNER_RETENTION_DAYS (default 90); 0: all but what always stays.")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of text.")
def prune_command(days, dry_run, as_json):
    """Remove old run records, dated exports and snapshots (and the log archive's, if set).

    Each job's latest run and latest success, every `latest` file and the
    snapshot it points to, and the token issuance ledger always stay. The
    log archive is pruned only with RUNNER_LOGS_RETENTION_DAYS.
    """
    from batchrunner import clock
    from batchrunner.cli import render as output
    from batchrunner.operating import retention as prune

    settings, db = settings_and_db(required=False)  # no database yet: only files to prune
    keep = prune.retention(settings.env)
    if days is not None:
        keep = prune.Retention(days, keep.logs_days)
    from batchrunner.tenants import load_tenants

    # Each named tenant's folder is pruned as the export folder is (README, "Several tenants").
    folders = [settings.export_dir, *(t.export_dir(settings.export_dir) for t in load_tenants(settings.env).values() if not t.is_default)]
    found = prune.plan_all(db, folders, clock.utcnow(), keep)
    done = found if dry_run else prune.apply(db, found)
    if as_json:
        click.echo(output.to_json({**done.as_dict(), "dry_run": dry_run}))
        return
    verb = "Would remove" if dry_run else "Removed"
    since = f" started before {output.iso(done.cutoff)}" if done.cutoff else ""
    click.echo(f"{verb} {output.plural(done.run_count, 'run record')}{since} and {output.plural(len(done.files), 'file')}.")
    for (job, status), ids in sorted(done.runs.items()):
        click.echo(f"  runs of {job}, {status}: {len(ids)}")
    for path in done.files:
        click.echo(f"  {path}")


def _scheduled(settings):
    from batchrunner.operating.metrics import scheduled_jobs
    from batchrunner.runs import schedules
    from batchrunner.runs.registry import discover

    jobs = discover(settings.job_paths)
    schedules.check_overrides(settings.env, jobs)
    return scheduled_jobs(settings, jobs)


@click.command("metrics")
@click.option("--textfile", metavar="PATH", help="Write to PATH (ending in .prom) atomically, for node_exporter's textfile collector.")
def metrics_command(textfile):
    """Print the Prometheus metrics that `serve` offers on /metrics.

    Computed from the database, so runs from cron, Kubernetes and every
    replica count. For cron deployments: run it after each job with
    --textfile /var/lib/node_exporter/textfile/auth0-runner.prom.
    """
    from batchrunner.errors import UsageError
    from batchrunner.store.database import DatabaseError

    if textfile is not None and not textfile.endswith(".prom"):
        raise UsageError(f"--textfile {textfile}: the name must end in .prom, the only files node_exporter reads")
    try:
        settings, db = settings_and_db()
    except DatabaseError:
        # Missing, damaged, unreachable: the metrics still say so (runner_database_up 0), or the old
        # file, up 1, would stay and the alert never fire; then the database's own line, exit 1.
        _write_metrics(textfile, None, [])
        raise
    _write_metrics(textfile, db, _scheduled(settings))


def _write_metrics(textfile: str | None, db, jobs) -> None:
    from batchrunner.errors import UsageError
    from batchrunner.operating import metrics

    if textfile is None:
        click.echo(metrics.exposition(db, jobs).decode(), nl=False)
        return
    try:
        metrics.write_textfile(textfile, db, jobs)
    except OSError as exc:
        raise UsageError(f"--textfile {textfile}: cannot write it: {exc.strerror}") from None


@click.command("check")
@click.option("--grace", type=click.IntRange(0), default=3600, show_default=True, metavar="SECONDS",
              help="How late a scheduled run may succeed before the job counts as overdue.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of text.")
@click.option("--tenant", "tenant_name", metavar="NAME", help="Only this tenant's jobs (RUNNER_TENANTS_FILE); default: every tenant's.")
def check_command(grace, as_json, tenant_name):
    """Exit 0 when every scheduled job's latest run succeeded and none is overdue, else 1.

    One line per problem, naming the job: for probes, Nagios-style checks
    and cron (`runner check || mail ...`). A job that never ran is not
    judged; one whose schedule is off neither.
    """
    import sys
    from datetime import timedelta

    from batchrunner import clock
    from batchrunner.cli import render as output
    from batchrunner.cli.common import chosen_tenants
    from batchrunner.operating import checks as check
    from batchrunner.runs import schedules
    from batchrunner.runs.registry import discover

    settings, db = settings_and_db()
    registry = discover(settings.job_paths)
    schedules.check_overrides(settings.env, registry)
    _, tenants = chosen_tenants(settings, tenant_name, registry)
    jobs = check.watched(settings, registry, tenants)
    found = check.problems(db, jobs, clock.utcnow(), timedelta(seconds=grace))
    scheduled = sum(1 for j in jobs if j.trigger is not None)
    if as_json:
        click.echo(output.to_json({"ok": not found, "jobs": scheduled, "problems": [
            {"job": p.job, "tenant": p.tenant, "kind": p.kind, "message": p.message} for p in found]}))
    elif found:
        for problem in found:
            click.echo(problem.message)
    else:
        click.echo(f"OK: {output.plural(scheduled, 'scheduled job')}; their latest runs succeeded and none is overdue")
    sys.exit(1 if found else 0)


def register(cli: click.Group) -> None:
    cli.add_command(check_command)
    cli.add_command(prune_command)
    cli.add_command(metrics_command)

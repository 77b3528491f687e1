"""`runner run-job`: run one job now, in the foreground, and record the run (README, "Commands")."""

from __future__ import annotations

import sys

import click

from batchrunner.cli.common import checked_settings, say
from batchrunner.errors import EXIT_BUSY, EXIT_FAILED, EXIT_USAGE, RunnerError

# Which exit wins when `--tenant all` ran several: a setting error, then a failure, then a skip.
SEVERITY = (EXIT_BUSY, EXIT_FAILED, EXIT_USAGE)


def _parse_params(values: tuple[str, ...]) -> dict[str, str]:
    from batchrunner.errors import UsageError

    params = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: expected KEY=VALUE")
        if key.strip() in params:  # the last one winning silently would hide a typo'd command line
            raise UsageError(f"--param {key.strip()} is given more than once; give each key once")
        params[key.strip()] = value
    return params


@click.command("run-job")
@click.argument("name")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter for the job; repeat for more.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's record as JSON (as `runner history --json` shows it).")
@click.option("--tenant", "tenant_name", metavar="NAME|all",
              help="The tenant to run it for (RUNNER_TENANTS_FILE); `all`: each tenant that runs the job, in turn. "
                   "Needed where several tenants run the job.")
def run_job(name, params, as_json, tenant_name):
    """Run the job NAME now, in the foreground, and record the run.

    `runner jobs` lists the job names. SIGTERM or Ctrl-C ends the run,
    recorded as failed.

    \b
    Exit codes: 0 succeeded, 1 the job failed, 2 usage or configuration
    error, 75 another run of the same job is in progress (recorded as skipped).
    With --tenant all, the worst of the tenants' runs: 2, then 1, then 75.
    """
    from batchrunner.cli import render as output
    from batchrunner.runs import records as runs
    from batchrunner.runs.execute import RunRequest, execute
    from batchrunner.runs.params import for_run as job_params
    from batchrunner.runs import job_variables
    from batchrunner.runs.registry import discover, find
    from batchrunner.runs.signals import interrupt_on_sigterm
    from batchrunner.store.database import open_database
    from batchrunner.store.schema import RunStatus
    from batchrunner.tenants import ALL

    settings = checked_settings(logs=True)
    job = find(name, settings.job_paths)
    job_variables.check(settings.env, discover(settings.job_paths))  # a typo'd RUNNER_TIMEOUT_<JOB> is no silent no-limit
    tenants = _tenants(settings, job, tenant_name)
    given = _parse_params(params)
    # Every tenant's params are checked before the first run: a missing one is exit 2, nothing recorded.
    requests = [RunRequest(job, params=job_params(job, settings.env, given, t), tenant=t) for t in tenants]
    db = open_database(settings.database_url)
    codes, records = [], []
    for request in requests:
        label = name if request.tenant.is_default else f"{name} for {request.tenant.name}"
        try:
            with interrupt_on_sigterm(request.cancel):
                outcome = execute(request, settings, db)
        except KeyboardInterrupt:
            say(f"{label} was interrupted; the run is recorded as failed")
            sys.exit(EXIT_FAILED)
        except RunnerError as exc:
            if len(requests) == 1:
                raise
            say(f"{label}: {exc}")  # this tenant's own setting (its secret, say): the others still run
            codes.append(exc.exit_code)
            continue
        if as_json:
            records.append(runs.history_record(db, outcome.run_id))
        elif outcome.status is RunStatus.SUCCEEDED:
            click.echo(f"{label} succeeded (run {outcome.run_id}){output.summary(outcome.result)}")
        if outcome.status is RunStatus.SKIPPED:
            say(f"{outcome.error}; this run is recorded as skipped (run {outcome.run_id})")
            codes.append(EXIT_BUSY)
        if outcome.status is RunStatus.FAILED:
            say(f"{label} failed (run {outcome.run_id}): {outcome.error}")
            codes.append(EXIT_FAILED)
    if as_json:
        click.echo(output.to_json(records[0] if tenant_name != ALL and len(records) == 1 else records))
    if codes:
        sys.exit(max(codes, key=lambda code: SEVERITY.index(code)))


def _tenants(settings, job, name: str | None) -> list:
    """The tenants to run `job` for: `--tenant NAME`, each of `all`, or the one tenant that runs it."""
    from batchrunner.errors import UsageError
    from batchrunner.runs.registry import discover
    from batchrunner.tenants import ALL, load_tenants, pick

    tenants = load_tenants(settings.env, discover(settings.job_paths))
    chosen = pick(tenants, name, job.name)
    if not chosen:
        raise UsageError(f"no tenant runs {job.name}; add it to a tenant's jobs in RUNNER_TENANTS_FILE")
    if name not in (None, ALL) and not chosen[0].runs(job.name):
        raise UsageError(f"tenant {name} does not run {job.name}; its jobs: {', '.join(chosen[0].jobs)} (RUNNER_TENANTS_FILE)")
    return chosen


def register(cli: click.Group) -> None:
    cli.add_command(run_job)

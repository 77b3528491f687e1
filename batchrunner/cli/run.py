"""`runner run-job`: run one job now, in the foreground, and record the run (README, "Commands")."""

from __future__ import annotations

import sys

import click

from batchrunner.cli.common import checked_settings, say


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
def run_job(name, params, as_json):
    """Run the job NAME now, in the foreground, and record the run.

    `runner jobs` lists the job names. SIGTERM or Ctrl-C ends the run,
    recorded as failed.

    \b
    Exit codes: 0 succeeded, 1 the job failed, 2 usage or configuration
    error, 75 another run of the same job is in progress (recorded as skipped).
    """
    from batchrunner.cli import render as output
    from batchrunner.errors import EXIT_BUSY, EXIT_FAILED
    from batchrunner.runs import records as runs
    from batchrunner.runs.execute import RunRequest, execute
    from batchrunner.runs.params import for_run as job_params
    from batchrunner.runs import job_variables
    from batchrunner.runs.registry import discover, find
    from batchrunner.runs.signals import interrupt_on_sigterm
    from batchrunner.store.database import open_database
    from batchrunner.store.schema import RunStatus

    settings = checked_settings(logs=True)
    job = find(name, settings.job_paths)
    job_variables.check(settings.env, discover(settings.job_paths))  # a typo'd RUNNER_TIMEOUT_<JOB> is no silent no-limit
    request = RunRequest(job, params=job_params(job, settings.env, _parse_params(params)))
    try:
        with interrupt_on_sigterm():
            outcome = execute(request, settings, open_database(settings.database_url))
    except KeyboardInterrupt:
        say(f"{name} was interrupted; the run is recorded as failed")
        sys.exit(EXIT_FAILED)
    if as_json:
        record = runs.history_record(open_database(settings.database_url), outcome.run_id)
        click.echo(output.to_json(record))
    elif outcome.status is RunStatus.SUCCEEDED:
        click.echo(f"{name} succeeded (run {outcome.run_id}){output.summary(outcome.result)}")
    if outcome.status is RunStatus.SKIPPED:
        say(f"{outcome.error}; this run is recorded as skipped (run {outcome.run_id})")
        sys.exit(EXIT_BUSY)
    if outcome.status is RunStatus.FAILED:
        say(f"{name} failed (run {outcome.run_id}): {outcome.error}")
        sys.exit(EXIT_FAILED)


def register(cli: click.Group) -> None:
    cli.add_command(run_job)

"""`runner serve`: every job on its schedule, in the foreground (README, "The scheduler: `runner serve`")."""

from __future__ import annotations

import click

from batchrunner.cli.common import checked_settings


@click.command("serve")
@click.option("--stop-timeout", type=click.FloatRange(0), default=None,
              help="Seconds a running job gets to finish after SIGTERM/SIGINT before it is recorded as failed [default: RUNNER_STOP_TIMEOUT, else 60].")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines on stderr as text or as JSON for log shippers [default: RUNNER_LOG_FORMAT, else text].")
def serve_command(stop_timeout, log_format):
    """Run every job on its cron schedule, in the foreground, until SIGTERM or SIGINT.

    A job that ran before and missed its latest scheduled time (the machine
    was down) runs once at start, with trigger catch-up. Schedules are read
    in RUNNER_TIMEZONE and overridden by RUNNER_SCHEDULE_<JOB>. Before it
    reports ready it gets a token: credentials Auth0 rejects end it at once
    (exit 2); a tenant that does not answer is logged and tried again. Under
    systemd (Type=notify) readiness and stopping are reported with sd_notify.
    """
    import logging
    import os

    from batchrunner.config import load_credentials
    from batchrunner.logs import redact_secret
    from batchrunner.runs.preflight import check_token
    from batchrunner.runs.registry import discover
    from batchrunner.runs.serve import build, serve
    from batchrunner.store.database import open_database

    settings = checked_settings(logs=True, log_format=log_format)
    jobs = discover(settings.job_paths)
    scheduler = build(settings, open_database(settings.database_url), jobs)
    if any(entry.job.needs_api for entry in scheduler.entries):
        credentials = load_credentials(settings.env)  # a bad setting fails now, not at 2 a.m.
        redact_secret(credentials.client_secret)
        check_token(scheduler.db, credentials, scheduler.stopping, settings=settings)
    code = serve(scheduler, settings.stop_timeout if stop_timeout is None else stop_timeout)
    logging.shutdown()
    # A job thread that outlived the grace time must not keep the process alive: its run is recorded.
    os._exit(code)


def register(cli: click.Group) -> None:
    cli.add_command(serve_command)

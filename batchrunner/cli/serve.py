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

    from batchrunner.runs.registry import discover
    from batchrunner.runs.serve import build, serve
    from batchrunner.store.database import open_database

    settings = checked_settings(logs=True, log_format=log_format)
    jobs = discover(settings.job_paths)
    scheduler = build(settings, open_database(settings.database_url), jobs)
    _check_tenants(scheduler, settings)
    code = serve(scheduler, settings.stop_timeout if stop_timeout is None else stop_timeout)
    logging.shutdown()
    # A job thread that outlived the grace time must not keep the process alive: its run is recorded.
    os._exit(code)


def _check_tenants(scheduler, settings) -> None:
    """Get each tenant's token before reporting ready. One tenant: its bad setting or refused secret ends
    `serve` now, not at 2 a.m. Several: a tenant's own is logged and fails only its runs, and readiness
    waits for them a bounded time (README, "Several tenants")."""
    from batchrunner.logs import redact_secret
    from batchrunner.runs.preflight import check_tenants, check_token

    tenants = list({e.tenant.name: e.tenant for e in scheduler.entries if e.job.needs_api}.values())
    if len(tenants) == 1:
        credentials = tenants[0].credentials()
        redact_secret(credentials.client_secret)
        check_token(scheduler.db, credentials, scheduler.stopping, settings=settings)
    elif tenants:
        check_tenants(scheduler.db, tenants, scheduler.stopping, settings=settings)


def register(cli: click.Group) -> None:
    cli.add_command(serve_command)

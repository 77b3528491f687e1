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
    """Turns every RunnerError into one line on stderr and its exit code (README, "Commands")."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RunnerError as exc:
            from batchrunner.logs import redact

            _say(redact(exc.message()))
            ctx.exit(exc.exit_code)


def _say(text: str, warning: bool = False) -> None:
    """A command's own line on stderr (`runner: TEXT`), or a JSON log record where the logs are JSON:
    a log shipper reading `serve` or `run-job` gets JSON throughout (README, RUNNER_LOG_FORMAT)."""
    import logging

    from batchrunner.logs import as_json

    if as_json():
        logging.getLogger("runner").log(logging.WARNING if warning else logging.ERROR, "%s", text)
    else:
        click.echo(f"runner: {'warning: ' if warning else ''}{text}", err=True)


def _settings(logs: bool = False, log_format: str | None = None):
    """The settings, checked (a bad one is exit 2); a RUNNER_* variable that is no setting is named on stderr.

    `logs` (run-job, serve): log lines are set up first, in the format asked for, so that even the
    line of a bad setting is in it."""
    import os

    from batchrunner.cli.startup import imports_done
    from batchrunner.config import chosen_log_format, load_settings
    from batchrunner.logs import setup

    imports_done()  # every command reads its settings after its own imports
    if logs:
        setup(fmt=log_format or chosen_log_format(os.environ))
    settings = load_settings()
    for name in settings.unknown:
        _say(f"{name} is not a setting of the runner; ignored (see README, Configuration)", warning=True)
    for line in settings.warnings:
        _say(line, warning=True)
    return settings


def _reading_db(settings):
    """The database for a command that only reads, which creates none: None where there is none yet."""
    from batchrunner.store.database import NoDatabase, open_database

    try:
        return open_database(settings.database_url, create=False)
    except NoDatabase:
        return None


def _no_database(settings, nothing: str, as_json: bool) -> None:
    """One line: where a reading command looked, and how to point it elsewhere (on stderr beside JSON)."""
    from batchrunner.store.database import absent

    click.echo(f"{nothing}: {absent(settings.database_url)}; to read another, set "
               "RUNNER_DATABASE_URL (or STATE_DIRECTORY, whose runner.db is the default)", err=as_json)


def _where(db) -> str:
    """The database in use, as a person can find it again: a SQLite file by its absolute path, passwords masked."""
    from batchrunner.store.database import sqlite_file

    path = sqlite_file(db.url)
    return f"sqlite:///{path}" if path else db.safe_url


def _json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")(fn)


@click.group(cls=RunnerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
def cli():
    """Run scheduled batch jobs against the Auth0 Management API.

    Settings come from environment variables (AUTH0_DOMAIN, AUTH0_CLIENT_ID,
    AUTH0_CLIENT_SECRET, RUNNER_DATABASE_URL, ...); see the README.
    """


# --- jobs and runs ---------------------------------------------------------------------------


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


@cli.command("run-job")
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
    from batchrunner.runs.registry import find
    from batchrunner.runs.signals import interrupt_on_sigterm
    from batchrunner.store.database import open_database
    from batchrunner.store.schema import RunStatus

    settings = _settings(logs=True)
    job = find(name, settings.job_paths)
    request = RunRequest(job, params=job_params(job, settings.env, _parse_params(params)))
    try:
        with interrupt_on_sigterm():
            outcome = execute(request, settings, open_database(settings.database_url))
    except KeyboardInterrupt:
        _say(f"{name} was interrupted; the run is recorded as failed")
        sys.exit(EXIT_FAILED)
    if as_json:
        record = runs.history_record(open_database(settings.database_url), outcome.run_id)
        click.echo(output.to_json(record))
    elif outcome.status is RunStatus.SUCCEEDED:
        click.echo(f"{name} succeeded (run {outcome.run_id}){_summary(outcome.result)}")
    if outcome.status is RunStatus.SKIPPED:
        _say(f"{outcome.error}; this run is recorded as skipped (run {outcome.run_id})")
        sys.exit(EXIT_BUSY)
    if outcome.status is RunStatus.FAILED:
        _say(f"{name} failed (run {outcome.run_id}): {outcome.error}")
        sys.exit(EXIT_FAILED)


def _summary(result) -> str:
    from batchrunner.cli.render import plural

    if not isinstance(result, dict):
        return ""
    if "rows" in result and "path" in result:
        return f": {plural(result['rows'], 'row')} written to {result['path']}"
    if isinstance(result.get("resources"), dict) and "path" in result:  # a snapshot
        files = result["resources"]
        return f": {plural(sum(files.values()), 'row')} in {plural(len(files), 'file')} at {result['path']}; {result.get('drift') or ''}".rstrip("; ")
    if "events" in result and "checkpoint" in result:  # the log archive
        return f": {plural(result['events'], 'event')} archived in {plural(result['files'], 'file')}; checkpoint {result['checkpoint']}"
    return ": " + ", ".join(f"{k}={v}" for k, v in result.items())


@cli.command("jobs")
@_json_option
def jobs_command(as_json):
    """Registered jobs: schedule in force, next run, last run and its status."""
    from batchrunner.cli import render as output
    from batchrunner.runs.overview import job_overview

    settings = _settings()
    db = _reading_db(settings)
    rows = job_overview(settings, db)
    if as_json:
        click.echo(output.to_json(rows))
    else:
        click.echo(output.table(
            [(r["name"], r["schedule"], r["next_run"], _last(r["last_run"]), r["description"]) for r in rows],
            ["JOB", "SCHEDULE", f"NEXT RUN (UTC)", "LAST RUN", "DESCRIPTION"], width=output.terminal_width(),
        ))
    if db is None:
        _no_database(settings, "\nNo job has run yet" if not as_json else "No job has run yet", as_json)
    elif not as_json:
        click.echo(f"\ndatabase: {_where(db)}")


def _last(last) -> str:
    from batchrunner.cli.render import iso

    return f"{last['status']} {iso(last['started_at'])}" if last else "never"


@cli.command("history")
@click.option("--job", "job_name", metavar="NAME", help="Only runs of this job.")
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True, help="How many runs to show.")
@_json_option
def history_command(job_name, limit, as_json):
    """Recorded runs, newest first."""
    from batchrunner.cli import render as output
    from batchrunner.runs import records as runs
    from batchrunner.runs.overview import recent_runs

    settings = _settings()
    db = _reading_db(settings)
    rows = recent_runs(db, job_name, limit) if db is not None else []
    if as_json:
        click.echo(output.to_json([runs.public(r) for r in rows]))
    if db is None:
        _no_database(settings, "No runs recorded yet", as_json)
    if as_json or db is None:
        return
    if not rows:
        nothing = "No runs recorded yet" if not job_name else f"No runs of {job_name} recorded yet"
        click.echo(f"{nothing} in {_where(db)}.")
        return
    click.echo(output.table(
        [(r["id"], r["job"], r["trigger"], r["status"], r["started_at"], _duration(r), r["error"] or _summary(r["result"]).lstrip(": ")) for r in rows],
        ["RUN", "JOB", "TRIGGER", "STATUS", "STARTED (UTC)", "TOOK", "ERROR / RESULT"], width=output.terminal_width(),
    ))
    click.echo(f"\ndatabase: {_where(db)}")


def _duration(row) -> str:
    if not row["finished_at"]:
        return "-"
    return f"{(row['finished_at'] - row['started_at']).total_seconds():.1f}s"


@cli.command("diff")
@click.argument("old", required=False)
@click.argument("new", required=False)
@_json_option
def diff_command(old, new, as_json):
    """Show what changed between two snapshots: rows added, removed and changed.

    OLD and NEW are snapshot names in RUNNER_EXPORT_DIR/snapshots (e.g.
    20261124T023000Z) or paths; without them, the newest, each resource
    against the newest earlier snapshot that holds it. Exits as diff(1): 0 no
    change, 1 changes, 2 trouble (a snapshot missing or damaged, or two
    snapshots of two tenants).
    """
    from batchrunner.cli import render as output
    from batchrunner.outputs import drift

    changes = drift.between(_settings().export_dir / "snapshots", old, new)
    click.echo(output.to_json(changes.as_json()) if as_json else drift.render(changes))
    sys.exit(1 if changes.any else 0)


# --- the scheduler ---------------------------------------------------------------------------


@cli.command("serve")
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

    settings = _settings(logs=True, log_format=log_format)
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


# --- tokens -----------------------------------------------------------------------------------


@cli.group()
def token():
    """The shared Management API token cache and its issuance ledger."""


@token.command("status")
@_json_option
def token_status(as_json):
    """Cached tokens: audience, client id, scope, issued and expiry times (never the token)."""
    from batchrunner import clock
    from batchrunner.auth0 import tokencache
    from batchrunner.cli import render as output

    settings = _settings()
    db = _reading_db(settings)
    rows = tokencache.status(db, clock.utcnow()) if db is not None else []
    if db is None:
        _no_database(settings, "No cached token", as_json)
        if not as_json:
            return
    if as_json:
        keys = ("audience", "client_id", "scope", "issued_at", "expires_at", "valid")
        click.echo(output.to_json([{k: r[k] for k in keys} for r in rows]))
    elif not rows:
        click.echo("No cached token. `runner token print` or any job gets one.")
    else:
        click.echo(output.table(
            [(r["audience"], r["client_id"], r["scope"], r["issued_at"], r["expires_at"], "yes" if r["valid"] else "no (expired)") for r in rows],
            ["AUDIENCE", "CLIENT ID", "SCOPE", "ISSUED", "EXPIRES", "VALID"], width=output.terminal_width(),
        ))


@token.command("print")
def token_print():
    """Print a valid access token, from the cache or newly issued.

    For ad-hoc calls: curl -H "Authorization: Bearer $(runner token print)" ...
    The token is a secret: do not paste it into tickets or chats.
    """
    click.echo(_token_source("token print").token().access_token)


@token.command("check")
def token_check():
    """Ask Auth0 for a new token now, to check the credentials.

    A cached token shows only that the secret worked when it was issued;
    this asks Auth0 whatever is cached (one token of the monthly quota),
    and caches the new token for the jobs. Exit 0 when Auth0 issued one,
    1 with Auth0's reason when it refused.
    """
    from batchrunner.cli.render import iso

    source = _token_source("token check")
    fresh = source.renew()
    click.echo(f"The credentials work: Auth0 issued a token for {source.key.client_id} ({source.key.audience}), "
               f"scope {fresh.scope or '(none)'}, valid until {iso(fresh.expires_at)}.")


def _token_source(requested_by: str):
    """The cached token source for the settings' credentials; warnings (a scope never to grant) on stderr."""
    from batchrunner.auth0.http import new_session
    from batchrunner.auth0.tokencache import cached_source
    from batchrunner.config import load_credentials
    from batchrunner.logs import redact_secret, setup
    from batchrunner.store.database import open_database

    settings = _settings()
    setup(level="WARNING", fmt=settings.log_format)
    credentials = load_credentials(settings.env)
    redact_secret(credentials.client_secret)
    session = new_session(pool_size=1, settings=settings)
    return cached_source(open_database(settings.database_url), credentials, requested_by, session=session)


@token.command("issuances")
@_json_option
def token_issuances(as_json):
    """Every token issued by Auth0 to the runner, newest first, with counts per month."""
    from batchrunner.auth0 import tokencache
    from batchrunner.cli import render as output

    settings = _settings()
    db = _reading_db(settings)
    rows = tokencache.issuances(db) if db is not None else []
    if db is None:
        _no_database(settings, "No token issued yet", as_json)
    if as_json:
        keys = ("issued_at", "expires_at", "audience", "client_id", "scope", "requested_by", "run_id", "host", "pid")
        click.echo(output.to_json([{k: r[k] for k in keys} for r in rows]))
        return
    if db is None:
        return
    if not rows:
        click.echo("No token issued yet.")
        return
    click.echo(output.table(
        [(r["issued_at"], r["expires_at"], r["audience"], r["client_id"], r["scope"], r["requested_by"], f"{r['host']}:{r['pid']}") for r in rows],
        ["ISSUED", "EXPIRES", "AUDIENCE", "CLIENT ID", "SCOPE", "REQUESTED BY", "HOST:PID"], width=output.terminal_width(),
    ))
    click.echo("\n" + output.table(tokencache.monthly_counts(rows), ["MONTH (UTC)", "TOKENS ISSUED"]))


# --- database ---------------------------------------------------------------------------------


@cli.group()
def db():
    """The runner's own database (RUNNER_DATABASE_URL)."""


@db.command("upgrade")
def db_upgrade():
    """Apply pending migrations to RUNNER_DATABASE_URL.

    Every other command brings the database up to date on its own; this one
    does it explicitly, e.g. once before starting replicas on a new database.
    """
    from batchrunner.store.database import SCHEMA_HEAD, open_database

    database = open_database(_settings().database_url, migrate=False)
    before = database.current_revision()
    database.upgrade()
    if before == SCHEMA_HEAD:
        click.echo(f"Database {database.safe_url} is up to date (revision {SCHEMA_HEAD}).")
    else:
        click.echo(f"Database {database.safe_url} upgraded from {before or 'empty'} to revision {SCHEMA_HEAD}.")


# --- the stand-in tenant ---------------------------------------------------------------------


@cli.command("sandbox")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--clients", type=click.IntRange(0), default=250, show_default=True, help="How many applications the tenant has.")
@click.option("--latency", type=click.FloatRange(0), default=0.0, show_default=True, help="Seconds added to every response.")
@click.option("--rate", type=click.FloatRange(0, min_open=True), default=None, help="Management API requests per second (token bucket); unlimited when not given.")
@click.option("--burst", type=click.IntRange(1), default=10, show_default=True, help="Token bucket size, with --rate.")
@click.option("--endpoint-limits", is_flag=True, help="Also Auth0 Essentials' per-endpoint buckets (Read Clients 100/min, Read Connections 50/min, ...).")
@click.option("--users", type=click.IntRange(1), default=5000, show_default=True, help="People that role and organization members are drawn from.")
@click.option("--roles", type=click.IntRange(0), default=8, show_default=True, help="How many roles.")
@click.option("--role-members", type=click.IntRange(0), default=40, show_default=True, help="Members of each role but the first.")
@click.option("--big-role-members", type=click.IntRange(0), default=2500, show_default=True, help="Members of the first role (past Auth0's 1,000 offset wall).")
@click.option("--organizations", type=click.IntRange(0), default=5, show_default=True, help="How many organizations.")
@click.option("--org-members", type=click.IntRange(0), default=50, show_default=True, help="Members of each organization but the first.")
@click.option("--big-org-members", type=click.IntRange(0), default=1500, show_default=True, help="Members of the first organization.")
@click.option("--log-events", type=click.IntRange(0), default=5000, show_default=True, help="Log events held at start.")
@click.option("--log-rate", type=click.FloatRange(0), default=1.0, show_default=True, help="New log events a second.")
@click.option("--log-retention-days", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True, help="How long log events are kept (Auth0: 1 to 30 days by plan).")
@click.option("--export-users", type=click.IntRange(0), default=10000, show_default=True, help="Users in a bulk user export.")
@click.option("--scopes", default="read:clients read:client_grants read:resource_servers read:roles read:users read:connections "
              "read:organizations read:organization_members read:logs", show_default=True, help="Scopes granted to the stand-in's machine-to-machine application.")
def sandbox_command(port, clients, latency, rate, burst, endpoint_limits, scopes, log_rate, **sizes):
    """Serve a local stand-in Auth0 tenant on loopback until stopped (Ctrl-C).

    It answers /oauth/token, the Management API lists the bundled jobs read
    (clients, client grants, APIs, roles and members, organizations and
    members, connections, logs) and the bulk user export, as Auth0 does, with
    rate-limit headers, so the runner can be tried without an Auth0 account.
    It prints what it holds and the settings to use with it.
    """
    import signal
    import threading

    from batchrunner.cli.startup import imports_done
    from batchrunner.errors import UsageError
    from batchrunner.sandbox import Sandbox, Sizes

    imports_done()
    sandbox = Sandbox(clients=clients, port=port, sizes=Sizes(**sizes))
    sandbox.tenant.latency = latency
    if rate:
        sandbox.tenant.rate, sandbox.tenant.burst = rate, burst
    sandbox.buckets.enabled = endpoint_limits
    sandbox.set_scopes(scopes.split())
    sandbox.logs.set_rate(log_rate)
    try:
        sandbox.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; choose another --port, or 0 for any free one") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"# Stand-in tenant with {clients} applications on {sandbox.base_url} (Ctrl-C to stop). It holds:")
    for line in sandbox.describe():
        click.echo(f"#   {line}")
    click.echo("# Use it with:")
    for name, value in sandbox.settings().items():
        click.echo(f"export {name}={value}")
    sys.stdout.flush()
    stop.wait()
    sandbox.stop()


# --- operating it unattended: prune, metrics, check (batchrunner/cli/operating.py) -------------

from batchrunner.cli.operating import register as _register_ops  # noqa: E402

_register_ops(cli)


def main():
    from batchrunner.cli.startup import hold_collector

    hold_collector()
    try:
        cli(prog_name="runner")
    except SystemExit as done:  # click ends every command so, its output written
        from batchrunner.cli.ending import end_process

        end_process(done.code)


if __name__ == "__main__":
    sys.exit(main())

"""`runner sandbox`: the stand-in Auth0 tenant on loopback (README, "The stand-in tenant")."""

from __future__ import annotations

import sys

import click


@click.command("sandbox")
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
              "read:organizations read:organization_members read:logs read:log_streams read:custom_domains read:signing_keys "
              "read:client_credentials", show_default=True, help="Scopes granted to the stand-in's machine-to-machine application.")
@click.option("--tenants", "tenant_count", type=click.IntRange(1, 100), default=None,
              help="Serve N stand-in tenants at once, each on its own port with its own credentials, data (seed) and rate limit; "
                   "prints a tenants file for them (RUNNER_TENANTS_FILE), their secrets in files of mode 0600 beside it.")
def sandbox_command(port, clients, latency, rate, burst, endpoint_limits, scopes, log_rate, tenant_count, **sizes):
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
    count = tenant_count or 1
    sandboxes = []
    for i in range(count):  # seed i + 1: the first is the single stand-in's, each next one other data and credentials
        own = f"sandboxM2MClient{i + 1:016d}" if tenant_count else None  # the first is DEFAULT_CLIENT_ID
        sandbox = Sandbox(clients=clients, port=port + i if port else 0, seed=i + 1, sizes=Sizes(**sizes), client_id=own)
        sandbox.tenant.latency = latency
        if rate:
            sandbox.tenant.rate, sandbox.tenant.burst = rate, burst
        sandbox.buckets.enabled = endpoint_limits
        sandbox.set_scopes(scopes.split())
        sandbox.logs.set_rate(log_rate)
        sandboxes.append(sandbox)
    try:
        for i, sandbox in enumerate(sandboxes):
            sandbox.start()
    except OSError as exc:
        for started in sandboxes[:i]:
            started.stop()
        raise UsageError(f"cannot listen on 127.0.0.1:{port + i}: {exc.strerror}; choose another --port, or 0 for any free one") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    folder = None
    try:
        if tenant_count is None:
            _print_one(sandboxes[0], clients)
        else:
            folder = _print_several(sandboxes, clients)
        sys.stdout.flush()
        stop.wait()
    finally:
        for sandbox in sandboxes:
            sandbox.stop()
        if folder is not None:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)  # the secrets go with the stand-ins


def _print_one(sandbox, clients: int) -> None:
    click.echo(f"# Stand-in tenant with {clients} applications on {sandbox.base_url} (Ctrl-C to stop). It holds:")
    for line in sandbox.describe():
        click.echo(f"#   {line}")
    click.echo("# Use it with:")
    for name, value in sandbox.settings().items():
        click.echo(f"export {name}={value}")


def _print_several(sandboxes: list, clients: int) -> str:
    """Writes a tenants file and each secret (mode 0600) in a new folder of its own, prints the file and
    the one variable to export; returns the folder, removed when the stand-ins stop. The secrets are
    given by reference, as a tenants file keeps them (README, "Several tenants")."""
    import os
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="runner-sandbox-"))  # mode 0700
    parts = []
    for i, sandbox in enumerate(sandboxes, start=1):
        name = f"tenant-{i}"
        secret = folder / f"{name}.secret"
        descriptor = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(sandbox.client_secret + "\n")
        parts.append(f'[tenants.{name}]\ndomain = "{sandbox.base_url}"\nclient_id = "{sandbox.client_id}"\n'
                     f'client_secret_file = "{secret}"\n')
    tenants_file = folder / "tenants.toml"
    tenants_file.write_text("\n".join(parts))
    click.echo(f"# {len(sandboxes)} stand-in tenants with {clients} applications each (Ctrl-C to stop), each its own data, "
               "credentials and rate limit:")
    for i, sandbox in enumerate(sandboxes, start=1):
        click.echo(f"#   tenant-{i} on {sandbox.base_url} (seed {sandbox.seed})")
    click.echo("# Each holds:")
    for line in sandboxes[0].describe():
        click.echo(f"#   {line}")
    click.echo(f"# Their tenants file, {tenants_file} (the secrets in files beside it, mode 0600; removed when stopped):")
    click.echo(tenants_file.read_text(), nl=False)
    click.echo("# Use it with:")
    click.echo(f"export RUNNER_TENANTS_FILE={tenants_file}")
    return str(folder)


def register(cli: click.Group) -> None:
    cli.add_command(sandbox_command)

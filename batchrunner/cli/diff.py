"""`runner diff`: what changed between two snapshots (README, "Commands")."""

from __future__ import annotations

import sys

import click

from batchrunner.cli.common import checked_settings, chosen_tenants, json_option, tenant_option


@click.command("diff")
@click.argument("old", required=False)
@click.argument("new", required=False)
@json_option
@tenant_option("The tenant whose snapshots to compare (RUNNER_TENANTS_FILE); needed where there are several.")
def diff_command(old, new, as_json, tenant_name):
    """Show what changed between two snapshots: rows added, removed and changed.

    OLD and NEW are snapshot names in RUNNER_EXPORT_DIR/snapshots (e.g.
    20261124T023000Z) or paths; without them, the newest, each resource
    against the newest earlier snapshot that holds it. Exits as diff(1): 0 no
    change, 1 changes, 2 trouble (a snapshot missing or damaged, or two
    snapshots of two tenants). A named tenant's snapshots are in
    RUNNER_EXPORT_DIR/TENANT/snapshots.
    """
    from batchrunner.cli import render as output
    from batchrunner.errors import UsageError
    from batchrunner.outputs import drift

    settings = checked_settings()
    _, chosen = chosen_tenants(settings, tenant_name)
    if len(chosen) != 1:
        raise UsageError(f"there are several tenants ({', '.join(t.name for t in chosen)}); give --tenant NAME")
    changes = drift.between(chosen[0].export_dir(settings.export_dir) / "snapshots", old, new)
    click.echo(output.to_json(changes.as_json()) if as_json else drift.render(changes))
    sys.exit(1 if changes.any else 0)


def register(cli: click.Group) -> None:
    cli.add_command(diff_command)

"""`runner diff`: what changed between two snapshots (README, "Commands")."""

from __future__ import annotations

import sys

import click

from batchrunner.cli.common import checked_settings, json_option


@click.command("diff")
@click.argument("old", required=False)
@click.argument("new", required=False)
@json_option
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

    changes = drift.between(checked_settings().export_dir / "snapshots", old, new)
    click.echo(output.to_json(changes.as_json()) if as_json else drift.render(changes))
    sys.exit(1 if changes.any else 0)


def register(cli: click.Group) -> None:
    cli.add_command(diff_command)

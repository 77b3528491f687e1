#!/usr/bin/env python3
"""The runner's command line: each command parses, calls one core function, renders the result.

Run `python runner.py --help` from a checkout, or `runner --help` once installed. The commands
live one module per group beside this one (run, history, diff, serve, tokens, tenants, db,
sandbox, operating); each registers its own with `register(cli)`.
"""

from __future__ import annotations

import sys

import click

from batchrunner import __version__
from batchrunner.cli import db, diff, history, operating, run, sandbox, serve, tenants, tokens
from batchrunner.cli.common import say
from batchrunner.errors import RunnerError


class RunnerGroup(click.Group):
    """Turns every RunnerError into one line on stderr and its exit code (README, "Commands")."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RunnerError as exc:
            from batchrunner.logs import redact

            say(redact(exc.message()))
            ctx.exit(exc.exit_code)


@click.group(cls=RunnerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
def cli():
    """Run scheduled batch jobs against the Auth0 Management API.

    Settings come from environment variables (AUTH0_DOMAIN, AUTH0_CLIENT_ID,
    AUTH0_CLIENT_SECRET, RUNNER_DATABASE_URL, ...); see the README.
    """


for _module in (run, history, diff, serve, tokens, tenants, db, sandbox, operating):
    _module.register(cli)


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

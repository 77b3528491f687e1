"""The README and --help stay honest: every command is documented and helps, every setting the
code reads is in the README's table."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from batchrunner.cli import main as cli_module
from conftest import ROOT

README = (ROOT / "README.md").read_text()


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from _commands(command, f"{path} ")
        else:
            yield path


COMMANDS = sorted(_commands(cli_module.cli))


def test_the_commands_are_the_ones_the_spec_names():
    assert COMMANDS == ["check", "db upgrade", "diff", "history", "jobs", "metrics", "prune", "run-job", "sandbox", "serve",
                        "tenants", "token check", "token issuances", "token print", "token status"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme_and_has_help(command):
    assert f"`runner {command}" in README, f"README has no `runner {command}`"
    result = CliRunner().invoke(cli_module.cli, [*command.split(), "--help"], prog_name="runner")
    assert result.exit_code == 0
    summary = result.output.split("\n\n")[1].strip()
    assert len(summary) > 20, f"runner {command} --help says too little: {summary!r}"


def test_every_setting_the_code_reads_is_in_the_readme():
    code = "\n".join(p.read_text() for folder in ("batchrunner", "jobs") for p in (ROOT / folder).rglob("*.py")) + (ROOT / "runner.py").read_text()
    settings = {s for s in re.findall(r'"((?:AUTH0|RUNNER)_[A-Z_]+)"', code) if not s.endswith("_")}  # not prefixes
    assert settings, "found no settings in the code"
    table = README[README.index("## Configuration"):README.index("## Commands")]
    # A name ending in "_" is a per-job prefix, documented as RUNNER_..._<JOB>.
    missing = sorted(s for s in settings if (f"`{s}<JOB>`" if s.endswith("_") else f"`{s}`") not in table)
    assert missing == []


def test_the_readme_says_how_to_get_runner_on_the_path():
    assert ". .venv/bin/activate" in README and "`.venv/bin/runner`" in README


def test_the_license_is_an_spdx_string_so_setuptools_prints_no_deprecation():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert "setuptools>=77" in project["build-system"]["requires"]  # the first to take the string


def test_postgresql_skips_are_summed_up_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RUNNER_TEST_POSTGRES_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_cli.py", "tests/test_db.py",
         "-k", "(name_the_database or newer_than) and postgresql"],  # two PostgreSQL tests, in two files, only
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    skips = [line for line in result.stdout.splitlines() if "RUNNER_TEST_POSTGRES_URL" in line]
    assert skips == ["SKIPPED [2] PostgreSQL tests need RUNNER_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"]

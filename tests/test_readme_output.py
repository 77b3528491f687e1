"""What the README shows a command printing is what it prints (issue 19, item 28): each line of its
`runner check` example has the shape of a line the command really prints, and each such shape is shown."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert

from batchrunner.store.database import open_database
from batchrunner.store.schema import runs
from conftest import QUIET, ROOT, SQLITE_ONLY

README = (ROOT / "README.md").read_text()


def shape(line: str) -> re.Pattern:
    """A real line with its particulars (job, numbers, times, the error itself) left open."""
    job, _, rest = line.partition(": ")
    pattern = re.sub(r"\d+", r"\\d+", re.escape(rest))  # numbers and times: re.escape leaves digits alone
    pattern = re.sub(r"failed:\\ .*$", "failed: .+", pattern)
    return re.compile((r"[a-z][a-z-]*: " if job != "OK" else "OK: ") + pattern)


def readme_block(after: str) -> list[str]:
    """The lines of the first code block after `after` that are output, not a `$ ` command or its exit status."""
    text = README[README.index(after):]
    block = text[text.index("```\n") + 4:]
    block = block[:block.index("```")]
    lines = block.splitlines()
    return [l for i, l in enumerate(lines) if not l.startswith("$ ") and not (i and lines[i - 1] == "$ echo $?")]


@SQLITE_ONLY
def test_the_readme_shows_runner_check_as_it_prints(local_runner, database_url):
    env = {**QUIET, "RUNNER_SCHEDULE_HELLO": "0 3 * * *", "RUNNER_SCHEDULE_FAILING": "0 5 * * *"}
    local_runner("run-job", "hello", extra_env=env)
    ok = local_runner("check", extra_env=env).stdout.splitlines()
    long_ago = datetime.now(timezone.utc) - timedelta(days=3)
    with open_database(database_url).write() as conn:
        conn.execute(insert(runs).values(job="hello", trigger="schedule", status="succeeded", started_at=long_ago,
                                         finished_at=long_ago, host="h", pid=1))
    local_runner("run-job", "failing", extra_env=env)
    with open_database(database_url).write() as conn:  # hello's only success is now days old: overdue
        conn.execute(runs.delete().where(runs.c.job == "hello", runs.c.started_at > long_ago + timedelta(seconds=1)))
    bad = local_runner("check", extra_env=env).stdout.splitlines()
    shapes = [shape(line) for line in ok + bad]
    assert len(shapes) == 3 and "overdue" in bad[1], bad
    shown = readme_block("As it prints them")
    for line in shown:
        assert any(s.fullmatch(line) for s in shapes), f"the README shows a line runner check does not print: {line}"
    for s in shapes:
        assert any(s.fullmatch(line) for line in shown), f"the README shows no line like {s.pattern}"


@SQLITE_ONLY
def test_first_steps_show_run_job_as_it_prints(runner):
    steps = README[README.index("## First steps with a real tenant"):README.index("## Configuration")]
    printed = runner("run-job", "export-clients").stdout.strip()
    pattern = re.sub(r"\d+", r"\\d+", re.escape(printed.split(" written to ")[0])) + r" written to /\S+/clients-\d{8}T\d{6}Z\.csv"
    assert re.search(f"`{pattern}`", steps), (printed, steps)

"""crontab.example as cron runs it: quiet when the run succeeds, one line (a mail) when it does not."""

from __future__ import annotations

import shlex
import subprocess
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from batchrunner import process
from batchrunner.runs import schedules
from batchrunner.store.database import open_database
from batchrunner.store.schema import runs
from conftest import ROOT, RUNNER, SQLITE_ONLY


def cron_line(tmp_path, env) -> tuple[str, str]:
    """The example's export line, its paths pointed at this test; (schedule, command)."""
    [line] = [l for l in (ROOT / "crontab.example").read_text().splitlines() if "run-job export-clients" in l and not l.startswith("#")]
    fields = line.split(None, 5)
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items() if k.startswith(("AUTH0_", "RUNNER_"))))
    command = (fields[5]
               .replace("/etc/auth0-runner/env", str(env_file))
               .replace("/opt/auth0-runner/.venv/bin/runner", f"{sys.executable} {RUNNER}")
               .replace("/var/lib/auth0-runner/cron.log", str(tmp_path / "cron.log")))
    return " ".join(fields[:5]), command


@SQLITE_ONLY
def test_the_example_is_quiet_on_success_and_says_why_otherwise(env, tmp_path, database_url):
    schedule, command = cron_line(tmp_path, env)
    assert schedules.trigger(schedule, ZoneInfo("UTC")) is not None
    assert "%" not in command  # cron would read it as a new line

    ok = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    assert " succeeded" in (tmp_path / "cron.log").read_text()

    with open_database(database_url).write() as conn:  # a run of the daemon's, still going
        conn.execute(insert(runs).values(job="export-clients", trigger="schedule", status="running",
                                         started_at=datetime.now(timezone.utc), heartbeat_at=datetime.now(timezone.utc),
                                         host=process.HOST, node=process.NODE, pid=process.pid()))
    busy = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert busy.stdout.startswith("export-clients did not succeed: exit 75 (")
    assert busy.stdout.count("\n") == 1


def test_the_other_lines_are_valid_schedules_without_percent_signs():
    lines = [l for l in (ROOT / "crontab.example").read_text().splitlines() if l and not l.startswith("#") and "=" not in l.split()[0]]
    assert any("runner check" in l for l in lines) and any("metrics --textfile" in l for l in lines)
    for line in lines:
        assert schedules.trigger(" ".join(line.split()[:5]), ZoneInfo("UTC")) is not None
        assert "%" not in line


def test_every_bundled_job_has_a_line_at_its_own_schedule_and_the_upkeep_has_its_own():
    from batchrunner.runs.registry import discover

    lines = [l for l in (ROOT / "crontab.example").read_text().splitlines() if l and not l.startswith("#")]
    for job in discover().values():
        [line] = [l for l in lines if f"runner run-job {job.name} " in l]
        assert " ".join(line.split()[:5]) == job.schedule, job.name
        assert f'echo "{job.name} did not succeed: exit $? ' in line  # cron mails one line when it did not
    assert any("runner prune" in l for l in lines)  # retention: no `serve` prunes under cron
    assert any("logrotate --state" in l and "cron.log" in (ROOT / "crontab.example").read_text() for l in lines)
    assert any(l.split()[5:6] == ["rclone"] and "--exclude '.*'" in l for l in lines)  # ships whole files only

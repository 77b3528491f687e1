"""`runner check` (README, "Operating it unattended"): 0 when every scheduled job's latest run succeeded and none is overdue, else 1."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from batchrunner.operating import checks as check
from batchrunner.operating.metrics import Scheduled
from batchrunner.runs import schedules
from batchrunner.store.database import open_database
from batchrunner.store.schema import runs
from conftest import QUIET

SCHEDULED = {**QUIET, "RUNNER_SCHEDULE_HELLO": "0 3 * * *", "RUNNER_SCHEDULE_FAILING": "0 5 * * *"}


def test_check_exits_0_then_1_naming_the_failed_job(local_runner):
    assert local_runner("run-job", "hello", extra_env=SCHEDULED).returncode == 0
    ok = local_runner("check", extra_env=SCHEDULED)
    assert (ok.returncode, ok.stdout) == (0, "OK: 2 scheduled jobs; their latest runs succeeded and none is overdue\n")

    assert local_runner("run-job", "failing", extra_env=SCHEDULED).returncode == 1
    bad = local_runner("check", extra_env=SCHEDULED)
    assert bad.returncode == 1
    [line] = bad.stdout.splitlines()
    assert line.startswith("failing: the latest run (2, started ") and line.endswith(") failed: RuntimeError: this job always fails")
    as_json = json.loads(local_runner("check", "--json", extra_env=SCHEDULED).stdout)
    assert as_json["ok"] is False and [(p["job"], p["kind"]) for p in as_json["problems"]] == [("failing", "failed")]

    off = local_runner("check", extra_env={**SCHEDULED, "RUNNER_SCHEDULE_FAILING": "off"})
    assert off.returncode == 0  # nothing is expected of a job whose schedule is off


def test_a_job_without_a_success_since_its_fire_time_is_overdue(database_url):
    db = open_database(database_url)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    last = datetime(2026, 11, 23, 3, 0, 5, tzinfo=timezone.utc)
    with db.write() as conn:
        conn.execute(insert(runs).values(job="hello", trigger="schedule", status="succeeded", started_at=last,
                                         finished_at=last + timedelta(seconds=2), host="h", pid=1))
    jobs = [Scheduled("hello", schedules.trigger("0 3 * * *", ZoneInfo("UTC")))]
    [problem] = check.problems(db, jobs, now, timedelta(hours=1))
    assert problem.message == ("hello: overdue: no success since its run due 2026-11-25T03:00:00Z (grace 3600 s); "
                               "last success 2026-11-23T03:00:07Z")
    # Within the grace after its fire time, a job is not yet overdue.
    assert check.problems(db, jobs, datetime(2026, 11, 24, 3, 30, tzinfo=timezone.utc), timedelta(hours=1)) == []

"""users-cleanup's "last seen" from the log archive (README, "User maintenance: `users-cleanup`", Last
seen): the later of `last_login` and the newest successful login event (`s`, `ssa`, `sertft`) export-logs
archived for the user, kept in the database as it archives, and read from an existing archive once."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from batchrunner.sandbox.users import user
from conftest import SQLITE_ONLY, run_skewed
from test_logs_archive import archived
from test_users_cleanup import DAYS, V, inactive, plan_rows, run

LOGINS = ("s", "ssa", "sertft")
RULES = f"inactive {DAYS} block; max_fraction = 1"
KILL_HOOK = str(Path(__file__).parent / "fixture_hooks" / "kill_during_publish.py")


@pytest.fixture
def seen_tenant(tenant):
    tenant.set_scopes(["read:users", "read:logs"])
    tenant.exports.users = 300
    return tenant


def inactive_by_last_login(tenant, count: int) -> list[int]:
    """Numbers of users who logged in once, long ago (`inactive DAYS` selects them by last_login)."""
    found = [i for i in range(200, 300) if "last_login" in user(tenant.seed, i) and inactive(user(tenant.seed, i), DAYS)]
    assert len(found) >= count
    return found[:count]


def table_rows(url: str, tenant: str = "default") -> dict[str, tuple]:
    from batchrunner.store.database import open_database
    from batchrunner.store.schema import last_seen

    with open_database(url).read() as conn:
        rows = conn.execute(select(last_seen).where(last_seen.c.tenant == tenant))
        return {r.user_id: (r.seen_at, r.log_type, r.log_id) for r in rows}


def newest_logins(events: list[dict]) -> dict[str, tuple]:
    """The test's own reading: each user's newest s/ssa/sertft event."""
    newest: dict[str, tuple] = {}
    for e in events:
        if e["type"] in LOGINS and e.get("user_id"):
            at = datetime.fromisoformat(e["date"].replace("Z", "+00:00"))
            if e["user_id"] not in newest or newest[e["user_id"]][0] < at:
                newest[e["user_id"]] = (at, e["type"], e["log_id"])
    return newest


def test_a_user_who_only_refreshes_tokens_is_seen_and_one_whose_events_are_old_is_not(runner, seen_tenant, env, tmp_path):
    refresher, silent, failed = inactive_by_last_login(seen_tenant, 3)
    logs = seen_tenant.logs
    logs.add_event("sertft", refresher)
    logs.add_event("ssa", silent)
    logs.add_event("f", failed)  # a failed login is not being seen
    assert runner("run-job", "export-logs").returncode == 0
    result, ran = run(runner, "--param", "max_actions=1000", rules=RULES)
    assert result.returncode == 0, result.stderr
    planned = {r["user_id"]: r for r in plan_rows(ran)}
    ids = {n: user(seen_tenant.seed, n)["user_id"] for n in (refresher, silent, failed)}
    assert ids[refresher] not in planned and ids[silent] not in planned
    assert planned[ids[failed]]["seen_by"] == "last_login"
    assert planned[ids[failed]]["last_seen"] == user(seen_tenant.seed, failed)["last_login"]
    seen = newest_logins(archived(tmp_path))
    kept = [n for n in range(300) if inactive(user(seen_tenant.seed, n), DAYS) and user(seen_tenant.seed, n)["user_id"] in seen]
    assert refresher in kept and silent in kept
    assert (ran["result"]["last_seen_from"], ran["result"]["kept_by_login_events"]) == ("last_login, login events", len(kept))
    assert ran["result"]["selected"] == sum(inactive(user(seen_tenant.seed, n), DAYS) for n in range(300)) - len(kept)
    assert f", {len(kept)} kept by login events" in result.stderr
    # Five days on, the refresh token exchange is five days old: `inactive 3` selects the user, and the
    # plan says the archive's event is what it was last seen by.
    skewed = run_skewed({**env, V: "inactive 3 block; max_fraction = 1"}, tmp_path, 5 * 86400, "run-job", "users-cleanup",
                        "--json", "--param", "max_actions=1000", timeout=120)
    assert skewed.returncode == 0, skewed.stderr

    later = {r["user_id"]: r for r in plan_rows(json.loads(skewed.stdout))}
    event_at, _, _ = seen[ids[refresher]]
    assert later[ids[refresher]]["seen_by"] == "log:sertft"
    assert datetime.fromisoformat(later[ids[refresher]]["last_seen"].replace("Z", "+00:00")) == event_at  # Auth0's milliseconds
    assert later[ids[failed]]["seen_by"] == "last_login"


@SQLITE_ONLY
def test_a_tenant_whose_logs_are_not_archived_is_judged_by_last_login_alone_and_says_so(runner, seen_tenant):
    refresher = inactive_by_last_login(seen_tenant, 1)[0]
    seen_tenant.logs.add_event("sertft", refresher)  # the tenant holds it; export-logs never ran
    result, ran = run(runner, "--param", "max_actions=1000", rules=RULES)
    assert result.returncode == 0, result.stderr
    row = next(r for r in plan_rows(ran) if r["user_id"] == user(seen_tenant.seed, refresher)["user_id"])
    assert row["seen_by"] == "last_login"
    assert (ran["result"]["last_seen_from"], ran["result"]["kept_by_login_events"]) == ("last_login", 0)
    assert ("last seen is last_login alone: export-logs keeps no login events of tenant default in this database "
            "(run it, with scope read:logs, to count silent authentication and refresh tokens as seen)") in result.stderr


def test_the_newest_login_event_is_kept_whatever_order_batches_come_in_and_replays_change_nothing(database_url):
    from batchrunner.outputs.last_seen import Batch
    from batchrunner.store.database import open_database

    db = open_database(database_url)
    new = {"type": "sertft", "user_id": "auth0|a", "date": "2026-12-01T10:00:00.250Z", "log_id": "9002"}
    old = {"type": "s", "user_id": "auth0|a", "date": "2026-11-01T10:00:00.000Z", "log_id": "9001"}
    other = {"type": "ssa", "user_id": "auth0|b", "date": "2026-11-15T00:00:00.000Z", "log_id": "9003"}
    for events in ([new, other], [old], [new, other], [old, other]):  # a newer batch, an older one, replays
        batch = Batch()
        for event in events + [{"type": "f", "user_id": "auth0|c", "date": "2026-12-02T00:00:00.000Z", "log_id": "9004"}]:
            batch.see(event)
        batch.save(db, "default")
    assert table_rows(database_url) == {
        "auth0|a": (datetime(2026, 12, 1, 10, 0, 0, 250000, tzinfo=timezone.utc), "sertft", "9002"),
        "auth0|b": (datetime(2026, 11, 15, tzinfo=timezone.utc), "ssa", "9003")}
    assert table_rows(database_url, "prod") == {}  # per tenant


@SQLITE_ONLY
@pytest.mark.parametrize("step", ["intent", "rename"])
def test_a_file_archived_again_after_a_sigkill_leaves_last_seen_right(runner, seen_tenant, env, tmp_path, step):
    # Killed after its first file's events are saved, before the checkpoint moved past them: the next
    # run archives them again (or settles the rename), and the table is each user's newest event.
    logs = seen_tenant.logs
    hooked = {"RUNNER_JOBS": KILL_HOOK, "RUNNER_LOGS_FILE_EVENTS": "60", "KILL_AT": step, "KILL_AFTER": "1"}
    assert runner("run-job", "export-logs", extra_env=hooked).returncode == -signal.SIGKILL
    for n in inactive_by_last_login(seen_tenant, 2):
        logs.add_event("ssa", n)
    clean = runner("run-job", "export-logs", extra_env={"RUNNER_LOGS_FILE_EVENTS": "60"})
    assert clean.returncode == 0, clean.stderr
    expected = newest_logins([logs.get(i) for i in logs.held()])
    assert table_rows(env["RUNNER_DATABASE_URL"]) == expected and len(expected) > 50


def test_an_archive_made_before_last_seen_was_kept_is_read_once_on_the_first_run_after_the_upgrade(runner, seen_tenant, env, tmp_path):
    from alembic import command

    from batchrunner.store.database import alembic_config, open_database
    from batchrunner.store.schema import job_state

    logs = seen_tenant.logs
    refresher = inactive_by_last_login(seen_tenant, 1)[0]
    logs.add_event("sertft", refresher)
    assert runner("run-job", "export-logs", extra_env={"RUNNER_LOGS_FILE_EVENTS": "70"}).returncode == 0
    url = env["RUNNER_DATABASE_URL"]
    db = open_database(url)
    with db.write() as conn:  # the database as the release before left it: no table, no record of one
        command.downgrade(alembic_config(conn), "0009")
        conn.execute(delete(job_state).where(job_state.c.name == "last_seen"))
    db._schema_checked = False
    result, ran = run(runner, "--param", "max_actions=1000", rules=RULES)  # upgraded, the archive not yet read
    assert result.returncode == 0 and ran["result"]["last_seen_from"] == "last_login"
    logs.add(30)
    upgraded = runner("run-job", "export-logs", extra_env={"RUNNER_LOGS_FILE_EVENTS": "70"})
    assert upgraded.returncode == 0, upgraded.stderr
    assert "recording last seen from 3 archived files the database does not cover yet" in upgraded.stderr
    assert table_rows(url) == newest_logins(archived(tmp_path)) == newest_logins([logs.get(i) for i in logs.held()])
    logs.add(10)
    again = runner("run-job", "export-logs", extra_env={"RUNNER_LOGS_FILE_EVENTS": "70"})
    assert again.returncode == 0 and "recording last seen" not in again.stderr  # never read again
    result, ran = run(runner, "--param", "max_actions=1000", rules=RULES)
    assert result.returncode == 0 and ran["result"]["last_seen_from"] == "last_login, login events"
    assert user(seen_tenant.seed, refresher)["user_id"] not in {r["user_id"] for r in plan_rows(ran)}


@SQLITE_ONLY
def test_a_named_tenants_login_events_are_its_own(local_runner, seen_tenant, tmp_path, database_url):
    from test_several_tenants import tenants_file

    refresher = inactive_by_last_login(seen_tenant, 1)[0]
    seen_tenant.logs.add_event("sertft", refresher)
    extra = tenants_file(tmp_path, {"prod": seen_tenant})
    path = Path(extra["RUNNER_TENANTS_FILE"])
    path.write_text(path.read_text() + f'\n[tenants.prod.jobs.users-cleanup]\nrules = ["inactive {DAYS} block"]\n'
                                       'max_fraction = 1\nmax_actions = 1000\n')
    assert local_runner("run-job", "export-logs", extra_env=extra).returncode == 0
    assert user(seen_tenant.seed, refresher)["user_id"] in table_rows(database_url, "prod")
    assert table_rows(database_url, "default") == {}
    result = local_runner("run-job", "users-cleanup", "--json", extra_env=extra, timeout=120)
    assert result.returncode == 0, result.stderr

    ran = json.loads(result.stdout)
    assert ran["result"]["last_seen_from"] == "last_login, login events" and ran["result"]["kept_by_login_events"] > 0
    assert user(seen_tenant.seed, refresher)["user_id"] not in {r["user_id"] for r in plan_rows(ran)}

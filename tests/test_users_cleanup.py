"""users-cleanup's dry run against the stand-in (README, "User maintenance: `users-cleanup`"): the
plan, the caps, the fraction refusal, the exclusions, the scopes, and nothing ever written to Auth0."""

from __future__ import annotations

import csv
import gzip
import json
import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest

from batchrunner.sandbox.users import user
from conftest import SQLITE_ONLY, start_runner, wait_for
from test_logs_archive import stopped

V = "RUNNER_USERS_CLEANUP_RULES"
SCOPES = ["read:users", "read:roles", "read:organizations", "read:organization_members"]
# The stand-in's users signed up in 2021 and last logged in within a year of it: 1,500 days of
# inactivity (from 2022 onwards) is past for every one of them until 2026, so the rules below use
# an age that splits them: 1,800 days back from now.
DAYS = 1800


@pytest.fixture
def cleanup_tenant(tenant):
    tenant.set_scopes(SCOPES)
    tenant.exports.users = 300
    return tenant


def run(runner, *args, rules: str, **kwargs):
    result = runner("run-job", "users-cleanup", "--json", *args, extra_env={V: rules, **kwargs.pop("env", {})}, timeout=120)
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def plan_rows(run_result: dict) -> list[dict]:
    with open(run_result["result"]["plan"], encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def inactive(profile: dict, days: int) -> bool:
    """The test's own reading of `inactive DAYS`: no login (or sign-up, for one who never logged in) within DAYS."""
    seen = datetime.fromisoformat((profile.get("last_login") or profile["created_at"]).replace("Z", "+00:00"))
    return seen < datetime.now(timezone.utc) - timedelta(days=days) and not profile.get("blocked")


def writes(tenant) -> list[dict]:
    return [r for r in tenant.tenant.received if r["method"] in ("PATCH", "DELETE", "PUT")
            or (r["method"] == "POST" and r["path"] != "/api/v2/jobs/users-exports" and "/oauth/" not in r["path"])]


@SQLITE_ONLY
def test_a_dry_run_plans_every_matching_user_and_writes_nothing_to_auth0(runner, cleanup_tenant, tmp_path):
    result, ran = run(runner, "--param", "max_actions=1000", rules=f"inactive {DAYS} block; max_fraction = 1")
    assert result.returncode == 0, result.stderr
    expected = [user(cleanup_tenant.seed, i) for i in range(300)]
    expected = [p for p in expected if inactive(p, DAYS)]
    rows = plan_rows(ran)
    assert [r["user_id"] for r in rows] == [p["user_id"] for p in expected] and 0 < len(rows) < 300
    assert list(rows[0]) == ["user_id", "email", "connection", "rule", "last_seen", "seen_by", "created_at", "action"]
    assert {r["action"] for r in rows} == {"block"} and {r["rule"] for r in rows} == {f"inactive {DAYS} block"}
    first = expected[0]
    assert rows[0]["email"] == first["email"] and rows[0]["connection"] == first["identities"][0]["connection"]
    assert rows[0]["last_seen"] == first.get("last_login", "") and rows[0]["created_at"] == first["created_at"]
    assert {r["seen_by"] for r in rows} == {"last_login", ""}  # "": never logged in
    assert ran["result"] | {"plan": "", "seconds": 0} == {
        "selected": len(rows), "planned": len(rows), "done": 0, "skipped": 0, "failed": 0, "deferred": 0,
        "applied": False, "plan": "", "users": 300, "protected": 0, "seconds": 0, "resolved": {"done": 0, "skipped": 0},
        "last_seen_from": "last_login", "kept_by_login_events": 0}
    assert ran["result"]["plan"].startswith(str(tmp_path / "exports" / "users-cleanup" / ""))
    assert writes(cleanup_tenant) == []


@SQLITE_ONLY
def test_max_actions_defers_the_rest_to_later_runs(runner, cleanup_tenant):
    result, ran = run(runner, "--param", "max_actions=3", rules=f"inactive {DAYS} delete; max_fraction = 1")
    assert result.returncode == 0, result.stderr
    rows = plan_rows(ran)
    assert [r["action"] for r in rows[:4]] == ["delete", "delete", "delete", "deferred"]
    assert {r["action"] for r in rows[3:]} == {"deferred"}
    assert (ran["result"]["planned"], ran["result"]["deferred"]) == (3, len(rows) - 3)


@SQLITE_ONLY
def test_a_selection_above_max_fraction_touches_nobody_and_fails_naming_both_numbers(runner, cleanup_tenant):
    result, ran = run(runner, rules=f"inactive {DAYS} block")
    selected = sum(inactive(user(cleanup_tenant.seed, i), DAYS) for i in range(300))
    assert result.returncode == 1
    line = (f"the rules select {selected:,} of 300 users, more than max_fraction 0.05 (15): nobody is touched; "
            f"check the rules and the export (the selection is in {ran['result']['plan']})")
    assert ran["error"] == line and line in result.stderr
    assert (ran["result"]["planned"], ran["result"]["deferred"]) == (0, selected)
    assert writes(cleanup_tenant) == []


@SQLITE_ONLY
def test_protected_roles_and_app_metadata_flags_always_win(runner, cleanup_tenant):
    result, ran = run(runner, "--param", "max_actions=1000",
                      rules=f'inactive {DAYS} block; max_fraction = 1; protect_roles = ["admins"]; protect_app_metadata = ["keep"]')
    assert result.returncode == 0, result.stderr
    d = cleanup_tenant.directory
    admins = next(r["id"] for r in d.roles if r["name"] == "admins")
    members = {user(cleanup_tenant.seed, i)["user_id"] for i in d.role_members[admins]}
    profiles = [user(cleanup_tenant.seed, i) for i in range(300)]
    kept = [p for p in profiles if inactive(p, DAYS) and (p["user_id"] in members or p.get("app_metadata", {}).get("keep"))]
    planned = {r["user_id"] for r in plan_rows(ran)}
    assert kept and any(p.get("app_metadata", {}).get("keep") for p in kept) and any(p["user_id"] in members for p in kept)
    assert not planned & {p["user_id"] for p in kept}
    assert ran["result"]["protected"] == len(kept)
    assert ran["result"]["selected"] == sum(inactive(p, DAYS) for p in profiles) - len(kept)


@SQLITE_ONLY
def test_a_protected_role_the_tenant_does_not_have_fails_the_run(runner, cleanup_tenant):
    result, ran = run(runner, rules=f'inactive {DAYS} block; protect_roles = ["admin"]')
    assert result.returncode == 1
    assert ran["error"] == "protect_roles names 'admin', which is no role of the tenant: nobody was touched; correct the name"
    assert not any(r["path"] == "/api/v2/jobs/users-exports" for r in cleanup_tenant.tenant.received)


@SQLITE_ONLY
def test_a_missing_scope_fails_before_anything_is_created(runner, cleanup_tenant, tmp_path):
    cleanup_tenant.set_scopes(["read:users"])
    result, ran = run(runner, rules=f'inactive {DAYS} block; protect_organizations = ["acme-corp"]')
    assert result.returncode == 1
    assert ran["error"].startswith("the token lacks read:organizations, read:organization_members, which users-cleanup's "
                                   "rules need; grant it to application ")
    assert ran["error"].endswith("; nothing was started")
    assert not (tmp_path / "exports" / "users-cleanup").exists()
    assert not any(r["path"] == "/api/v2/jobs/users-exports" for r in cleanup_tenant.tenant.received)


@pytest.mark.parametrize("args, rules, line", [
    ((), "inactive 365 archive", f"{V}: 'inactive 365 archive': inactive takes block or delete, not archive"),
    (("--param", "undo=last"), "inactive 365 block",
     "--param undo: 'last' is not a run id; give the number `runner history users-cleanup` shows"),
    (("--param", "delete=all"), "inactive 365 block", "users-cleanup takes no --param delete; its parameters: apply, max_actions, undo"),
])
def test_a_setting_it_cannot_honour_is_exit_2_before_a_run_is_recorded(runner, cleanup_tenant, args, rules, line):
    result, _ = run(runner, *args, rules=rules)
    assert result.returncode == 2 and line in result.stderr
    assert "Traceback" not in result.stderr
    assert runner("history", "--json").stdout.strip() in ("[]", "")
    assert not any(r["path"] == "/api/v2/jobs/users-exports" for r in cleanup_tenant.tenant.received)


# --- apply (README, "User maintenance", Apply): every guard of a write ---------------------------------

HOOK = str(Path(__file__).parent / "fixture_hooks" / "kill_during_cleanup.py")
WRITE_SCOPES = SCOPES + ["update:users", "delete:users"]
# Of 100 users, the acme-saml ones (i % 5 == 4): the unverified deleted, the other inactive blocked.
APPLY_RULES = f'unverified {DAYS} delete; inactive {DAYS} block; connections = ["acme-saml"]; max_fraction = 1'


@pytest.fixture
def apply_tenant(tenant):
    tenant.set_scopes(WRITE_SCOPES)
    tenant.exports.users = 100
    return tenant


def expected_actions(tenant) -> dict[str, str]:
    """user_id -> action, the test's own reading of APPLY_RULES."""
    wanted = {}
    for i in range(100):
        p = user(tenant.seed, i)
        if i % 5 != 4:
            continue
        old = datetime.fromisoformat(p["created_at"].replace("Z", "+00:00")) < datetime.now(timezone.utc) - timedelta(days=DAYS)
        if not p["email_verified"] and old:
            wanted[p["user_id"]] = "delete"
        elif inactive(p, DAYS):
            wanted[p["user_id"]] = "block"
    return wanted


def sent_writes(tenant) -> list[tuple[str, str]]:
    """(action, user_id) of every write the stand-in received, in order."""
    found = []
    for r in tenant.tenant.received:
        if r["path"].startswith("/api/v2/users/") and r["method"] in ("PATCH", "DELETE"):
            uid = unquote(r["path"].removeprefix("/api/v2/users/"))
            found.append(("delete" if r["method"] == "DELETE" else "block" if r["json"] == {"blocked": True} else "unblock", uid))
    return found


def ledger_rows(env) -> list[dict]:
    from sqlalchemy import select

    from batchrunner.store.database import open_database
    from batchrunner.store.schema import user_actions

    with open_database(env["RUNNER_DATABASE_URL"]).read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(user_actions).order_by(user_actions.c.id))]


def copies(run_result: dict) -> list[dict]:
    path = Path(run_result["result"]["plan"]).parent / "deleted-users.jsonl.gz"
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()] if path.exists() else []


def test_apply_blocks_and_deletes_each_planned_user_once_keeping_a_copy_of_each_deleted_one(runner, apply_tenant, env):
    wanted = expected_actions(apply_tenant)
    assert "delete" in wanted.values() and "block" in wanted.values()
    result, ran = run(runner, "--param", "apply=true", rules=APPLY_RULES)
    assert result.returncode == 0, result.stderr
    assert sorted(sent_writes(apply_tenant)) == sorted((a, u) for u, a in wanted.items())
    assert (ran["result"]["done"], ran["result"]["skipped"], ran["result"]["failed"], ran["result"]["applied"]) == (len(wanted), 0, 0, True)
    deleted = [u for u, a in wanted.items() if a == "delete"]
    originals = {user(apply_tenant.seed, i)["user_id"]: user(apply_tenant.seed, i) for i in range(100)}
    assert copies(ran) == [originals[u] for u in deleted]  # the full record, as GET /users/{id} showed it
    writes_ = [r for r in apply_tenant.tenant.received if r["method"] in ("PATCH", "DELETE")]
    assert {r["headers"]["X-Correlation-ID"] for r in writes_} == {f"runner-{ran['id']}"}
    rows = ledger_rows(env)
    assert sorted((r["user_id"], r["action"], r["state"], r["http_status"]) for r in rows) == sorted(
        (u, a, "done", 204 if a == "delete" else 200) for u, a in wanted.items())
    assert all(r["sent_at"] and r["finished_at"] and r["tenant"] == "default" and r["run_id"] == ran["id"] for r in rows)
    again, second = run(runner, "--param", "apply=true", rules=APPLY_RULES)
    assert again.returncode == 0 and second["result"]["selected"] == 0  # blocked ones pass, deleted ones are gone
    assert len(sent_writes(apply_tenant)) == len(wanted)
    metrics = runner("metrics").stdout
    for action in ("block", "delete"):
        count = sum(a == action for a in wanted.values())
        assert f'runner_user_actions_total{{action="{action}",state="done",tenant="default"}} {count:.1f}' in metrics


def test_the_users_it_deleted_leave_last_seen_unless_seen_since(runner, apply_tenant, env):
    """Their rows stayed for good: the table kept every user the tenant ever had."""
    from batchrunner.outputs import last_seen
    from batchrunner.store.database import open_database

    wanted = expected_actions(apply_tenant)
    deleted = sorted(u for u, a in wanted.items() if a == "delete")
    kept = next(u for u, a in wanted.items() if a == "block")
    db = open_database(env["RUNNER_DATABASE_URL"])
    batch = last_seen.Batch()
    for user_id in [*deleted, kept]:
        batch.see({"type": "s", "user_id": user_id, "date": "2020-01-02T03:04:05.000Z", "log_id": "90001"})
    batch.see({"type": "s", "user_id": deleted[0], "date": "2999-01-01T00:00:00.000Z", "log_id": "90002"})  # made again, seen since
    batch.save(db, "default")
    result, ran = run(runner, "--param", "apply=true", rules=APPLY_RULES)
    assert result.returncode == 0, result.stderr
    assert ran["result"]["done"] == len(wanted)
    assert sorted(last_seen.lookup(db, "default", [*deleted, kept])) == sorted([deleted[0], kept])


@SQLITE_ONLY
def test_apply_needs_the_write_scopes_its_rules_use_before_anything_is_created(runner, apply_tenant, tmp_path):
    apply_tenant.set_scopes(SCOPES + ["update:users"])
    result, ran = run(runner, "--param", "apply=true", rules=APPLY_RULES)
    assert result.returncode == 1
    assert ran["error"].startswith("the token lacks delete:users, which users-cleanup's rules need; grant it to application ")
    assert not (tmp_path / "exports" / "users-cleanup").exists() and sent_writes(apply_tenant) == []
    assert not any(r["path"] == "/api/v2/jobs/users-exports" for r in apply_tenant.tenant.received)


@SQLITE_ONLY
def test_a_user_who_no_longer_matches_when_re_read_is_skipped(env, runner, apply_tenant, tmp_path):
    wanted = expected_actions(apply_tenant)
    paused = start_runner({**env, V: APPLY_RULES, "RUNNER_JOBS": HOOK, "KILL_AT": "planned", "KILL_SIGNAL": "SIGSTOP"},
                          tmp_path, "run-job", "users-cleanup", "--json", "--param", "apply=true")
    wait_for(lambda: stopped(paused.pid))  # the first user's row planned, the user not yet re-read
    first = ledger_rows(env)[0]["user_id"]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    apply_tenant.exports.patch(first, {"last_login": now, "email_verified": True})  # logged in and verified since
    paused.send_signal(signal.SIGCONT)
    out, err = paused.communicate(timeout=60)
    assert paused.returncode == 0, err
    ran = json.loads(out)
    assert ran["result"]["skipped"] == 1 and ran["result"]["done"] == len(wanted) - 1
    assert first not in {u for _, u in sent_writes(apply_tenant)}
    row = ledger_rows(env)[0]
    assert (row["state"], row["detail"]) == ("skipped", f"no longer matches {ran_rule(wanted[first])}")


@SQLITE_ONLY
def test_a_login_event_archived_after_the_selection_keeps_the_user_when_re_read(env, runner, apply_tenant, tmp_path):
    # The re-read before a write judges last seen as the selection did: a token refresh that
    # export-logs archived between the plan and the write (Auth0 leaves last_login as it was) counts.
    rules = f'inactive {DAYS} block; connections = ["acme-saml"]; max_fraction = 1'
    apply_tenant.set_scopes([*WRITE_SCOPES, "read:logs"])
    assert runner("run-job", "export-logs").returncode == 0  # login events are kept for this tenant from now on
    paused = start_runner({**env, V: rules, "RUNNER_JOBS": HOOK, "KILL_AT": "planned", "KILL_SIGNAL": "SIGSTOP"},
                          tmp_path, "run-job", "users-cleanup", "--json", "--param", "apply=true")
    wait_for(lambda: stopped(paused.pid))  # the first user's row planned, the user not yet re-read
    first = ledger_rows(env)[0]["user_id"]
    number = next(i for i in range(100) if user(apply_tenant.seed, i)["user_id"] == first)
    apply_tenant.logs.add_event("sertft", number)
    assert runner("run-job", "export-logs").returncode == 0
    paused.send_signal(signal.SIGCONT)
    out, err = paused.communicate(timeout=60)
    assert paused.returncode == 0, err
    ran = json.loads(out)
    assert ran["result"]["skipped"] == 1 and first not in {u for _, u in sent_writes(apply_tenant)}
    row = ledger_rows(env)[0]
    assert (row["state"], row["detail"]) == ("skipped", f"no longer matches inactive {DAYS} block")


def ran_rule(action: str) -> str:
    return f"unverified {DAYS} delete" if action == "delete" else f"inactive {DAYS} block"


@SQLITE_ONLY
@pytest.mark.parametrize("step", ["planned", "sent", "write", "done"])
def test_a_run_killed_at_any_step_and_run_again_acts_on_every_user_once(runner, apply_tenant, env, step, tmp_path):
    wanted = expected_actions(apply_tenant)
    second = user(apply_tenant.seed, 9)  # the second planned user, a deletion (never verified)
    assert list(wanted.items())[1] == (second["user_id"], "delete")
    hooked = {"RUNNER_JOBS": HOOK, "KILL_AT": step, "KILL_AFTER": "2"}
    killed, _ = run(runner, "--param", "apply=true", rules=APPLY_RULES, env=hooked)
    assert killed.returncode == -signal.SIGKILL
    before = sent_writes(apply_tenant)
    assert len(before) == {"planned": 1, "sent": 1, "write": 2, "done": 2}[step]
    if step == "sent":  # killed before its DELETE left: the copy is on disk already, the user still in Auth0
        kept = gzip.decompress(next((tmp_path / "exports" / "users-cleanup").glob("*/deleted-users.jsonl.gz")).read_bytes())
        assert [json.loads(line) for line in kept.decode().splitlines()] == [second]
        assert apply_tenant.exports.find(second["user_id"]) == second
    again, ran = run(runner, "--param", "apply=true", rules=APPLY_RULES)
    assert again.returncode == 0, again.stderr
    writes_ = sent_writes(apply_tenant)
    assert sorted(writes_) == sorted((a, u) for u, a in wanted.items())  # each once: none twice, none lost
    done = [r for r in ledger_rows(env) if r["state"] == "done"]
    assert sorted((r["user_id"], r["action"]) for r in done) == sorted(wanted.items())
    assert not [r for r in ledger_rows(env) if r["state"] in ("planned", "sent")]
    if step == "write":
        assert ran["result"]["resolved"] == {"done": 1, "skipped": 0}
    if step == "sent":  # the copy was synced before the DELETE would have left
        assert ran["result"]["resolved"] == {"done": 0, "skipped": 1}


@SQLITE_ONLY
def test_each_user_is_re_read_before_its_write_and_while_the_previous_users_write_awaits_its_answer(runner, apply_tenant):
    # One round trip a user, not two (README, "User maintenance", Apply): at Auth0's 200 writes a
    # minute a write may leave every 0.3 s, and a re-read and a write one after the other take more.
    latency = apply_tenant.tenant.latency = 0.3
    result, ran = run(runner, "--param", "apply=true", "--param", "max_actions=3", rules=APPLY_RULES)
    assert result.returncode == 0, result.stderr
    asked = [r for r in apply_tenant.tenant.received if r["path"].startswith("/api/v2/users/")]
    reads = {unquote(r["path"]): r["at"] for r in asked if r["method"] == "GET"}
    writes = [(unquote(r["path"]), r["at"]) for r in asked if r["method"] in ("PATCH", "DELETE")]
    assert len(writes) == 3 and ran["result"]["done"] == 3
    assert all(reads[path] < at for path, at in writes)  # each re-read before its own write
    for (_, at), (following, _) in zip(writes, writes[1:]):
        assert reads[following] < at + latency  # sent before the previous write could have been answered


@SQLITE_ONLY
def test_on_essentials_left_at_one_bucket_the_run_says_to_set_endpoint_buckets(runner, apply_tenant):
    # Essentials' buckets, roomy enough not to slow the test: the export job's 10 (all other endpoints), Read Users 40.
    apply_tenant.buckets.enabled = True
    apply_tenant.buckets.limits.update({"Write Users": (10, 6000), "Delete Users": (10, 6000)})
    hint = ("the tenant's answers name rate-limit buckets of 10 and 40 requests, where RUNNER_RATE_LIMITS=global "
            "expects one: an Essentials, Professional or B2B tenant has a bucket per endpoint family; set "
            'RUNNER_RATE_LIMITS=endpoint (or the tenant\'s rate_limits = "endpoint"), else requests meet 429s')
    result, ran = run(runner, "--param", "apply=true", rules=APPLY_RULES)
    assert result.returncode == 0 and ran["result"]["done"] > 10, result.stderr
    assert result.stderr.count(hint) == 1
    apply_tenant.exports.reset()
    apply_tenant.exports.users = 100
    apply_tenant.buckets.reset()
    apply_tenant.buckets.enabled = True
    apply_tenant.buckets.limits.update({"Write Users": (10, 6000), "Delete Users": (10, 6000)})
    apply_tenant.tenant.responses_429 = 0
    result, ran = run(runner, "--param", "apply=true", rules=APPLY_RULES, env={"RUNNER_RATE_LIMITS": "endpoint"})
    assert result.returncode == 0 and ran["result"]["done"] > 10, result.stderr
    assert "RUNNER_RATE_LIMITS" not in result.stderr and apply_tenant.tenant.responses_429 == 0


@SQLITE_ONLY
def test_undo_plans_first_then_unblocks_what_that_run_blocked_and_is_still_blocked(runner, apply_tenant, env):
    blocked = sorted(u for u, a in expected_actions(apply_tenant).items() if a == "block")
    result, applied = run(runner, "--param", "apply=true", rules=APPLY_RULES)
    assert result.returncode == 0, result.stderr
    apply_tenant.exports.patch(blocked[0], {"blocked": False})  # a person unblocked one meanwhile
    before = len(sent_writes(apply_tenant))
    result, dry = run(runner, "--param", f"undo={applied['id']}", rules=APPLY_RULES)
    assert result.returncode == 0, result.stderr
    assert sorted(r["user_id"] for r in plan_rows(dry)) == blocked and {r["action"] for r in plan_rows(dry)} == {"unblock"}
    assert len(sent_writes(apply_tenant)) == before and dry["result"]["applied"] is False
    result, undone = run(runner, "--param", f"undo={applied['id']}", "--param", "apply=true", rules=APPLY_RULES)
    assert result.returncode == 0, result.stderr
    assert sorted(sent_writes(apply_tenant)[before:]) == [("unblock", u) for u in blocked[1:]]
    assert (undone["result"]["done"], undone["result"]["skipped"]) == (len(blocked) - 1, 1)
    assert all(apply_tenant.exports.find(u).get("blocked") is False for u in blocked)
    result, again = run(runner, "--param", f"undo={applied['id']}", "--param", "apply=true", rules=APPLY_RULES)
    assert (again["result"]["done"], again["result"]["skipped"]) == (0, len(blocked))  # none still blocked: none sent
    assert len(sent_writes(apply_tenant)) == before + len(blocked) - 1
    rows = [r for r in ledger_rows(env) if r["action"] == "unblock" and r["state"] == "done"]
    assert sorted(r["user_id"] for r in rows) == blocked[1:] and {r["rule"] for r in rows} == {f"undo {applied['id']}"}


# --- a named tenant's rules (README, "Several tenants"): from its table in the tenants file ------------

@SQLITE_ONLY
@pytest.mark.parametrize("name", ["prod", "default"])
def test_a_named_tenants_rules_come_from_its_table_in_the_tenants_file(local_runner, tenant, tmp_path, name):
    """A tenant named `default` in the file too: its table was checked, then the variable's rules used."""
    from test_several_tenants import tenants_file

    tenant.set_scopes(WRITE_SCOPES)
    tenant.exports.users = 100
    extra = tenants_file(tmp_path, {name: tenant})
    extra["RUNNER_USERS_CLEANUP_RULES"] = "inactive 30 delete"  # the tenant `default`'s, where its table gives none
    path = Path(extra["RUNNER_TENANTS_FILE"])
    path.write_text(path.read_text() + f'\n[tenants.{name}.jobs.users-cleanup]\nrules = ["unverified {DAYS} block"]\n'
                                       'connections = ["acme-saml"]\nmax_fraction = 1\nmax_actions = 2\n')
    result = local_runner("run-job", "users-cleanup", "--json", extra_env=extra, timeout=120)
    assert result.returncode == 0, result.stderr
    ran = json.loads(result.stdout)
    rows = plan_rows(ran)
    assert {r["rule"] for r in rows} == {f"unverified {DAYS} block"} and {r["connection"] for r in rows} == {"acme-saml"}
    assert [r["action"] for r in rows[:3]] == ["block", "block", "deferred"]
    folder = tmp_path / "exports" / ("" if name == "default" else name) / "users-cleanup"
    assert ran["result"]["plan"].startswith(str(folder / ""))
    path.write_text(path.read_text().replace(f'rules = ["unverified {DAYS} block"]', 'rules = ["unverified soon block"]'))
    result = local_runner("run-job", "users-cleanup", "--json", extra_env=extra, timeout=120)
    assert result.returncode == 2  # judged when the tenants file is read: no run is recorded (tests/test_tenant_job_tables.py)
    assert result.stderr == (f"runner: RUNNER_TENANTS_FILE: {path}, [tenants.{name}.jobs.users-cleanup]: "
                             "rules: 'unverified soon block': soon is not a number of days (1 or more)\n")
    assert [r["id"] for r in json.loads(local_runner("history", "--json", extra_env=extra).stdout)] == [ran["id"]]


@SQLITE_ONLY
def test_blocked_days_delete_deletes_only_whom_this_job_blocked_that_long_ago(runner, apply_tenant, env):
    from sqlalchemy import update

    from batchrunner.store.database import open_database
    from batchrunner.store.schema import user_actions

    blocked = sorted(u for u, a in expected_actions(apply_tenant).items() if a == "block")
    result, _ = run(runner, "--param", "apply=true", rules=f'inactive {DAYS} block; connections = ["acme-saml"]; max_fraction = 1')
    assert result.returncode == 0, result.stderr
    rules = "blocked 30 delete; max_fraction = 1"
    result, soon = run(runner, "--param", "apply=true", rules=rules)
    assert result.returncode == 0 and soon["result"]["selected"] == 0  # blocked today: not 30 days ago
    db = open_database(env["RUNNER_DATABASE_URL"])
    with db.write() as conn:  # blocked 31 days ago, the first two of them
        conn.execute(update(user_actions).where(user_actions.c.user_id.in_(blocked[:2]))
                     .values(finished_at=datetime.now(timezone.utc) - timedelta(days=31)))
    before = len(sent_writes(apply_tenant))
    result, ran = run(runner, "--param", "apply=true", rules=rules)
    assert result.returncode == 0, result.stderr
    assert sorted(sent_writes(apply_tenant)[before:]) == [("delete", u) for u in blocked[:2]]
    # The stand-in's users blocked by a person (every 23rd) were blocked long ago, but not by this job.
    assert user(apply_tenant.seed, 23)["blocked"] and ran["result"]["selected"] == 2
    assert sorted(c["user_id"] for c in copies(ran)) == blocked[:2]

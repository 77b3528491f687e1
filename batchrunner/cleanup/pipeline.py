"""A run of users-cleanup (README, "User maintenance: `users-cleanup`"): the policy, the scopes, the
ledger's unfinished rows resolved, the protected users, the bulk export read once, the plan, the
caps, and with `apply` the writes (apply.py), each guarded.

The plan is `{export_dir}/users-cleanup/{run start}/plan.csv`; nothing is written to Auth0 without `apply`.
"""

from __future__ import annotations

from functools import partial
from typing import Iterator

from batchrunner import clock
from batchrunner.auth0.asyncjobs import lines, wait
from batchrunner.auth0.lists import CHECKPOINT, OFFSET, Listing, items
from batchrunner.cleanup import apply as apply_
from batchrunner.cleanup import ledger
from batchrunner.cleanup import rules as rules_
from batchrunner.cleanup.selection import EXPORT_FIELDS, PLAN_HEADER, Choice, Known, Tally, select
from batchrunner.errors import ApiError, JobFailed, UsageError
from batchrunner.operating.notifications import notify
from batchrunner.outputs import last_seen
from batchrunner.outputs.atomic import prepare_export_dir
from batchrunner.outputs.writers import read_rows, write_rows
from batchrunner.store.schema import DEFAULT_TENANT

JOB = "users-cleanup"
WAIT_SECONDS = 6 * 3600  # as export-users: a tenant of millions exports within hours
ROLES = Listing("roles", "roles", OFFSET, ("read:roles",), unique="id")
ROLE_MEMBERS = Listing("roles/{id}/users", "users", CHECKPOINT, ("read:users", "read:roles", "read:role_members"))
ORGANIZATIONS = Listing("organizations", "organizations", CHECKPOINT, ("read:organizations",))
ORGANIZATION_MEMBERS = Listing("organizations/{id}/members", "members", CHECKPOINT, ("read:organization_members",))
GRANT_WHERE = "Dashboard > Applications > APIs > Auth0 Management API > Machine To Machine Applications"


def check(env, params) -> None:
    """Before a run is recorded (exit 2): the default tenant's rules and the run's params."""
    rules_.with_params(rules_.from_env(env), params)
    undo_run(params)


TABLE_KEYS = rules_.TABLE_KEYS  # a named tenant's keys beside schedule, timeout and params


def check_table(settings, where: str) -> None:
    """A named tenant's table (`[tenants.NAME.jobs.users-cleanup]`), judged when the tenants file is read
    (README, "Several tenants"): a malformed rule is exit 2 then, never a run failed at night."""
    rules_.with_params(rules_.from_table(settings.extra, where), settings.params, f"{where}: params")


def undo_run(params) -> int | None:
    """`undo=RUN_ID`: the run whose blocks to lift; None without it."""
    value = params.get("undo")
    if value is None:
        return None
    if not str(value).strip().isdigit():
        raise UsageError(f"--param undo: {value!r} is not a run id; give the number `runner history users-cleanup` shows")
    return int(value)


def policy_for(ctx) -> rules_.Policy:
    """A named tenant's policy from its table in the tenants file; `default`'s from
    RUNNER_USERS_CLEANUP_RULES, its table's keys over it (README, "User maintenance")."""
    tenant = ctx.tenant
    table = tenant.settings_for(JOB).extra if tenant is not None else {}
    where = f"[tenants.{tenant.name if tenant else DEFAULT_TENANT}.jobs.{JOB}]"
    if tenant is None or tenant.is_default:
        policy = rules_.for_default(ctx.settings.env, table, where)
    else:
        policy = rules_.from_table(table, where)
    return rules_.with_params(policy, ctx.params)


def run(ctx) -> dict:
    started = clock.monotonic()
    run_start = ctx.now()
    policy = policy_for(ctx)
    check_scopes(ctx.api, policy, ctx.params)  # before anything is created: a missing scope is a failed run, nothing started
    tenant = ctx.tenant.name if ctx.tenant else DEFAULT_TENANT
    counts = apply_.Counts()
    apply_.resolve(ctx, tenant, counts)  # what a killed run left, before anyone is selected anew
    folder = ctx.export_dir / JOB / f"{run_start:%Y%m%dT%H%M%SZ}"
    prepare_export_dir(folder, ctx.log)
    if undo_run(ctx.params) is not None:
        return undo(ctx, policy, tenant, undo_run(ctx.params), folder, counts, started)
    logins = login_events(ctx, tenant)
    known = Known(protected_users(ctx.api, policy),
                  ledger.blocked_at(ctx.db, tenant) if any(r.kind == "blocked" for r in policy.rules) else {}, logins)
    tally = Tally()
    plan = folder / "plan.csv"
    if policy.rules:
        users = export(ctx)
        write_rows(plan, PLAN_HEADER, planned_rows(select(users, policy, known, run_start, tally), policy.max_actions))
    else:
        ctx.log.info("no rules (RUNNER_USERS_CLEANUP_RULES or the tenant's rules): nobody is selected")
        write_rows(plan, PLAN_HEADER, [])
    planned = min(tally.selected, policy.max_actions)
    result = {"selected": tally.selected, "planned": planned, "done": 0, "skipped": 0, "failed": 0,
              "deferred": tally.selected - planned, "applied": policy.apply, "plan": str(plan), "users": tally.users,
              "protected": tally.protected, "resolved": counts.resolved,
              "last_seen_from": "last_login, login events" if logins else "last_login",
              "kept_by_login_events": tally.kept_by_login_events}
    limit = policy.max_fraction * tally.users
    if tally.selected > limit:
        result["planned"], result["deferred"], result["seconds"] = 0, tally.selected, round(clock.monotonic() - started, 3)
        raise JobFailed(f"the rules select {tally.selected:,} of {tally.users:,} users, more than max_fraction "
                        f"{policy.max_fraction:g} ({int(limit):,}): nobody is touched; check the rules and the "
                        f"export (the selection is in {plan})", result)
    text = (f"{JOB} plan: {tally.selected:,} of {tally.users:,} users selected, {planned:,} planned, "
            f"{result['deferred']:,} deferred to later runs, {tally.protected:,} protected"
            + (f", {tally.kept_by_login_events:,} kept by login events" if logins else ""))
    if not policy.apply:
        text += "; nothing written to Auth0 (dry run)"
        ctx.log.info("%s; see %s", text, plan)
        notify(ctx, "plan", text, changes=_summary(result))
        return {**result, "seconds": round(clock.monotonic() - started, 3)}
    ctx.log.info("%s; applying it", text)
    # A run that stops leaves the rest to the next run, as deferred users are.
    apply_.act_all(ctx, tenant, policy, known, ((row["user_id"], row["rule"], row["action"]) for row in read_rows(plan)
                                                if row["action"] in ("block", "delete")), folder, counts)
    result.update(done=counts.done, skipped=counts.skipped, failed=counts.failed)
    result["deferred"] = tally.selected - counts.done - counts.skipped - counts.failed
    text = (f"{JOB}: {counts.done:,} done, {counts.skipped:,} skipped (no longer matching), {counts.failed:,} failed, "
            f"{result['deferred']:,} deferred; the plan: {plan}")
    ctx.log.info("%s", text)
    notify(ctx, "actions", text, changes=_summary(result))
    if counts.failed:
        raise JobFailed(f"{counts.failed:,} of the planned users' writes failed (the ledger and the log name them); "
                        f"{counts.done:,} done", {**result, "seconds": round(clock.monotonic() - started, 3)})
    return {**result, "seconds": round(clock.monotonic() - started, 3)}


def _summary(result: dict) -> dict:
    return {k: result[k] for k in ("selected", "planned", "done", "skipped", "failed", "deferred", "applied", "plan")}


def login_events(ctx, tenant: str):
    """How to look up users' login events: where export-logs keeps them for the tenant in this
    database (it has run for it), else None, and the log says last seen is `last_login` alone."""
    kept = last_seen.kept(ctx.db, tenant)
    if kept is None:
        ctx.log.info("last seen is last_login alone: export-logs keeps no login events of tenant %s in this database "
                     "(run it, with scope read:logs, to count silent authentication and refresh tokens as seen)", tenant)
        return None
    ctx.log.info("last seen is the later of last_login and the log archive's login events (its newest event: %s)",
                 kept.get("newest_event_at") or "none yet")
    return partial(last_seen.lookup, ctx.db, tenant)


def planned_rows(choices: Iterator[Choice], max_actions: int) -> Iterator[tuple[str, ...]]:
    """The plan's rows as selected: the first max_actions carry their action, the rest `deferred`."""
    for number, choice in enumerate(choices):
        yield choice.row(choice.rule.action if number < max_actions else "deferred")


def needed_scopes(policy: rules_.Policy, params=None) -> list[tuple[str, ...]]:
    """Each a group of scopes of which the token needs one."""
    needed = [("read:users",)]
    if undo_run(params or {}) is not None:  # an undo unblocks, whatever the rules say
        return needed + [("update:users",)] if policy.apply else needed
    if policy.apply and "block" in policy.actions():
        needed.append(("update:users",))
    if policy.apply and "delete" in policy.actions():
        needed.append(("delete:users",))
    if policy.protect_organizations:
        needed += [ORGANIZATIONS.scopes, ORGANIZATION_MEMBERS.scopes]
    if policy.protect_roles:
        needed.append(ROLES.scopes)
    return needed


def check_scopes(api, policy: rules_.Policy, params=None) -> None:
    held = set(api.tokens.token().scope.split())
    missing = [group for group in needed_scopes(policy, params) if not held & set(group)]
    if missing:
        names = ", ".join(" or ".join(group) for group in missing)
        raise ApiError(f"the token lacks {names}, which {JOB}'s rules need; grant it to application "
                       f"{api.client_id} ({GRANT_WHERE}); nothing was started")


def protected_users(api, policy: rules_.Policy) -> set[str]:
    """The user_ids of the protected roles' and organizations' members, fetched once. A name the
    tenant does not have fails the run: a misspelt protection must not protect nobody."""
    protected: set[str] = set()
    for names, listing, members in ((policy.protect_roles, ROLES, ROLE_MEMBERS),
                                    (policy.protect_organizations, ORGANIZATIONS, ORGANIZATION_MEMBERS)):
        if not names:
            continue
        found = {item.get("name"): item["id"] for item in items(api, listing) if item.get("name") in names}
        unknown = [name for name in names if name not in found]
        if unknown:
            kind = "role" if listing is ROLES else "organization"
            raise JobFailed(f"protect_{kind}s names {unknown[0]!r}, which is no {kind} of the tenant: nobody was touched; "
                            f"correct the name")
        for name in names:
            protected.update(member["user_id"] for member in items(api, members, id=found[name]) if "user_id" in member)
    return protected


def export(ctx) -> Iterator[dict]:
    """Every user, through the bulk export (never /users search, which stops at 1,000), streamed."""
    body = {"format": "json", "fields": [{"name": name, "export_as": name.replace("identities[0].", "")}
                                         for name in EXPORT_FIELDS]}
    job_id = ctx.api.post("jobs/users-exports", body)["id"]
    ctx.log.info("Auth0 export job %s created; waiting for it", job_id)
    done = wait(ctx.api, job_id, clock.monotonic() + WAIT_SECONDS, ctx.stopping)
    return lines(done, refresh=lambda: ctx.api.get(f"jobs/{job_id}"), settings=ctx.settings)


def undo(ctx, policy: rules_.Policy, tenant: str, run_id: int, folder, counts, started: float) -> dict:
    """Unblock the users run `run_id` blocked (its `done` blocks in the ledger) that are still blocked:
    planned in plan.csv, written only with apply, at most max_actions, each re-read first."""
    blocked = ledger.of_run(ctx.db, tenant, run_id, "block")
    plan = folder / "plan.csv"
    rule = f"undo {run_id}"
    write_rows(plan, PLAN_HEADER, ((row.user_id, "", "", rule, "", "", "", "unblock" if n < policy.max_actions else "deferred")
                                   for n, row in enumerate(blocked)))
    planned = min(len(blocked), policy.max_actions)
    result = {"selected": len(blocked), "planned": planned, "done": 0, "skipped": 0, "failed": 0,
              "deferred": len(blocked) - planned, "applied": policy.apply, "plan": str(plan), "resolved": counts.resolved}
    if policy.apply:
        apply_.act_all(ctx, tenant, policy, Known(set(), {}), ((row.user_id, rule, "unblock") for row in blocked[:planned]),
                       folder, counts)
        result.update(done=counts.done, skipped=counts.skipped, failed=counts.failed,
                      deferred=len(blocked) - counts.done - counts.skipped - counts.failed)
    text = (f"{JOB} undo of run {run_id}: {len(blocked):,} users it blocked, {planned:,} planned, "
            f"{result['done']:,} unblocked, {result['skipped']:,} skipped (no longer blocked)"
            + ("" if policy.apply else "; nothing written to Auth0 (dry run)"))
    ctx.log.info("%s; see %s", text, plan)
    notify(ctx, "actions" if policy.apply else "plan", text, changes=_summary(result))
    if counts.failed:
        raise JobFailed(f"{counts.failed:,} of the unblocks failed (the ledger and the log name them); {counts.done:,} done",
                        {**result, "seconds": round(clock.monotonic() - started, 3)})
    return {**result, "seconds": round(clock.monotonic() - started, 3)}

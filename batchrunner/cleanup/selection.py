"""Which users a users-cleanup policy selects, one exported user at a time (README, "User maintenance").

The bulk export's lines are read once, in order, and each is judged alone: memory stays flat
whatever the tenant's size. The protected roles' and organizations' members are fetched once
before (the export holds no roles), bounded by those groups' sizes.

Last seen is the later of `last_login` and the user's newest login event in the log archive, where
export-logs keeps it (outputs/last_seen.py). Only the users `last_login` alone would select are
looked up, 500 at a time (one query each), and judged again: a bounded batch, never the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable, Iterator, Mapping

from batchrunner import clock
from batchrunner.cleanup.rules import Policy, Rule
from batchrunner.outputs.last_seen import CHUNK, Seen

# What the job asks the bulk export for (Auth0's field names, exported as the same names).
EXPORT_FIELDS = ("user_id", "email", "email_verified", "identities[0].connection", "created_at", "last_login",
                 "blocked", "app_metadata")
PLAN_HEADER = ("user_id", "email", "connection", "rule", "last_seen", "seen_by", "created_at", "action")


@dataclass(frozen=True)
class Choice:
    user: dict
    rule: Rule
    last_seen: str  # ISO 8601, or "" for a user who never logged in
    seen_by: str = ""  # what last_seen is: `last_login`, or `log:TYPE` (a login event of the archive)

    def row(self, action: str) -> tuple[str, ...]:
        u = self.user
        return (u.get("user_id", ""), u.get("email") or "", connection(u), str(self.rule), self.last_seen,
                self.seen_by, u.get("created_at") or "", action)


@dataclass(frozen=True)
class Known:
    """What the run learnt before the export: the protected groups' members, and when this job
    blocked each user it holds blocked (its ledger: `blocked DAYS delete` deletes only those)."""

    protected: set[str]
    blocked_at: Mapping[str, datetime]
    # The newest login event of each of some users (last_seen.lookup); None where export-logs keeps none.
    logins: Callable[[list[str]], Mapping[str, Seen]] | None = None


@dataclass
class Tally:
    users: int = 0  # every user exported
    selected: int = 0
    protected: int = 0  # matched a rule, left alone by an exclusion
    kept_by_login_events: int = 0  # matched by last_login alone, not by the later login event the archive holds


def connection(user: dict) -> str:
    return str(user.get("identities[0].connection") or user.get("connection") or "")


def select(users: Iterable[dict], policy: Policy, known: Known, now: datetime, tally: Tally) -> Iterator[Choice]:
    """The users a rule matches and no exclusion protects, in the export's order; `tally` counts as it goes."""
    wanted = set(policy.connections)
    waiting: list[Choice] = []
    for user in users:
        tally.users += 1
        if wanted and connection(user) not in wanted:
            continue
        choice = match(user, policy.rules, now, known.blocked_at)
        if choice is None:
            continue
        waiting.append(choice)
        if len(waiting) == CHUNK:
            yield from _settle(waiting, policy, known, now, tally)
            waiting = []
    yield from _settle(waiting, policy, known, now, tally)


def _settle(choices: list[Choice], policy: Policy, known: Known, now: datetime, tally: Tally) -> Iterator[Choice]:
    """A batch of users matched by `last_login`, judged again with their login events, then the exclusions."""
    events = known.logins([c.user.get("user_id") for c in choices]) if known.logins and choices else {}
    for choice in choices:
        user = choice.user
        event = events.get(user.get("user_id"))
        if event is not None:
            choice = match(user, policy.rules, now, known.blocked_at, event)
            if choice is None:
                tally.kept_by_login_events += 1
                continue
        if user.get("user_id") in known.protected or protected_by_metadata(user, policy.protect_app_metadata):
            tally.protected += 1
            continue
        tally.selected += 1
        yield choice


def match(user: dict, rules: Iterable[Rule], now: datetime, blocked_at: Mapping[str, datetime],
          event: Seen | None = None) -> Choice | None:
    """The first rule that holds for the user; a block of a user already blocked holds nothing to do.
    `blocked_at`: when this job blocked the users it holds blocked (a person's blocks are not its own);
    `event`: the user's newest login event in the log archive, last seen when later than `last_login`."""
    created = clock.parse(user.get("created_at"))
    seen, shown, seen_by = clock.parse(user.get("last_login")), user.get("last_login") or "", "last_login"
    if event is not None and (seen is None or event.at > seen):
        seen, shown, seen_by = event.at, event.iso(), f"log:{event.log_type}"
    seen_by = seen_by if shown else ""
    blocked = user.get("blocked") is True
    for rule in rules:
        if rule.action == "block" and blocked:
            continue
        since = now - timedelta(days=rule.days)
        if rule.kind == "inactive" and (seen or created) is not None and (seen or created) < since:
            return Choice(user, rule, shown, seen_by)
        if rule.kind == "unverified" and user.get("email_verified") is False and created is not None and created < since:
            return Choice(user, rule, shown, seen_by)
        ours = blocked_at.get(user.get("user_id"))
        if rule.kind == "blocked" and blocked and ours is not None and ours < since:
            return Choice(user, rule, shown, seen_by)
    return None


def protected_by_metadata(user: dict, flags: tuple[str, ...]) -> bool:
    metadata = user.get("app_metadata")
    return isinstance(metadata, dict) and any(metadata.get(flag) is True for flag in flags)


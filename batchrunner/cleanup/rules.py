"""users-cleanup's rules and settings (README, "User maintenance: `users-cleanup`").

For the default tenant they come from RUNNER_USERS_CLEANUP_RULES, clauses separated by `;`, each a
rule (`inactive 365 block`) or a `NAME = VALUE` setting whose value is TOML
(`protect_roles = ["admins"]`); for a named tenant from `[tenants.NAME.jobs.users-cleanup]`:
`rules = ["inactive 365 block", ...]` and the settings as keys (for a tenant named `default` in
the file too, its table's keys over the variable's, key by key). Run params (`apply`, `max_actions`)
override the settings. Every malformed clause is one line naming it (exit 2).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from typing import Any, Mapping

from batchrunner.errors import ConfigError

VARIABLE = "RUNNER_USERS_CLEANUP_RULES"
KINDS = {"inactive": ("block", "delete"), "unverified": ("block", "delete"), "blocked": ("delete",)}
LISTS = ("connections", "protect_roles", "protect_organizations", "protect_app_metadata")
SETTINGS = (*LISTS, "max_actions", "max_fraction", "apply")
TABLE_KEYS = ("rules", *SETTINGS)  # a named tenant's [tenants.NAME.jobs.users-cleanup] keys beside schedule, timeout, params
EXAMPLE = '"inactive 365 block", "unverified 30 delete" or NAME = VALUE (e.g. protect_roles = ["admins"])'


@dataclass(frozen=True)
class Rule:
    kind: str  # inactive, unverified, blocked
    days: int
    action: str  # block, delete

    def __str__(self) -> str:
        return f"{self.kind} {self.days} {self.action}"


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    connections: tuple[str, ...] = ()  # empty: every connection
    protect_roles: tuple[str, ...] = ()
    protect_organizations: tuple[str, ...] = ()
    protect_app_metadata: tuple[str, ...] = ()
    max_actions: int = 100
    max_fraction: float = 0.05
    apply: bool = False

    def actions(self) -> set[str]:
        return {rule.action for rule in self.rules}


def from_env(env: Mapping[str, str]) -> Policy:
    """The default tenant's policy from RUNNER_USERS_CLEANUP_RULES (no rules: a run selects nobody)."""
    text = env.get(VARIABLE) or ""
    rules, settings = [], {}
    for clause in (c.strip() for c in text.split(";")):
        if not clause:
            continue
        if "=" in clause:
            name, _, value = (part.strip() for part in clause.partition("="))
            settings[name] = _toml_value(name, value, clause)
        else:
            rules.append(parse_rule(clause, VARIABLE))
    return _policy(rules, settings, VARIABLE)


def from_table(table: Mapping[str, Any], where: str) -> Policy:
    """A named tenant's policy from its `[tenants.NAME.jobs.users-cleanup]` keys; `where` names that table."""
    rules = table.get("rules", [])
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise ConfigError(where, 'rules is a list of rules, e.g. rules = ["inactive 365 block", "unverified 30 delete"]')
    settings = {k: v for k, v in table.items() if k != "rules"}
    return _policy([parse_rule(r, f"{where}: rules") for r in rules], settings, where)


def for_default(env: Mapping[str, str], table: Mapping[str, Any], where: str) -> Policy:
    """The tenant `default`'s policy: RUNNER_USERS_CLEANUP_RULES, with the keys of its table in the
    tenants file (when the file names it) over the variable's key by key, `rules` as a whole: a
    table that gives only `rules` keeps the variable's `protect_roles`."""
    policy = from_env(env)
    if not table:
        return policy
    given = from_table(table, where)
    return replace(policy, **{name: getattr(given, name) for name in table})


def with_params(policy: Policy, params: Mapping[str, str], where: str = "--param") -> Policy:
    """The run's params (`apply=true`, `max_actions=N`) over the settings."""
    changes: dict[str, Any] = {}
    if "apply" in params:
        changes["apply"] = _flag(params["apply"], f"{where} apply")
    if "max_actions" in params:
        changes["max_actions"] = _count(params["max_actions"], f"{where} max_actions")
    return replace(policy, **changes)


def parse_rule(clause: str, where: str) -> Rule:
    words = clause.split()
    if len(words) == 3 and words[0] in KINDS:
        kind, days, action = words
        if not days.isdigit() or int(days) < 1:
            raise ConfigError(where, f"{clause!r}: {days} is not a number of days (1 or more)")
        if action not in KINDS[kind]:
            raise ConfigError(where, f"{clause!r}: {kind} takes {' or '.join(KINDS[kind])}, not {action}")
        return Rule(kind, int(days), action)
    raise ConfigError(where, f"{clause!r} is neither a rule nor a setting; give e.g. {EXAMPLE}")


def _policy(rules: list[Rule], settings: dict[str, Any], where: str) -> Policy:
    values: dict[str, Any] = {"rules": tuple(rules)}
    for name, value in settings.items():
        if name not in SETTINGS:
            raise ConfigError(where, f"{name} is not a setting of users-cleanup; its settings: {', '.join(SETTINGS)}")
        if name in LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(where, f'{name} is a list of names, e.g. {name} = ["{_sample(name)}"]')
            values[name] = tuple(value)
        elif name == "max_actions":
            values[name] = _count(value, f"{where}: max_actions")
        elif name == "max_fraction":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ConfigError(where, f"max_fraction {value!r} is not a fraction of all users above 0 and at most 1, e.g. 0.05")
            values[name] = float(value)
        else:
            values[name] = _flag(value, f"{where}: apply")
    kinds = [rule.kind for rule in rules]
    twice = next((k for k in kinds if kinds.count(k) > 1), None)
    if twice:
        raise ConfigError(where, f"two {twice} rules; give each kind of rule once")
    return Policy(**values)


def _toml_value(name: str, value: str, clause: str):
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(VARIABLE, f"{clause!r}: the value of {name or 'a setting'} is not TOML; "
                                    f'give e.g. protect_roles = ["admins"] or max_actions = 50') from None


def _count(value, where: str) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise ConfigError(where, f"{value!r} is not a number of users (1 or more)")
    return int(text)


def _flag(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ConfigError(where, f"{value!r} is neither true nor false")
    return text == "true"


def _sample(name: str) -> str:
    return {"connections": "Username-Password-Authentication", "protect_roles": "admins",
            "protect_organizations": "acme", "protect_app_metadata": "keep"}[name]

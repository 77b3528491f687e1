"""users-cleanup's rules and settings (README, "User maintenance: `users-cleanup`"): what a clause
means, and the one line a malformed one gets (exit 2, before a run is recorded)."""

from __future__ import annotations

import pytest

from batchrunner.cleanup import rules
from batchrunner.cleanup.rules import Policy, Rule
from batchrunner.errors import ConfigError

V = "RUNNER_USERS_CLEANUP_RULES"


def test_the_readmes_example_is_read_whole():
    policy = rules.from_env({V: 'inactive 365 block; unverified 30 delete; protect_roles = ["admins"]; protect_app_metadata = ["keep"]'})
    assert policy == Policy(rules=(Rule("inactive", 365, "block"), Rule("unverified", 30, "delete")),
                            protect_roles=("admins",), protect_app_metadata=("keep",))
    assert (policy.max_actions, policy.max_fraction, policy.apply) == (100, 0.05, False)


def test_every_setting_is_read():
    policy = rules.from_env({V: 'blocked 90 delete; connections = ["Username-Password-Authentication"]; '
                                'protect_organizations = ["acme"]; max_actions = 20; max_fraction = 0.5; apply = false;'})
    assert policy.rules == (Rule("blocked", 90, "delete"),)
    assert (policy.connections, policy.protect_organizations, policy.max_actions, policy.max_fraction) == (
        ("Username-Password-Authentication",), ("acme",), 20, 0.5)


def test_no_variable_is_no_rule():
    assert rules.from_env({}) == Policy()


@pytest.mark.parametrize("text, line", [
    ("inactive 365 archive", f"{V}: 'inactive 365 archive': inactive takes block or delete, not archive"),
    ("blocked 30 block", f"{V}: 'blocked 30 block': blocked takes delete, not block"),
    ("inactive a-year block", f"{V}: 'inactive a-year block': a-year is not a number of days (1 or more)"),
    ("inactive 0 block", f"{V}: 'inactive 0 block': 0 is not a number of days (1 or more)"),
    ("inactive 365 block; dormant 30 block", f"{V}: 'dormant 30 block' is neither a rule nor a setting; give e.g. "
     + rules.EXAMPLE),
    ("protect_roles = admins", f"{V}: 'protect_roles = admins': the value of protect_roles is not TOML; "
     'give e.g. protect_roles = ["admins"] or max_actions = 50'),
    ('protect_role = ["admins"]', f"{V}: protect_role is not a setting of users-cleanup; its settings: "
     "connections, protect_roles, protect_organizations, protect_app_metadata, max_actions, max_fraction, apply"),
    ('protect_roles = "admins"', f'{V}: protect_roles is a list of names, e.g. protect_roles = ["admins"]'),
    ("max_actions = 0", f"{V}: max_actions: 0 is not a number of users (1 or more)"),
    ("max_fraction = 5", f"{V}: max_fraction 5 is not a fraction of all users above 0 and at most 1, e.g. 0.05"),
    ("inactive 30 block; inactive 60 delete", f"{V}: two inactive rules; give each kind of rule once"),
])
def test_a_malformed_clause_is_one_line_naming_it(text, line):
    with pytest.raises(ConfigError) as raised:
        rules.from_env({V: text})
    assert raised.value.message() == line and raised.value.exit_code == 2


def test_a_tenants_table_holds_the_same():
    where = "[tenants.prod.jobs.users-cleanup]"
    policy = rules.from_table({"rules": ["inactive 365 block"], "protect_roles": ["admins"], "max_actions": 5}, where)
    assert policy == Policy(rules=(Rule("inactive", 365, "block"),), protect_roles=("admins",), max_actions=5)
    with pytest.raises(ConfigError) as raised:
        rules.from_table({"rules": "inactive 365 block"}, where)
    assert raised.value.message() == (f'{where}: rules is a list of rules, e.g. rules = ["inactive 365 block", "unverified 30 delete"]')
    with pytest.raises(ConfigError) as raised:
        rules.from_table({"rules": ["inactive soon block"]}, where)
    assert raised.value.message() == f"{where}: rules: 'inactive soon block': soon is not a number of days (1 or more)"


def test_params_override_the_settings():
    policy = rules.with_params(rules.from_env({V: "inactive 365 block; max_actions = 5"}), {"max_actions": "7", "apply": "true"})
    assert (policy.max_actions, policy.apply) == (7, True)
    with pytest.raises(ConfigError) as raised:
        rules.with_params(Policy(), {"max_actions": "many"})
    assert raised.value.message() == "--param max_actions: 'many' is not a number of users (1 or more)"
    with pytest.raises(ConfigError) as raised:
        rules.with_params(Policy(), {"apply": "yes"})
    assert raised.value.message() == "--param apply: 'yes' is neither true nor false"


def test_the_default_tenants_table_wins_over_the_variable_key_by_key():
    """A `default` named in the tenants file: its table replaced the variable whole, so a table of
    rules alone dropped the variable's protect_roles (or was ignored, before that)."""
    env = {"RUNNER_USERS_CLEANUP_RULES": 'inactive 30 delete; protect_roles = ["admins"]; max_actions = 5'}
    where = "[tenants.default.jobs.users-cleanup]"
    policy = rules.for_default(env, {"rules": ["unverified 10 block"], "max_actions": 7}, where)
    assert [(r.kind, r.days, r.action) for r in policy.rules] == [("unverified", 10, "block")]
    assert (policy.protect_roles, policy.max_actions) == (("admins",), 7)
    assert rules.for_default(env, {"max_fraction": 1}, where).rules == rules.from_env(env).rules
    assert rules.for_default(env, {}, where) == rules.from_env(env)
    with pytest.raises(ConfigError, match="max_fraction 2 is not a fraction"):
        rules.for_default(env, {"max_fraction": 2}, where)

"""How big the stand-in tenant is. The defaults keep the test suite fast; `runner sandbox` and the
benchmarks ask for more."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Sizes:
    users: int = 200               # the people role and organization members are drawn from
    roles: int = 5
    role_members: int = 12         # members of each role but the first
    big_role_members: int = 150    # members of the first role, "support-agents"
    organizations: int = 3
    org_members: int = 10          # members of each organization but the first
    big_org_members: int = 60      # members of the first organization
    custom_apis: int = 2           # resource servers beside the Management API
    grants_per_m2m: int = 2        # grants of each machine-to-machine application (Management API first)
    log_events: int = 200          # log events held at start, spread over the last hours
    log_retention_days: float = 1  # Auth0 Free keeps 1 day; Essentials 5, Professional 10, Enterprise 30
    export_users: int = 300        # users in a bulk export (the same people, numbered from 0)

    def __post_init__(self):
        # Members are drawn from the users, so there must be enough of them.
        self.users = max(self.users, self.big_role_members, self.role_members, self.big_org_members, self.org_members)

"""Which of Auth0's rate-limit buckets a Management API request draws from (README, "Write your own job").

Free and Enterprise tenants have one global bucket for every endpoint: one pacer per tenant.
Essentials, Professional and B2B tenants have no global bucket but one per endpoint family
(Read Clients 100/min, Read Logs 100/min, Read Connections and Read Organizations 50/min, Read
Organization Members 500/min, Read Users 500/min, Write Users and Delete Users 200/min, all other endpoints combined 150/min; sources:
Auth0's "Rate limit configurations", research/auth0-jobs.md section 2). With
RUNNER_RATE_LIMITS=endpoint each family gets a pacer of its own, which learns its bucket from the
same headers, so a snapshot reads organizations at their 50/min while roles go at 150/min.
"""

from __future__ import annotations

MODES = ("global", "endpoint")
GLOBAL = "global"
OTHER = "other endpoints"


def of(method: str, path: str, mode: str) -> str:
    """The bucket a request to /api/v2/`path` draws from, under `mode`."""
    if mode != "endpoint":
        return GLOBAL
    if method != "GET":
        users = path.split("?")[0].strip("/").split("/")[0] == "users"
        return ("delete users" if method == "DELETE" else "write users") if users else OTHER
    parts = [p for p in path.split("?")[0].strip("/").split("/") if p]
    first = parts[0] if parts else ""
    if first == "organizations":
        return "read organization members" if len(parts) >= 3 and parts[2] == "members" else "read organizations"
    if first in ("clients", "logs", "connections", "users"):
        return f"read {first}"
    return OTHER

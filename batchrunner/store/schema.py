"""The runner's tables. Alembic (migrations/) creates and changes them; nothing else does.

Times are stored as naive UTC and returned aware, on every backend, by `UtcDateTime`.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UtcDateTime(TypeDecorator):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware UTC time")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


class RunStatus(str, enum.Enum):
    """Values are the strings stored, printed and sent as JSON."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    ABANDONED = "abandoned"


# The statuses of a run that has ended, whatever its end: "the latest run" of checks, metrics and notifications.
FINISHED = (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value, RunStatus.ABANDONED.value)


class Trigger(str, enum.Enum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    CATCH_UP = "catch-up"


DEFAULT_TENANT = "default"  # the AUTH0_* tenant, and every row written before there were tenants (0008_tenants.py)


def tenant_column(primary_key: bool = False) -> Column:
    """A run's, a checkpoint's or a pruned count's tenant, by name (tenants.py). The token cache, the
    ledger and the rate-limit memory say `tenant` for the tenant's base URL instead: a token and a rate
    limit belong to the Auth0 tenant behind a name, whichever name reaches it (README, "Several tenants")."""
    return Column("tenant", String(64), primary_key=primary_key, nullable=False, server_default=DEFAULT_TENANT)


token_cache = Table(
    "token_cache",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(255), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("audience", String(512), nullable=False),
    Column("access_token", Text),
    Column("token_type", String(32)),
    Column("scope", Text),
    Column("issued_at", UtcDateTime),
    Column("expires_at", UtcDateTime),
    # A slow salted hash of the client secret the token was issued for, never the secret (fingerprint.py).
    Column("secret_hash", String(255)),
    # The single-flight lease: who is asking Auth0 for a token right now, and until when
    # the others wait for them (README, "Tokens").
    Column("lease_owner", String(64)),
    Column("lease_host", String(255)),
    Column("lease_node", String(64)),  # process.NODE: where lease_pid means something
    Column("lease_pid", Integer),
    Column("lease_pid_started", BigInteger),  # process.started(): tells the holder from a later process given its pid
    Column("lease_expires_at", UtcDateTime),  # the database's clock (db.database_time), never a host's
    UniqueConstraint("tenant", "client_id", "audience", name="uq_token_cache_key"),
)

token_issuances = Table(
    "token_issuances",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("tenant", String(255), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("audience", String(512), nullable=False),
    Column("scope", Text),
    Column("requested_by", String(255), nullable=False),
    Column("run_id", Integer),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Index("ix_token_issuances_issued_at", "issued_at"),
)

# Partial unique indexes carry their condition for each backend. SQLite's is given here; naming
# PostgreSQL's here too would make SQLAlchemy import its whole PostgreSQL dialect (the asyncpg,
# pg8000 and psycopg modules, some 35 ms) before the first request of every run on SQLite as well
# (README, "Development"), so `add_postgresql_options` adds it when a PostgreSQL database is opened
# (db.py), which loads that dialect anyway. The migrations name both (0001_initial.py).
_PARTIAL_WHERE: dict[str, str] = {}


def _partial_unique(name: str, *columns: str, where: str) -> Index:
    _PARTIAL_WHERE[name] = where
    return Index(name, *columns, unique=True, sqlite_where=text(where))


def add_postgresql_options() -> None:
    """Give the partial indexes their PostgreSQL condition (idempotent)."""
    for table in metadata.tables.values():
        for index in table.indexes:
            if index.name in _PARTIAL_WHERE:
                index.dialect_kwargs["postgresql_where"] = text(_PARTIAL_WHERE[index.name])


runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job", String(255), nullable=False),
    tenant_column(),
    Column("trigger", String(16), nullable=False),
    Column("scheduled_for", UtcDateTime),
    Column("status", String(16), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("heartbeat_at", UtcDateTime),  # the database's clock (db.database_time), never a host's
    Column("host", String(255), nullable=False),
    Column("node", String(64)),  # process.NODE: where pid means something
    Column("pid", Integer, nullable=False),
    Column("pid_started", BigInteger),  # process.started(): tells the run's process from a later one given its pid
    Column("params", Text),
    Column("error", Text),
    Column("result", Text),
    # Each fire time of a (job, tenant) is claimed by one live run, whichever replica or process gets
    # there first; an abandoned run gives up its claim so that its fire time can be run once more.
    _partial_unique("uq_runs_job_scheduled_for", "job", "tenant", "scheduled_for",
                    where="status != 'abandoned' AND scheduled_for IS NOT NULL"),
    Index("ix_runs_job_started_at", "job", "started_at"),
    Index("ix_runs_status", "status"),
    # At most one running run per (job, tenant): the database itself refuses an overlap.
    _partial_unique("uq_runs_one_running_per_job", "job", "tenant", where="status = 'running'"),
)


# Operating it unattended (README, "Operating it unattended"; batchrunner/operating/retention.py and metrics.py).

# Runs removed by retention, counted per job and status, so that `runner_job_runs_total` stays a
# true counter: what is pruned from `runs` is added here in the same transaction.
pruned_runs = Table(
    "pruned_runs",
    metadata,
    tenant_column(primary_key=True),
    Column("job", String(255), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("count", Integer, nullable=False),
)

# Once-a-day chores that one replica of several does: the first to insert (task, day) does it.
maintenance = Table(
    "maintenance",
    metadata,
    Column("task", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("result", Text),
)

# What a job keeps from one run to the next (its checkpoint, say), as JSON, written in the same
# transactions that record what its outputs hold (batchrunner/outputs/job_state.py).
job_state = Table(
    "job_state",
    metadata,
    tenant_column(primary_key=True),
    Column("job", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("value", Text),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("run_id", Integer),
)

# What the pacers of the last process to end saw of each tenant's rate-limit buckets, so that a new
# process starts knowing them (ratelimits.py; pacing.Seen says what each column is).
rate_limit_buckets = Table(
    "rate_limit_buckets",
    metadata,
    Column("tenant", String(255), primary_key=True),
    Column("bucket", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("rate", Float, nullable=False),
    Column("round_trip", Float, nullable=False),
    Column("remaining", Float, nullable=False),
    Column("seen_at", Float, nullable=False),  # Unix seconds, the host's clock: a moment's skew costs nothing here
)

# users-cleanup's ledger: one row per action on a user, `planned` -> `sent` -> `done` / `skipped` /
# `failed` (cleanup/ledger.py; README, "User maintenance: `users-cleanup`").
user_actions = Table(
    "user_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    tenant_column(),
    Column("run_id", Integer, nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # block, delete, unblock
    Column("state", String(16), nullable=False),
    Column("planned_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("http_status", Integer),
    Column("detail", Text),  # why a row was skipped or failed, one line
    Index("ix_user_actions_tenant_state", "tenant", "state"),
    Index("ix_user_actions_tenant_run", "tenant", "run_id"),
)

# "Last seen" from the log archive: the newest successful login event (`s`, `ssa`, `sertft`) export-logs
# archived for each user, kept as it archives (outputs/last_seen.py) and read by users-cleanup
# (README, "User maintenance: `users-cleanup`", Last seen). `tenant` is the runner's name of the tenant.
last_seen = Table(
    "last_seen",
    metadata,
    tenant_column(primary_key=True),
    Column("user_id", String(255), primary_key=True),
    Column("seen_at", UtcDateTime, nullable=False),  # the event's `date`
    Column("log_type", String(16), nullable=False),
    Column("log_id", String(64), nullable=False),
)

"""Several tenants (README, "Several tenants"): runs, job state and pruned-run counts belong to a tenant
by name, and the two rules a run claims by (one run in progress, one run per fire time) hold per
(job, tenant). Every row written before is the tenant `default`'s: the AUTH0_* tenant goes on in place.

The token cache, the token ledger and the rate-limit memory keep their `tenant` column as it is: the
tenant's base URL, since a token and a rate limit belong to the Auth0 tenant behind a name.

Revision ID: 0008
Revises: 0007
"""
import warnings

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KEYED = {"job_state": ["tenant", "job", "name"], "pruned_runs": ["tenant", "job", "status"]}
RUNNING = "status = 'running'"
CLAIMED = "status != 'abandoned' AND scheduled_for IS NOT NULL"


def _tenant() -> sa.Column:
    return sa.Column("tenant", sa.String(64), nullable=False, server_default="default")


def _partial(name: str, columns: list[str], where: str) -> None:
    op.create_index(name, "runs", columns, unique=True, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    op.drop_index("uq_runs_job_scheduled_for", "runs")
    op.drop_index("uq_runs_one_running_per_job", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.add_column(_tenant())
    _partial("uq_runs_job_scheduled_for", ["job", "tenant", "scheduled_for"], CLAIMED)
    _partial("uq_runs_one_running_per_job", ["job", "tenant"], RUNNING)
    for table, key in KEYED.items():
        _rekey(table, key)


def _rekey(table: str, key: list[str]) -> None:
    """Add `tenant` to the table's primary key: in place on PostgreSQL, by a copy of the table on SQLite."""
    if op.get_bind().dialect.name == "postgresql":
        op.add_column(table, _tenant())
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, key)
        return
    with warnings.catch_warnings(), op.batch_alter_table(table, recreate="always") as batch:
        # SQLAlchemy warns that the copy's key is not the reflected one: that is the point of the copy.
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_", sa.exc.SAWarning)
        batch.add_column(_tenant())
        batch.create_primary_key(f"{table}_pkey", key)


def downgrade() -> None:
    bind = op.get_bind()
    for table in ("runs", *KEYED):
        if bind.execute(sa.text(f"SELECT 1 FROM {table} WHERE tenant != 'default'")).first():
            raise RuntimeError(f"{table} holds rows of tenants other than default; remove them before downgrading")
    for table, key in KEYED.items():
        old = [c for c in key if c != "tenant"]
        if bind.dialect.name == "postgresql":
            op.drop_constraint(f"{table}_pkey", table, type_="primary")
            op.drop_column(table, "tenant")
            op.create_primary_key(f"{table}_pkey", table, old)
        else:
            with warnings.catch_warnings(), op.batch_alter_table(table, recreate="always") as batch:
                warnings.filterwarnings("ignore", "Table '_alembic_tmp_", sa.exc.SAWarning)
                batch.drop_column("tenant")
                batch.create_primary_key(f"{table}_pkey", old)
    op.drop_index("uq_runs_job_scheduled_for", "runs")
    op.drop_index("uq_runs_one_running_per_job", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("tenant")
    _partial("uq_runs_job_scheduled_for", ["job", "scheduled_for"], CLAIMED)
    _partial("uq_runs_one_running_per_job", ["job"], RUNNING)

"""When the process behind a run's or a lease's pid started, so that a reused pid is not taken for it.

A pid names a process only together with its start time (/proc/PID/stat, field 22): after the
runner's process dies, the kernel may give its pid to another, and a run or lease must not stay
"alive" because of it. Rows written before this revision have none and are judged by the pid alone.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("pid_started", sa.BigInteger))
    with op.batch_alter_table("token_cache") as batch:
        batch.add_column(sa.Column("lease_pid_started", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("token_cache") as batch:
        batch.drop_column("lease_pid_started")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pid_started")

"""Where a pid means something (node), and an index for the scheduler's sweep.

A host name alone cannot tell whether a pid is gone: containers may share one without sharing
their pids, and a rebooted machine reuses pids. Rows written before this revision have no node
and are judged by their heartbeat or lease time alone.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("node", sa.String(64)))
    with op.batch_alter_table("token_cache") as batch:
        batch.add_column(sa.Column("lease_node", sa.String(64)))
    # The sweep looks for running and abandoned runs, a few among many finished ones.
    op.create_index("ix_runs_status", "runs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_runs_status", table_name="runs")
    with op.batch_alter_table("token_cache") as batch:
        batch.drop_column("lease_node")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("node")

"""Retention: counts of pruned runs (so runs_total never goes down) and the daily maintenance claim.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from batchrunner.store.schema import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pruned_runs",
        sa.Column("job", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "maintenance",
        sa.Column("task", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("result", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("maintenance")
    op.drop_table("pruned_runs")

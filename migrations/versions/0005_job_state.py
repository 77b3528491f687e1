"""Durable job state: a job's checkpoint and the like, beside its runs (README, "Write your own job").

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from batchrunner.store.schema import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_state",
        sa.Column("job", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("run_id", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("job_state")

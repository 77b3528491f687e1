"""Last seen from the log archive (README, "User maintenance: `users-cleanup`", Last seen): the newest
successful login event export-logs archived for each user of each tenant. Empty when made: the
first export-logs run after the upgrade fills it from the archive's files, once.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

from batchrunner.store.schema import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "last_seen",
        sa.Column("tenant", sa.String(64), primary_key=True, nullable=False, server_default="default"),
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("seen_at", UtcDateTime, nullable=False),
        sa.Column("log_type", sa.String(16), nullable=False),
        sa.Column("log_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("last_seen")

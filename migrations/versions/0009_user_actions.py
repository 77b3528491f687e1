"""users-cleanup's ledger (README, "User maintenance: `users-cleanup`"): one row per action on a user,
`planned` -> `sent` -> `done` / `skipped` / `failed`, so that a run killed at any instant repeats
nothing and loses nothing (the next run resolves the `sent` rows first).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

from batchrunner.store.schema import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("planned_at", UtcDateTime, nullable=False),
        sa.Column("sent_at", UtcDateTime),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("http_status", sa.Integer),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_user_actions_tenant_state", "user_actions", ["tenant", "state"])
    op.create_index("ix_user_actions_tenant_run", "user_actions", ["tenant", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_user_actions_tenant_run", "user_actions")
    op.drop_index("ix_user_actions_tenant_state", "user_actions")
    op.drop_table("user_actions")

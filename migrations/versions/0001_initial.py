"""The token cache, the issuance ledger and job runs.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from batchrunner.store.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_cache",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("audience", sa.String(512), nullable=False),
        sa.Column("access_token", sa.Text),
        sa.Column("token_type", sa.String(32)),
        sa.Column("scope", sa.Text),
        sa.Column("issued_at", UtcDateTime),
        sa.Column("expires_at", UtcDateTime),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_host", sa.String(255)),
        sa.Column("lease_pid", sa.Integer),
        sa.Column("lease_expires_at", UtcDateTime),
        sa.UniqueConstraint("tenant", "client_id", "audience", name="uq_token_cache_key"),
    )
    op.create_table(
        "token_issuances",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issued_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("audience", sa.String(512), nullable=False),
        sa.Column("scope", sa.Text),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("run_id", sa.Integer),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
    )
    op.create_index("ix_token_issuances_issued_at", "token_issuances", ["issued_at"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("scheduled_for", UtcDateTime),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("heartbeat_at", UtcDateTime),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("params", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("result", sa.Text),
    )
    op.create_index(
        "uq_runs_job_scheduled_for",
        "runs",
        ["job", "scheduled_for"],
        unique=True,
        sqlite_where=sa.text("status != 'abandoned' AND scheduled_for IS NOT NULL"),
        postgresql_where=sa.text("status != 'abandoned' AND scheduled_for IS NOT NULL"),
    )
    op.create_index("ix_runs_job_started_at", "runs", ["job", "started_at"])
    op.create_index(
        "uq_runs_one_running_per_job",
        "runs",
        ["job"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_table("runs")
    op.drop_table("token_issuances")
    op.drop_table("token_cache")

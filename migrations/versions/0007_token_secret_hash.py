"""A fingerprint of the client secret beside the cached token, so that a token is used only with the
secret it was issued for (README "Tokens"): a slow salted hash, never the secret (fingerprint.py).

A token cached before this revision has none: the first process after the upgrade asks for a new
one, which checks the secret as well.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("token_cache") as batch:
        batch.add_column(sa.Column("secret_hash", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("token_cache") as batch:
        batch.drop_column("secret_hash")

"""vault.api_keys.rejected_at: a key the provider rejected in use is inactive.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("rejected_at", sa.DateTime(timezone=True)), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("api_keys", "rejected_at", schema=SCHEMA)

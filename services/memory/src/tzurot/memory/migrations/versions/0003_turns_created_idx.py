"""memory.turns_created_idx: PruneHistory finds old turns by created_at alone.

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "memory"


def upgrade() -> None:
    op.create_index("turns_created_idx", "turns", ["created_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("turns_created_idx", table_name="turns", schema=SCHEMA)

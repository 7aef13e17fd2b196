"""Formation in fewer round trips: the outbox is leased (claimed_until, claimed_by) by one
statement instead of held in a transaction (`SELECT … FOR UPDATE SKIP LOCKED` kept open
while the batch was formed), and memories.source_turn_ids gets a GIN index so the
claim's "already formed?" check is an index probe per turn, not a scan of the scope.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "formation_outbox",
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        schema="memory",
    )
    op.add_column(
        "formation_outbox",
        sa.Column("claimed_by", postgresql.UUID(as_uuid=True), nullable=True),
        schema="memory",
    )
    op.create_index(
        "memories_source_turns_idx",
        "memories",
        ["source_turn_ids"],
        schema="memory",
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_index("memories_source_turns_idx", table_name="memories", schema="memory")
    op.drop_column("formation_outbox", "claimed_by", schema="memory")
    op.drop_column("formation_outbox", "claimed_until", schema="memory")

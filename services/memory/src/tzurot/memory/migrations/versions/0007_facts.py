"""Facts with supersession: memories.superseded_by (a fact replaced by a newer one that
contradicts it stays as history, never retrieved) and fact_outbox (exchanges waiting for
gateway to have their facts extracted).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "memories",
        sa.Column(
            "superseded_by",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("memory.memories.id", ondelete="SET NULL"),
            nullable=True,
        ),
        schema="memory",
    )
    op.add_column(
        "memories",
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        schema="memory",
    )
    op.create_table(
        "fact_outbox",
        sa.Column("job_id", sa.Text(), primary_key=True),
        sa.Column("personality_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        schema="memory",
    )
    op.create_index("fact_outbox_created_idx", "fact_outbox", ["created_at"], schema="memory")


def downgrade() -> None:
    op.drop_index("fact_outbox_created_idx", table_name="fact_outbox", schema="memory")
    op.drop_table("fact_outbox", schema="memory")
    op.drop_column("memories", "superseded_at", schema="memory")
    op.drop_column("memories", "superseded_by", schema="memory")

"""memories.context: the neighbouring turns of the turn a memory was formed from. Full text
(search_text) and the keyword scores read the memory with its context, so an answer ("Yes,
last week!") is found by the words of the question it answered; the prompt shows the text.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _search_text(expression: str) -> None:
    op.drop_index("memories_search_text_idx", table_name="memories", schema="memory")
    op.drop_column("memories", "search_text", schema="memory")
    op.add_column(
        "memories",
        sa.Column(
            "search_text",
            postgresql.TSVECTOR(),
            sa.Computed(expression, persisted=True),
            nullable=False,
        ),
        schema="memory",
    )
    op.create_index(
        "memories_search_text_idx",
        "memories",
        ["search_text"],
        schema="memory",
        postgresql_using="gin",
    )


def upgrade() -> None:
    op.add_column(
        "memories",
        sa.Column("context", sa.Text(), server_default="", nullable=False),
        schema="memory",
    )
    _search_text("to_tsvector('english', text || ' ' || context)")


def downgrade() -> None:
    _search_text("to_tsvector('english', text)")
    op.drop_column("memories", "context", schema="memory")

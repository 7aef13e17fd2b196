"""memories.tags: where a memory came from beyond a conversation (e.g. "lore_research",
findings a personality's web_research memorised).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "memories",
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        schema="memory",
    )


def downgrade() -> None:
    op.drop_column("memories", "tags", schema="memory")

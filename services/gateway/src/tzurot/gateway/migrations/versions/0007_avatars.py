"""avatars: a personality's image, kept by the project and served by the edge at
/avatars/{slug}.{ext} (Discord's attachment URLs are signed and expire).

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
    op.create_table(
        "avatars",
        sa.Column(
            "personality_id",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("core.personalities.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("slug", sa.Text(), nullable=False, unique=True),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        schema="core",
    )


def downgrade() -> None:
    op.drop_table("avatars", schema="core")

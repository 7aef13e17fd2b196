"""voice billing: a speech usage row is written when the provider accepts the text, marked
failed until the audio is whole (so what broke off after the charge stays recorded); a
personality's voice remembers who cloned it, so a newer clone by the same user deletes it
from their ElevenLabs account instead of leaving it to fill their plan's voice slots.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "usage_log",
        sa.Column("failed", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema="core",
    )
    op.add_column(
        "personality_voices",
        sa.Column(
            "cloned_by",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("core.users.id", ondelete="SET NULL"),
        ),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("personality_voices", "cloned_by", schema="core")
    op.drop_column("usage_log", "failed", schema="core")

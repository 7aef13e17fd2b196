"""voice: a personality's voice (1:1), samples for cloning it, characters in usage_log.

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

_UUID = postgresql.UUID(as_uuid=False)


def upgrade() -> None:
    op.create_table(
        "personality_voices",
        sa.Column(
            "personality_id",
            _UUID,
            sa.ForeignKey("core.personalities.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("voice_id", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False, server_default=""),
        sa.Column("stability", sa.Float()),
        sa.Column("similarity_boost", sa.Float()),
        sa.Column("style", sa.Float()),
        sa.Column("speed", sa.Float()),
        sa.Column("frequency", sa.Text(), nullable=False, server_default="always"),
        sa.Column("probability", sa.Float(), nullable=False, server_default="1"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "frequency in ('always', 'sometimes', 'on_request')",
            name="personality_voices_frequency_check",
        ),
        schema="core",
    )
    op.create_table(
        "voice_samples",
        sa.Column("id", _UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column(
            "personality_id",
            _UUID,
            sa.ForeignKey("core.personalities.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("uploaded_by", _UUID, sa.ForeignKey("core.users.id", ondelete="SET NULL")),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("duration_secs", sa.Float(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Index("voice_samples_personality_idx", "personality_id", "created_at"),
        schema="core",
    )
    op.add_column(
        "usage_log",
        sa.Column("characters", sa.Integer(), nullable=False, server_default="0"),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("usage_log", "characters", schema="core")
    op.drop_table("voice_samples", schema="core")
    op.drop_table("personality_voices", schema="core")

"""voice clones: every ElevenLabs voice Tzurot cloned, who cloned it (whose account holds it,
whose key deletes it) and the personality it was made for, kept apart from the voice a
personality uses now. `personality_voices.cloned_by` was the only record: a clone replaced or
removed by hand was forgotten and stayed in its cloner's paid account for good, since neither
a personality's deletion nor the cloner's data deletion could find it. Deletions (and a newer
clone) now walk this table; a row goes once its voice is deleted at ElevenLabs. Backfilled
from the clones personalities use now. An index on `personality_voices.voice_id`: a voice
another personality still uses is never deleted, looked up by its id.

Revision ID: 0028
Revises: 0027
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0028"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "voice_clones",
        sa.Column(
            "cloner_id",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("core.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("voice_id", sa.Text(), nullable=False),
        sa.Column(
            "personality_id",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("core.personalities.id", ondelete="SET NULL"),
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("cloner_id", "voice_id"),
        schema="core",
    )
    op.create_index(
        "voice_clones_personality_idx", "voice_clones", ["personality_id"], schema="core"
    )
    # A voice another personality still uses is never deleted: looked up by voice id.
    op.create_index(
        "personality_voices_voice_idx", "personality_voices", ["voice_id"], schema="core"
    )
    op.execute(
        "INSERT INTO core.voice_clones (cloner_id, voice_id, personality_id)"
        " SELECT cloned_by, voice_id, personality_id FROM core.personality_voices"
        " WHERE cloned_by IS NOT NULL ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.drop_index("personality_voices_voice_idx", "personality_voices", schema="core")
    op.drop_table("voice_clones", schema="core")

"""attachment reads: what helper models read for a job (voice transcripts, image
descriptions) is kept on the job as it is paid for, so the job's next attempt (a resend of
the same message after a failed answer) is not charged for it again; and a transcription's
usage row records the seconds of audio a provider bills by duration (whisper-1).

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column(
            "attachment_reads",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
        schema="core",
    )
    op.add_column(
        "usage_log",
        sa.Column("audio_seconds", sa.Float(), nullable=False, server_default="0"),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("usage_log", "audio_seconds", schema="core")
    op.drop_column("jobs", "attachment_reads", schema="core")

"""answer previews: the Discord messages an answer is being streamed as (NoteAnswerPreview),
so an answer whose bot died mid-stream is finished by the restarted bot (an `unfinished`
bot event naming the job); when the answer had to be generated again, when that began.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("preview_message_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        schema="core",
    )
    op.add_column(
        "jobs", sa.Column("preview_retried_at", sa.DateTime(timezone=True)), schema="core"
    )
    # Only jobs still showing a preview are swept: a small partial index.
    op.create_index(
        "jobs_unfinished_preview_idx",
        "jobs",
        ["finished_at"],
        schema="core",
        postgresql_where=sa.text("cardinality(preview_message_ids) > 0 AND delivered_at IS NULL"),
    )
    op.add_column("bot_events", sa.Column("job_id", UUID(as_uuid=False)), schema="core")


def downgrade() -> None:
    op.drop_column("bot_events", "job_id", schema="core")
    op.drop_index("jobs_unfinished_preview_idx", "jobs", schema="core")
    op.drop_column("jobs", "preview_retried_at", schema="core")
    op.drop_column("jobs", "preview_message_ids", schema="core")

"""preview header: the reply header an answer's first message starts with (a quote of the
message it answers, with a jump link), noted with its preview (NoteAnswerPreview), so that a
restarted bot finishing the answer keeps it even when that first message was deleted before
the bot read it. A constant default: adding the column rewrites no row.

Revision ID: 0025
Revises: 0024
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("preview_header", sa.Text, nullable=False, server_default=""),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("jobs", "preview_header", schema="core")

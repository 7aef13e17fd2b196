"""jobs keep their context: the user's turn as the prompt saw it (transcripts, image
descriptions), inference's PromptReport, and the reasoning when the user asked for it.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("user_content", "user_attachments", "prompt_report", "reasoning")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("user_content", sa.Text(), nullable=True), schema="core")
    op.add_column(
        "jobs",
        sa.Column("user_attachments", postgresql.JSONB(), nullable=True),
        schema="core",
    )
    op.add_column(
        "jobs", sa.Column("prompt_report", postgresql.JSONB(), nullable=True), schema="core"
    )
    op.add_column("jobs", sa.Column("reasoning", sa.Text(), nullable=True), schema="core")


def downgrade() -> None:
    for column in reversed(_COLUMNS):
        op.drop_column("jobs", column, schema="core")

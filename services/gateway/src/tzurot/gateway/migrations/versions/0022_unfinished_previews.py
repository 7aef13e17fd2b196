"""unfinished previews: an `unfinished` bot event keeps the preview messages of its answer, so
the bot can still show a user whose data is being deleted, in those messages, why her answer
is withheld once her deletion has removed the job.

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "bot_events",
        sa.Column("preview_message_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("bot_events", "preview_message_ids", schema="core")

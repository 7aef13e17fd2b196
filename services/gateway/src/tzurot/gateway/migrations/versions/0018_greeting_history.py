"""greeting history: whether a posted greeting's turn is in memory's history yet. The bot's
acknowledgement marks it `pending` in the same statement that acknowledges the event, so a
greeting posted while memory is away (or whose gateway stops right after the acknowledgement)
is stored by the sweep once memory is back; `stored` once it is, `refused` when memory (or a
personality deleted since) refuses it for good.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "bot_events",
        sa.Column("history_status", sa.Text, nullable=False, server_default=""),
        schema="core",
    )
    # Only greetings still waiting for memory are swept: a small partial index.
    op.create_index(
        "bot_events_history_pending_idx",
        "bot_events",
        ["created_at", "id"],
        schema="core",
        postgresql_where=sa.text("history_status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("bot_events_history_pending_idx", "bot_events", schema="core")
    op.drop_column("bot_events", "history_status", schema="core")

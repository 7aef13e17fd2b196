"""bot events retention: the sweep that deletes acknowledged bot events past
`TZUROT_BOT_EVENTS_RETENTION_DAYS` walks them oldest first through this partial index (release
notes, kept for good for their dedup keys, are not in it). Built in the migration's transaction:
writes to `bot_events` wait for it, a few seconds on an outbox that has grown for long.

Revision ID: 0023
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "bot_events_delivered_idx",
        "bot_events",
        ["delivered_at", "id"],
        schema="core",
        postgresql_where=sa.text("delivered_at IS NOT NULL AND notice_kind <> 'release'"),
    )


def downgrade() -> None:
    op.drop_index("bot_events_delivered_idx", "bot_events", schema="core")

"""preview regenerations: how many times the unfinished-answer sweep had a job's answer
generated again. A regeneration cut short by its gateway's stop is released for the next sweep
(and a half answer whose gateway restarted is generated again too); the count bounds them, as
each costs the user's key (store/previews.MAX_REGENERATIONS). A constant default: adding the
column rewrites no row, and every job starts at 0 (one regenerated before this, still within
the sweep's reach, may be generated again that many times more, once).

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("preview_regenerations", sa.Integer, nullable=False, server_default="0"),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("jobs", "preview_regenerations", schema="core")

"""preview regenerations: how many times the unfinished-answer sweep had a job's answer
generated again. A regeneration cut short by its gateway's stop is released for the next sweep
(and one whose gateway was killed is generated again too; a half answer whose gateway
restarted, never generated again, is not: its bot may be alive); the count bounds them, as
each costs the user's key (store/previews.MAX_REGENERATIONS). A constant default: adding the
column rewrites no row, and every job starts at 0 (one regenerated before this is not
generated again: a regeneration's GATEWAY_RESTARTING is told from the job's own by its count).

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

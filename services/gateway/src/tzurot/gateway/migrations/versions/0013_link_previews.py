"""link previews: a personality may ask for its answers' link previews (embeds) to be
suppressed (Discord's SUPPRESS_EMBEDS message flag).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "personalities",
        sa.Column("suppress_embeds", sa.Boolean(), server_default=sa.false(), nullable=False),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("personalities", "suppress_embeds", schema="core")

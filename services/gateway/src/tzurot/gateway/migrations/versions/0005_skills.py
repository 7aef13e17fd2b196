"""skills: the skills each personality's owner enabled, and images counted in usage.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "personalities",
        sa.Column("skills", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        schema="core",
    )
    op.add_column(
        "usage_log",
        sa.Column("images", sa.Integer(), server_default="0", nullable=False),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("usage_log", "images", schema="core")
    op.drop_column("personalities", "skills", schema="core")

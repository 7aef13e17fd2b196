"""cleanup_rules: a personality's own regex clean-up of its answers (the author's note and its
depth live in the `character` JSON with the other character fields).

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "personalities",
        sa.Column(
            "cleanup_rules",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("personalities", "cleanup_rules", schema="core")

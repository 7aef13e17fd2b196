"""memory.forgotten: tombstones of the users and personalities ForgetUser and
ForgetPersonality erased, so a writer that arrives after the forget (a late confirmation,
another gateway replica's cached personality) stores nothing for them (tombstones.py).

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forgotten",
        sa.Column("kind", sa.Text(), primary_key=True),
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column(
            "forgotten_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind in ('user', 'personality')", name="forgotten_kind_check"),
        schema="memory",
    )


def downgrade() -> None:
    op.drop_table("forgotten", schema="memory")

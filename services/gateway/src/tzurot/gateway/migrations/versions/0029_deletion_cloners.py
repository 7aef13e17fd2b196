"""deletion cloners: whose ElevenLabs accounts a personality's deletion lists for the clones
marked for it that voice_clones never recorded (their answer lost). The deletion deletes the
recorded clones before its mark, and their voice_clones rows with them, so a deletion finished
by the sweep (memory or ElevenLabs away at the first try) no longer knew those cloners and left
their lost clones in their accounts for good. Captured at the mark, on the row the deletion
removes last (with a user's data deletion, on each of her private personalities).

Revision ID: 0029
Revises: 0028
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0029"
down_revision: str | Sequence[str] | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "personalities",
        sa.Column(
            "deletion_cloners",
            postgresql.ARRAY(postgresql.UUID(as_uuid=False)),
            nullable=False,
            server_default="{}",
        ),
        schema="core",
    )


def downgrade() -> None:
    op.drop_column("personalities", "deletion_cloners", schema="core")

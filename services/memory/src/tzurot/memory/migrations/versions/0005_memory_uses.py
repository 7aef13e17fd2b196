"""memory.memory_uses: memories used in delivered answers, reinforced by consolidation.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "memory"


def upgrade() -> None:
    op.create_table(
        "memory_uses",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("memory_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("memory_uses", schema=SCHEMA)

"""memory.turns: conversation history, one row per turn, idempotent per (job_id, position).

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "memory"


def upgrade() -> None:
    op.create_table(
        "turns",
        sa.Column(
            "id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")
        ),
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.Column("channel_id", sa.Text, nullable=False),
        sa.Column("personality_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False, server_default=""),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("author_id", sa.Text, nullable=False, server_default=""),
        sa.Column("author_name", sa.Text, nullable=False, server_default=""),
        sa.Column("content", sa.Text, nullable=False, server_default=""),
        sa.Column(
            "message_ids", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")
        ),
        sa.Column("attachments", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.PrimaryKeyConstraint("id", name="turns_pkey"),
        sa.UniqueConstraint("job_id", "position", name="turns_job_position_key"),
        sa.CheckConstraint("role in ('user', 'assistant', 'system')", name="turns_role_check"),
        sa.CheckConstraint("position >= 0", name="turns_position_check"),
        schema=SCHEMA,
    )
    op.create_index(
        "turns_history_idx",
        "turns",
        ["channel_id", "personality_id", sa.text("created_at DESC"), "id"],
        schema=SCHEMA,
    )
    op.create_index(
        "turns_message_ids_idx", "turns", ["message_ids"], postgresql_using="gin", schema=SCHEMA
    )
    op.create_index("turns_user_idx", "turns", ["user_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("turns", schema=SCHEMA)

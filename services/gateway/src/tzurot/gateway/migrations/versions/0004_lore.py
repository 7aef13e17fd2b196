"""Character cards and lorebooks: personalities keep their card fields and custom fields;
card assets; lorebooks, where they are attached, and each conversation's lore state.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON_OBJECT = sa.text("'{}'::jsonb")


def upgrade() -> None:
    for column in ("card", "custom_fields"):
        op.add_column(
            "personalities",
            sa.Column(column, postgresql.JSONB(), nullable=False, server_default=_JSON_OBJECT),
            schema="core",
        )
    op.create_table(
        "personality_assets",
        sa.Column(
            "personality_id",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("core.personalities.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("path", sa.Text(), primary_key=True),
        sa.Column("content_type", sa.Text(), nullable=False, server_default=""),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        schema="core",
    )
    op.create_table(
        "lorebooks",
        sa.Column(
            "id",
            postgresql.UUID(as_uuid=False),
            primary_key=True,
            server_default=sa.text("gen_random_uuid()"),
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("scan_depth", sa.Integer()),
        sa.Column("token_budget", sa.Integer()),
        sa.Column("recursive_scanning", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("extensions", postgresql.JSONB(), nullable=False, server_default=_JSON_OBJECT),
        sa.Column(
            "entries", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")
        ),
        sa.Column(
            "owner_user_id",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("core.users.id", ondelete="SET NULL"),
        ),
        sa.Column(
            "card_personality_id",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("core.personalities.id", ondelete="SET NULL"),
            unique=True,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        schema="core",
    )
    op.create_table(
        "lorebook_attachments",
        sa.Column(
            "lorebook_id",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("core.lorebooks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("scope", sa.Text(), primary_key=True),
        sa.Column("target", sa.Text(), primary_key=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        schema="core",
    )
    op.create_index(
        "lorebook_attachments_target_idx",
        "lorebook_attachments",
        ["scope", "target"],
        schema="core",
    )
    op.create_table(
        "lore_states",
        sa.Column("channel_id", sa.Text(), primary_key=True),
        sa.Column(
            "personality_id",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("core.personalities.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("message_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "effects", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        schema="core",
    )


def downgrade() -> None:
    op.drop_table("lore_states", schema="core")
    op.drop_index("lorebook_attachments_target_idx", "lorebook_attachments", schema="core")
    op.drop_table("lorebook_attachments", schema="core")
    op.drop_table("lorebooks", schema="core")
    op.drop_table("personality_assets", schema="core")
    for column in ("custom_fields", "card"):
        op.drop_column("personalities", column, schema="core")

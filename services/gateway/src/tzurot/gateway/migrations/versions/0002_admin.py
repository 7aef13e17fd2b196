"""core: model overrides, personas, settings, channel activations, denylist, rate buckets,
quota counters; personalities.voice_id and jobs.heartbeat_at.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")
_UUID = sa.text("gen_random_uuid()")


def _user_fk(column: str = "user_id", ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["core.users.id"], ondelete=ondelete)


def _personality_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["personality_id"], ["core.personalities.id"], ondelete="CASCADE"
    )


def upgrade() -> None:
    op.add_column(
        "personalities",
        sa.Column("voice_id", sa.Text(), server_default="", nullable=False),
        schema="core",
    )
    op.add_column(
        "jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True), schema="core"
    )
    op.create_table(
        "model_overrides",
        sa.Column("user_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("personality_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("llm_config_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _user_fk(),
        _personality_fk(),
        sa.ForeignKeyConstraint(["llm_config_id"], ["core.llm_configs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "personality_id"),
        schema="core",
    )
    op.create_table(
        "personas",
        sa.Column("id", sa.UUID(as_uuid=False), server_default=_UUID, nullable=False),
        sa.Column("user_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("personality_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("preferred_name", sa.Text(), server_default="", nullable=False),
        sa.Column("pronouns", sa.Text(), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _user_fk(),
        _personality_fk(),
        sa.PrimaryKeyConstraint("id"),
        schema="core",
    )
    op.create_index(
        "personas_user_personality_key",
        "personas",
        ["user_id", sa.literal_column("coalesce(personality_id::text, '')")],
        unique=True,
        schema="core",
    )
    op.create_table(
        "settings",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("scope_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("scope", "scope_id", "key"),
        schema="core",
    )
    op.create_table(
        "channel_activations",
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("guild_id", sa.Text(), server_default="", nullable=False),
        sa.Column("personality_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("activated_by_user_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        _personality_fk(),
        _user_fk("activated_by_user_id", "SET NULL"),
        sa.PrimaryKeyConstraint("channel_id"),
        schema="core",
    )
    op.create_table(
        "denylist",
        sa.Column("id", sa.UUID(as_uuid=False), server_default=_UUID, nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("target_id", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("scope_id", sa.Text(), server_default="", nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.CheckConstraint("target in ('user', 'guild')", name="denylist_target_check"),
        sa.CheckConstraint(
            "scope in ('bot', 'guild', 'channel', 'personality')", name="denylist_scope_check"
        ),
        sa.CheckConstraint("mode in ('block', 'mute')", name="denylist_mode_check"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("target", "target_id", "scope", "scope_id", name="denylist_entry_key"),
        schema="core",
    )
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
        schema="core",
    )
    op.create_table(
        "quota_counters",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("key"),
        schema="core",
    )


def downgrade() -> None:
    op.drop_table("quota_counters", schema="core")
    op.drop_table("rate_buckets", schema="core")
    op.drop_table("denylist", schema="core")
    op.drop_table("channel_activations", schema="core")
    op.drop_table("settings", schema="core")
    op.drop_index("personas_user_personality_key", table_name="personas", schema="core")
    op.drop_table("personas", schema="core")
    op.drop_table("model_overrides", schema="core")
    op.drop_column("jobs", "heartbeat_at", schema="core")
    op.drop_column("personalities", "voice_id", schema="core")

"""core: several personalities per channel, group rounds and chains, free will, the bot
event outbox, notification subscriptions, activity counters.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")
_UUID = sa.text("gen_random_uuid()")
_TS = sa.DateTime(timezone=True)
_S = "core"


def _fk(column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"core.{target}"], ondelete=ondelete)


def upgrade() -> None:
    # Several personalities per channel: the key becomes (channel, personality).
    op.drop_constraint("channel_activations_pkey", "channel_activations", schema=_S)
    op.create_primary_key(
        "channel_activations_pkey",
        "channel_activations",
        ["channel_id", "personality_id"],
        schema=_S,
    )
    op.create_table(
        "personality_traits",
        sa.Column("personality_id", sa.UUID(as_uuid=False), primary_key=True),
        sa.Column("talkativeness", sa.Float(), server_default="0.5", nullable=False),
        sa.Column("updated_at", _TS, server_default=_NOW, nullable=False),
        _fk("personality_id", "personalities.id"),
        schema=_S,
    )
    op.create_table(
        "channel_state",
        sa.Column("conversation_id", sa.Text(), primary_key=True),
        sa.Column("guild_id", sa.Text(), server_default="", nullable=False),
        sa.Column("channel_id", sa.Text(), server_default="", nullable=False),
        sa.Column("thread_id", sa.Text(), server_default="", nullable=False),
        sa.Column("nsfw_channel", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("round_id", sa.Text(), server_default="", nullable=False),
        sa.Column("round_starter_user_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column(
            "round_speakers", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("last_speaker_id", sa.Text(), server_default="", nullable=False),
        sa.Column("last_human_at", _TS, nullable=True),
        sa.Column("updated_at", _TS, server_default=_NOW, nullable=False),
        _fk("round_starter_user_id", "users.id", "SET NULL"),
        schema=_S,
    )
    op.create_table(
        "group_jobs",
        sa.Column("job_id", sa.UUID(as_uuid=False), primary_key=True),
        sa.Column("conversation_id", sa.Text(), nullable=False),
        sa.Column("round_id", sa.Text(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("last_in_round", sa.Boolean(), nullable=False),
        _fk("job_id", "jobs.id"),
        schema=_S,
    )
    op.create_table(
        "bot_events",
        sa.Column("id", sa.UUID(as_uuid=False), server_default=_UUID, primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.Text(), nullable=True, unique=True),
        sa.Column("guild_id", sa.Text(), server_default="", nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text(), server_default="", nullable=False),
        sa.Column("nsfw_channel", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("personality_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("payer_user_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("round_id", sa.Text(), server_default="", nullable=False),
        sa.Column("depth", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reply_to_message_id", sa.Text(), server_default="", nullable=False),
        sa.Column("directive", sa.Text(), server_default="", nullable=False),
        sa.Column("notice_kind", sa.Text(), server_default="", nullable=False),
        sa.Column("text", sa.Text(), server_default="", nullable=False),
        sa.Column("available_at", _TS, server_default=_NOW, nullable=False),
        sa.Column("claimed_until", _TS, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("dropped_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("message_ids", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", _TS, server_default=_NOW, nullable=False),
        _fk("personality_id", "personalities.id"),
        _fk("payer_user_id", "users.id"),
        schema=_S,
    )
    op.create_index(
        "bot_events_pending_idx",
        "bot_events",
        ["available_at"],
        schema=_S,
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.create_table(
        "freewill_channels",
        sa.Column("conversation_id", sa.Text(), primary_key=True),
        sa.Column("guild_id", sa.Text(), server_default="", nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text(), server_default="", nullable=False),
        sa.Column("nsfw_channel", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("quiet_start_hour", sa.Integer(), server_default="23", nullable=False),
        sa.Column("quiet_end_hour", sa.Integer(), server_default="8", nullable=False),
        sa.Column("daily_budget", sa.Integer(), server_default="3", nullable=False),
        sa.Column("next_check_at", _TS, server_default=_NOW, nullable=False),
        sa.Column("used_day", sa.Date(), nullable=True),
        sa.Column("used_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_freewill_at", _TS, nullable=True),
        sa.Column("created_at", _TS, server_default=_NOW, nullable=False),
        schema=_S,
    )
    op.create_table(
        "freewill_personalities",
        sa.Column("conversation_id", sa.Text(), primary_key=True),
        sa.Column("personality_id", sa.UUID(as_uuid=False), primary_key=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("payer_user_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("disabled_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("updated_at", _TS, server_default=_NOW, nullable=False),
        _fk("conversation_id", "freewill_channels.conversation_id"),
        _fk("personality_id", "personalities.id"),
        _fk("payer_user_id", "users.id"),
        schema=_S,
    )
    op.create_table(
        "guild_settings",
        sa.Column("guild_id", sa.Text(), primary_key=True),
        sa.Column("timezone", sa.Text(), server_default="UTC", nullable=False),
        schema=_S,
    )
    op.create_table(
        "notification_subscriptions",
        sa.Column("conversation_id", sa.Text(), primary_key=True),
        sa.Column("guild_id", sa.Text(), server_default="", nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text(), server_default="", nullable=False),
        sa.Column("subscribed_by_user_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("version", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", _TS, server_default=_NOW, nullable=False),
        _fk("subscribed_by_user_id", "users.id", "SET NULL"),
        schema=_S,
    )
    op.create_table(
        "activity_counters",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        schema=_S,
    )


def downgrade() -> None:
    for table in (
        "activity_counters",
        "notification_subscriptions",
        "guild_settings",
        "freewill_personalities",
        "freewill_channels",
        "bot_events",
        "group_jobs",
        "channel_state",
        "personality_traits",
    ):
        op.drop_table(table, schema=_S)
    # Back to one personality per channel: keep the earliest activation of each.
    op.execute(
        "DELETE FROM core.channel_activations a USING core.channel_activations b "
        "WHERE a.channel_id = b.channel_id AND (a.activated_at, a.personality_id::text) "
        "> (b.activated_at, b.personality_id::text)"
    )
    op.drop_constraint("channel_activations_pkey", "channel_activations", schema=_S)
    op.create_primary_key(
        "channel_activations_pkey", "channel_activations", ["channel_id"], schema=_S
    )

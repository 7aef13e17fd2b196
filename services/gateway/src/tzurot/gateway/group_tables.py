"""core's tables for group channels, free will, the bot event outbox and notifications.

Kept apart from tables.py (same metadata); migration 0008 mirrors them.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from tzurot.gateway.tables import metadata

_now = sa.text("now()")
_uuid = sa.text("gen_random_uuid()")
_TS = sa.DateTime(timezone=True)


def _personality_fk() -> sa.ForeignKey:
    return sa.ForeignKey("personalities.id", ondelete="CASCADE")


def _user_fk() -> sa.ForeignKey:
    return sa.ForeignKey("users.id", ondelete="CASCADE")


# Per personality: how likely it speaks in a group channel when nobody names it.
personality_traits = sa.Table(
    "personality_traits",
    metadata,
    sa.Column("personality_id", UUID(as_uuid=False), _personality_fk(), primary_key=True),
    sa.Column("talkativeness", sa.Float, nullable=False, server_default="0.5"),
    sa.Column("updated_at", _TS, nullable=False, server_default=_now),
)

# Per conversation (a channel, or a thread): the current round and chain, the last human.
channel_state = sa.Table(
    "channel_state",
    metadata,
    sa.Column("conversation_id", sa.Text, primary_key=True),
    sa.Column("guild_id", sa.Text, nullable=False, server_default=""),
    sa.Column("channel_id", sa.Text, nullable=False, server_default=""),
    sa.Column("thread_id", sa.Text, nullable=False, server_default=""),
    sa.Column("nsfw_channel", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("round_id", sa.Text, nullable=False, server_default=""),
    sa.Column(
        "round_starter_user_id", UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="SET NULL")
    ),
    # Personality ids, kept when one is deleted: the conversation's state, replaced as it
    # goes on (the next human message's round, the next answer's speaker); an id no member
    # has any more matches nobody (speakers.choose_speakers, groups.record_job).
    sa.Column("round_speakers", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("last_speaker_id", sa.Text, nullable=False, server_default=""),
    sa.Column("last_human_at", _TS),
    sa.Column("updated_at", _TS, nullable=False, server_default=_now),
)

# A job that is part of a group round or chain (depth 0: answering the human).
group_jobs = sa.Table(
    "group_jobs",
    metadata,
    sa.Column(
        "job_id",
        UUID(as_uuid=False),
        sa.ForeignKey("jobs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("conversation_id", sa.Text, nullable=False),
    sa.Column("round_id", sa.Text, nullable=False),
    sa.Column("depth", sa.Integer, nullable=False),
    sa.Column("last_in_round", sa.Boolean, nullable=False),
)

# A round's last answer (or a chain reply) delivered whose group follow-up
# (groups.after_delivery: the last speaker, the chain reply) has not finished yet: added by
# the delivery's own statement (store/job_deliveries.py `deliver`), deleted once the follow-up
# ran. A gateway killed between the two leaves it to every replica's sweep
# (delivery_flow.run_owed_follow_ups), which takes it once `due_at` has passed (the delivering
# gateway's hold, then a sweep's lease) and drops it once its job was delivered longer ago
# than a repeated follow-up may run (migration 0026).
group_follow_ups = sa.Table(
    "group_follow_ups",
    metadata,
    sa.Column(
        "job_id",
        UUID(as_uuid=False),
        sa.ForeignKey("jobs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("due_at", _TS, nullable=False),
)

# What the bot must post unprompted; claimed by a subscriber for a lease, acknowledged once.
bot_events = sa.Table(
    "bot_events",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=_uuid),
    sa.Column("kind", sa.Text, nullable=False),  # turn | notice
    # Makes an event once-only: chain:<round>:<depth>, freewill:<conv>:<day>:<n>, release:...
    sa.Column("dedup_key", sa.Text, unique=True),
    sa.Column("guild_id", sa.Text, nullable=False, server_default=""),
    sa.Column("channel_id", sa.Text, nullable=False),
    sa.Column("thread_id", sa.Text, nullable=False, server_default=""),
    sa.Column("nsfw_channel", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("personality_id", UUID(as_uuid=False), _personality_fk()),
    sa.Column("payer_user_id", UUID(as_uuid=False), _user_fk()),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("round_id", sa.Text, nullable=False, server_default=""),
    sa.Column("depth", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reply_to_message_id", sa.Text, nullable=False, server_default=""),
    sa.Column("directive", sa.Text, nullable=False, server_default=""),
    sa.Column("notice_kind", sa.Text, nullable=False, server_default=""),
    sa.Column("text", sa.Text, nullable=False, server_default=""),
    sa.Column("available_at", _TS, nullable=False, server_default=_now),
    sa.Column("claimed_until", _TS),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("delivered_at", _TS),
    sa.Column("dropped_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("message_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("created_at", _TS, nullable=False, server_default=_now),
    # An `unfinished` event's job (its answer and preview messages).
    sa.Column("job_id", UUID(as_uuid=False)),
    # An `unfinished` event's preview messages, kept with it: the job of a user whose data is
    # being deleted goes before the bot shows why its answer is withheld (migration 0022).
    sa.Column("preview_message_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
    # A posted greeting's turn in memory's history: '' (none to store), pending (the
    # acknowledgement set it; stored now or by the sweep), stored, refused (migration 0018).
    sa.Column("history_status", sa.Text, nullable=False, server_default=""),
    sa.Index(
        "bot_events_pending_idx",
        "available_at",
        postgresql_where=sa.text("delivered_at IS NULL"),
    ),
    sa.Index(
        "bot_events_history_pending_idx",
        "created_at",
        "id",
        postgresql_where=sa.text("history_status = 'pending'"),
    ),
    # The retention sweep's walk over acknowledged events, oldest first (outbox_retention.py);
    # a release note is kept for good (its dedup key), so it is not in the walk at all.
    sa.Index(
        "bot_events_delivered_idx",
        "delivered_at",
        "id",
        postgresql_where=sa.text("delivered_at IS NOT NULL AND notice_kind <> 'release'"),
    ),
)

freewill_channels = sa.Table(
    "freewill_channels",
    metadata,
    sa.Column("conversation_id", sa.Text, primary_key=True),
    sa.Column("guild_id", sa.Text, nullable=False, server_default=""),
    sa.Column("channel_id", sa.Text, nullable=False),
    sa.Column("thread_id", sa.Text, nullable=False, server_default=""),
    sa.Column("nsfw_channel", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("quiet_start_hour", sa.Integer, nullable=False, server_default="23"),
    sa.Column("quiet_end_hour", sa.Integer, nullable=False, server_default="8"),
    sa.Column("daily_budget", sa.Integer, nullable=False, server_default="3"),
    sa.Column("next_check_at", _TS, nullable=False, server_default=_now),
    sa.Column("used_day", sa.Date),
    sa.Column("used_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_freewill_at", _TS),
    sa.Column("created_at", _TS, nullable=False, server_default=_now),
)

freewill_personalities = sa.Table(
    "freewill_personalities",
    metadata,
    sa.Column(
        "conversation_id",
        sa.Text,
        sa.ForeignKey("freewill_channels.conversation_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("personality_id", UUID(as_uuid=False), _personality_fk(), primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("payer_user_id", UUID(as_uuid=False), _user_fk(), nullable=False),
    sa.Column("disabled_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", _TS, nullable=False, server_default=_now),
)

guild_settings = sa.Table(
    "guild_settings",
    metadata,
    sa.Column("guild_id", sa.Text, primary_key=True),
    sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
)

notification_subscriptions = sa.Table(
    "notification_subscriptions",
    metadata,
    sa.Column("conversation_id", sa.Text, primary_key=True),
    sa.Column("guild_id", sa.Text, nullable=False, server_default=""),
    sa.Column("channel_id", sa.Text, nullable=False),
    sa.Column("thread_id", sa.Text, nullable=False, server_default=""),
    sa.Column(
        "subscribed_by_user_id", UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="SET NULL")
    ),
    # The release this channel has been told about (or was current when it subscribed).
    sa.Column("version", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", _TS, nullable=False, server_default=_now),
)

# Counters of activity (delivered exchanges), for consolidation triggered by activity.
activity_counters = sa.Table(
    "activity_counters",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False, server_default="0"),
)

"""Gateway's tables in Postgres schema `core` (SQLAlchemy Core; migrations mirror these)."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

SCHEMA = "core"
metadata = sa.MetaData(schema=SCHEMA)

_now = sa.text("now()")
_uuid = sa.text("gen_random_uuid()")


def _pending_deletion(table: str) -> tuple[sa.Column[Any] | sa.Index, ...]:
    """A deletion under way (admin/deletions.py, migration 0019): when it was asked for (set
    before memory forgets; the row goes last, with it), and until when whoever runs it (the
    request, then a sweep) holds it."""
    return (
        sa.Column("deletion_requested_at", sa.DateTime(timezone=True)),
        sa.Column("deletion_lease_until", sa.DateTime(timezone=True)),
        sa.Index(
            f"{table}_deletion_pending_idx",
            "deletion_requested_at",
            postgresql_where=sa.text("deletion_requested_at IS NOT NULL"),
        ),
    )


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=_uuid),
    sa.Column("platform_user_id", sa.Text, nullable=False, unique=True),
    sa.Column("display_name", sa.Text, nullable=False, server_default=""),
    sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
    sa.Column("superuser", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("nsfw_verified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    *_pending_deletion("users"),
)

llm_configs = sa.Table(
    "llm_configs",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=_uuid),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("owner_user_id", UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="CASCADE")),
    sa.Column("advanced_parameters", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("context_window", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_referenced_messages", sa.Integer, nullable=False, server_default="0"),
    sa.Column("free_use", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    # Names are unique per owner; global configs (owner NULL) share one namespace.
    sa.Index(
        "llm_configs_owner_name_key",
        sa.text("coalesce(owner_user_id::text, '')"),
        sa.text("lower(name)"),
        unique=True,
    ),
)

personalities = sa.Table(
    "personalities",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=_uuid),
    sa.Column("slug", sa.Text, nullable=False, unique=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("avatar_url", sa.Text, nullable=False, server_default=""),
    sa.Column("system_prompt", sa.Text, nullable=False, server_default=""),
    sa.Column("character", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column(
        "default_llm_config_id",
        UUID(as_uuid=False),
        sa.ForeignKey("llm_configs.id", ondelete="SET NULL"),
    ),
    sa.Column("error_message", sa.Text, nullable=False, server_default=""),
    sa.Column("birthday", sa.Text, nullable=False, server_default=""),
    sa.Column("owner_user_id", UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("public", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("nsfw", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("voice_id", sa.Text, nullable=False, server_default=""),
    sa.Column("skills", ARRAY(sa.Text), nullable=False, server_default="{}"),
    # Answers post with Discord's SUPPRESS_EMBEDS flag: no link previews (migration 0013).
    sa.Column("suppress_embeds", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    # Character card fields with no other place (cards/mapping.CARD_KEYS), kept for export.
    sa.Column("card", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    # Imported fields with no place in Tzurot (shapes.inc extras), kept as they were.
    sa.Column("custom_fields", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    # [{pattern, replacement}] applied in order to every answer (rules.py checks them).
    sa.Column("cleanup_rules", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Index("personalities_display_name_idx", sa.text("lower(display_name)")),
    *_pending_deletion("personalities"),
    # Whose ElevenLabs accounts its deletion lists for lost clones (migration 0029): the
    # cloners whose recorded clones it deleted before its mark, so a retry still knows them.
    sa.Column("deletion_cloners", ARRAY(UUID(as_uuid=False)), nullable=False, server_default="{}"),
)

personality_aliases = sa.Table(
    "personality_aliases",
    metadata,
    sa.Column("alias", sa.Text, primary_key=True),  # stored lowercased: unique case-insensitively
    sa.Column(
        "personality_id",
        UUID(as_uuid=False),
        sa.ForeignKey("personalities.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("display", sa.Text, nullable=False),
)
# Aliases compared by key, a final sigma read as a sigma (store/name_lookups.alias_key): one
# index for equality and for the prefix check (text_pattern_ops, whatever the collation).
sa.Index(
    "personality_aliases_key_idx",
    sa.func.translate(
        personality_aliases.c.alias, sa.literal_column("'\u03c2'"), sa.literal_column("'\u03c3'")
    ).label("alias_key"),
    postgresql_ops={"alias_key": "text_pattern_ops"},
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=_uuid),
    sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("user_id", UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="CASCADE")),
    # No foreign key on purpose: a personality's deletion takes its answers still in flight
    # (store/in_flight.delete_answers_in_flight) and keeps the delivered and failed ones.
    # They are their user's record (ExportUserData, usage, what a message id was answered
    # by), deleted with the user's data; they answer nothing more (the id finds nobody).
    sa.Column("personality_id", UUID(as_uuid=False), nullable=False),
    sa.Column("guild_id", sa.Text, nullable=False, server_default=""),
    sa.Column("channel_id", sa.Text, nullable=False),
    # A thread's parent channel ("" when the conversation is a channel), and whether the
    # channel is marked NSFW: what a retry needs to rebuild the request's location.
    sa.Column("parent_channel_id", sa.Text, nullable=False, server_default=""),
    sa.Column("nsfw_channel", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("request_content", sa.Text, nullable=False),
    sa.Column("request_message_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("author_id", sa.Text, nullable=False),
    sa.Column("author_name", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("content", sa.Text, nullable=False, server_default=""),
    sa.Column("provider", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("input_tokens", sa.Integer),
    sa.Column("output_tokens", sa.Integer),
    sa.Column("error_code", sa.Text),
    sa.Column("error_reason", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("delivered_message_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
    # The messages the answer is being streamed as, until delivered (NoteAnswerPreview); and
    # when the unfinished-answer sweep had it generated again (its bot died mid-stream), and
    # how many times it did (a regeneration its gateway's stop cut short is released, counted:
    # store/previews.MAX_REGENERATIONS at most, migration 0024).
    sa.Column("preview_message_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
    # The reply header its first message starts with, noted with it (migration 0025).
    sa.Column("preview_header", sa.Text, nullable=False, server_default=""),
    sa.Column("preview_retried_at", sa.DateTime(timezone=True)),
    sa.Column("preview_regenerations", sa.Integer, nullable=False, server_default="0"),
    # A failed job the gateway is running again (an operator's retry, an answer its dying bot
    # cancelled) until its claim or a refusal, or this time when its gateway died meanwhile:
    # GetJobStatus reads it `queued` until then (store/retries.py, migration 0021).
    sa.Column("retry_until", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    # Renewed while a gateway runs the job; a running job with an old heartbeat was abandoned.
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    # The job's context (job_context.py): the user's turn as the prompt saw it, inference's
    # PromptReport, the reasoning when the user's own keep_reasoning setting is on.
    sa.Column("user_content", sa.Text),
    sa.Column("user_attachments", JSONB),
    sa.Column("prompt_report", JSONB),
    sa.Column("reasoning", sa.Text),
    # {attachment key: transcript or description} of what helper models read for an attempt
    # (attachment_reads.py): the next attempt sends them as descriptions (migration 0017).
    sa.Column("attachment_reads", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    # A 🔄's job: the job whose exchange leaves history when this one is delivered
    # (replacement.py, migration 0020). No foreign key: jobs are deleted with their user only.
    sa.Column("replaces_job_id", UUID(as_uuid=False)),
    sa.CheckConstraint(
        "status in ('queued', 'running', 'streamed', 'delivered', 'failed')",
        name="jobs_status_check",
    ),
    sa.Index("jobs_status_created_idx", "status", "created_at"),
    sa.Index("jobs_delivered_message_ids_idx", "delivered_message_ids", postgresql_using="gin"),
    sa.Index(
        "jobs_unfinished_preview_idx",
        "finished_at",
        postgresql_where=sa.text("cardinality(preview_message_ids) > 0 AND delivered_at IS NULL"),
    ),
)

usage_log = sa.Table(
    "usage_log",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("user_id", UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="CASCADE")),
    sa.Column("job_id", UUID(as_uuid=False)),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("images", sa.Integer, nullable=False, server_default="0"),
    sa.Column("request_type", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    # Characters synthesised (request_type "speech"): what a speech provider bills.
    sa.Column("characters", sa.Integer, nullable=False, server_default="0"),
    # Seconds of audio transcribed (request_type "transcription", providers that bill by
    # duration, as whisper-1 does).
    sa.Column("audio_seconds", sa.Float, nullable=False, server_default="0"),
    # Paid but not delivered whole: a speech row is written as the provider accepts the text,
    # failed until its audio is complete (it broke off, could not be decoded, was cancelled).
    sa.Column("failed", sa.Boolean, nullable=False, server_default=sa.false()),
    # The tokens are Tzurot's estimate, the provider's count never came: an answer's round
    # broken off mid-stream (inference's estimate), a reply cancelled mid-answer (gateway's).
    sa.Column("estimated", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("usage_log_user_created_idx", "user_id", "created_at"),
)


def _user_fk() -> sa.ForeignKey:
    return sa.ForeignKey("users.id", ondelete="CASCADE")


def _personality_fk() -> sa.ForeignKey:
    return sa.ForeignKey("personalities.id", ondelete="CASCADE")


model_overrides = sa.Table(
    "model_overrides",
    metadata,
    sa.Column("user_id", UUID(as_uuid=False), _user_fk(), primary_key=True),
    sa.Column("personality_id", UUID(as_uuid=False), _personality_fk(), primary_key=True),
    sa.Column(
        "llm_config_id",
        UUID(as_uuid=False),
        sa.ForeignKey("llm_configs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)


def _config_fk() -> sa.Column[str]:
    return sa.Column(
        "llm_config_id",
        UUID(as_uuid=False),
        sa.ForeignKey("llm_configs.id", ondelete="CASCADE"),
        nullable=False,
    )


# The LLM config cascade's other stored levels (resolve.py): a user's default for every
# personality, and a channel's (set by someone who may manage it) for everyone there.
user_models = sa.Table(
    "user_models",
    metadata,
    sa.Column("user_id", UUID(as_uuid=False), _user_fk(), primary_key=True),
    _config_fk(),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

channel_models = sa.Table(
    "channel_models",
    metadata,
    sa.Column("channel_id", sa.Text, primary_key=True),
    _config_fk(),
    sa.Column(
        "set_by_user_id", UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="SET NULL")
    ),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

# Aliases only their user uses; for that user they win over global ones (personality_aliases).
personal_aliases = sa.Table(
    "personal_aliases",
    metadata,
    sa.Column("user_id", UUID(as_uuid=False), _user_fk(), primary_key=True),
    sa.Column("alias", sa.Text, primary_key=True),  # normalized, as personality_aliases
    sa.Column("personality_id", UUID(as_uuid=False), _personality_fk(), nullable=False),
    sa.Column("display", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Index("personal_aliases_personality_id_idx", "personality_id"),
)

personas = sa.Table(
    "personas",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=_uuid),
    sa.Column("user_id", UUID(as_uuid=False), _user_fk(), nullable=False),
    # NULL: the user's default persona; else an override toward one personality.
    sa.Column("personality_id", UUID(as_uuid=False), _personality_fk()),
    sa.Column("name", sa.Text, nullable=False, server_default=""),
    sa.Column("preferred_name", sa.Text, nullable=False, server_default=""),
    sa.Column("pronouns", sa.Text, nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Index(
        "personas_user_personality_key",
        "user_id",
        sa.text("coalesce(personality_id::text, '')"),
        unique=True,
    ),
)

settings = sa.Table(
    "settings",
    metadata,
    # global | personality | channel | user | user_personality
    sa.Column("scope", sa.Text, primary_key=True),
    # "" for global; a personality id, a channel id, a user id, or "<user id>:<personality id>".
    # No foreign key: a personality's deletion deletes its rows (store/personalities.py
    # delete_references), as it does the attachments and denylist entries toward it.
    sa.Column("scope_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

channel_activations = sa.Table(
    "channel_activations",
    metadata,
    sa.Column("channel_id", sa.Text, primary_key=True),
    sa.Column("guild_id", sa.Text, nullable=False, server_default=""),
    # Several personalities per channel (migration 0004): a group channel.
    sa.Column("personality_id", UUID(as_uuid=False), _personality_fk(), primary_key=True),
    sa.Column(
        "activated_by_user_id",
        UUID(as_uuid=False),
        sa.ForeignKey("users.id", ondelete="SET NULL"),
    ),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

denylist = sa.Table(
    "denylist",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=_uuid),
    sa.Column("target", sa.Text, nullable=False),  # user | guild
    sa.Column("target_id", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),  # bot | guild | channel | personality
    sa.Column("scope_id", sa.Text, nullable=False, server_default=""),
    sa.Column("mode", sa.Text, nullable=False),  # block | mute
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.UniqueConstraint("target", "target_id", "scope", "scope_id", name="denylist_entry_key"),
    sa.CheckConstraint("target in ('user', 'guild')", name="denylist_target_check"),
    sa.CheckConstraint(
        "scope in ('bot', 'guild', 'channel', 'personality')", name="denylist_scope_check"
    ),
    sa.CheckConstraint("mode in ('block', 'mute')", name="denylist_mode_check"),
)

rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    # "user:<id>", "channel:<id>", "guest:<user id>": token buckets shared by every replica.
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

quota_counters = sa.Table(
    "quota_counters",
    metadata,
    # e.g. "guest:2026-11-25": requests counted against a budget for one period.
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("used", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

# ---- Character cards and lorebooks (issue 20) ----

# Bytes a personality's card carries: the card picture ("avatar") and CHARX assets by path.
personality_assets = sa.Table(
    "personality_assets",
    metadata,
    sa.Column(
        "personality_id",
        UUID(as_uuid=False),
        sa.ForeignKey("personalities.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("content_type", sa.Text, nullable=False, server_default=""),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

lorebooks = sa.Table(
    "lorebooks",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=_uuid),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("scan_depth", sa.Integer),
    sa.Column("token_budget", sa.Integer),
    sa.Column("recursive_scanning", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("extensions", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    # The entries in cards/lorebooks.LoreEntry's shape, edited as a whole.
    sa.Column("entries", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("owner_user_id", UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="SET NULL")),
    # The personality whose card carried it (its character_book), if any.
    sa.Column(
        "card_personality_id",
        UUID(as_uuid=False),
        sa.ForeignKey("personalities.id", ondelete="SET NULL"),
        unique=True,
    ),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

# scope: 'personality' (target: the personality id), 'channel' (the channel id), 'global' ('').
lorebook_attachments = sa.Table(
    "lorebook_attachments",
    metadata,
    sa.Column(
        "lorebook_id",
        UUID(as_uuid=False),
        sa.ForeignKey("lorebooks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("target", sa.Text, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Index("lorebook_attachments_target_idx", "scope", "target"),
)

# The timed effects (sticky, cooldown) and message count of one conversation's lore.
lore_states = sa.Table(
    "lore_states",
    metadata,
    sa.Column("channel_id", sa.Text, primary_key=True),
    sa.Column(
        "personality_id",
        UUID(as_uuid=False),
        sa.ForeignKey("personalities.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("message_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("effects", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)


# The files an answer carried (generated images), in order: a replay of the job returns them.
job_files = sa.Table(
    "job_files",
    metadata,
    sa.Column(
        "job_id",
        UUID(as_uuid=False),
        sa.ForeignKey("jobs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
)

# A personality's avatar image, kept by the project and served by the edge at
# /avatars/{slug}.{ext} (Discord's attachment URLs are signed and expire).
avatars = sa.Table(
    "avatars",
    metadata,
    sa.Column(
        "personality_id",
        UUID(as_uuid=False),
        sa.ForeignKey("personalities.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("slug", sa.Text, nullable=False, unique=True),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)


# A personality's voice (issue 17): who synthesises it, its tuning, and how often it speaks.
personality_voices = sa.Table(
    "personality_voices",
    metadata,
    sa.Column(
        "personality_id",
        UUID(as_uuid=False),
        sa.ForeignKey("personalities.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("voice_id", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False, server_default=""),
    sa.Column("stability", sa.Float),
    sa.Column("similarity_boost", sa.Float),
    sa.Column("style", sa.Float),
    sa.Column("speed", sa.Float),
    sa.Column("frequency", sa.Text, nullable=False, server_default="always"),
    sa.Column("probability", sa.Float, nullable=False, server_default="1"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    # Who made this voice with /personality voice clone (their ElevenLabs account holds it);
    # NULL for a voice set by hand, which is never deleted from anyone's account.
    sa.Column("cloned_by", UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.CheckConstraint(
        "frequency in ('always', 'sometimes', 'on_request')",
        name="personality_voices_frequency_check",
    ),
    sa.Index("personality_voices_voice_idx", "voice_id"),
)

# Every voice Tzurot cloned (migration 0028): whose ElevenLabs account holds it (the cloner's
# key deletes it) and the personality it was made for, whichever voice that personality uses
# now; a row goes once its voice is deleted at ElevenLabs (voice_store.py).
voice_clones = sa.Table(
    "voice_clones",
    metadata,
    sa.Column(
        "cloner_id",
        UUID(as_uuid=False),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("voice_id", sa.Text, primary_key=True),
    sa.Column(
        "personality_id",
        UUID(as_uuid=False),
        sa.ForeignKey("personalities.id", ondelete="SET NULL"),
    ),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Index("voice_clones_personality_idx", "personality_id"),
)

# Recordings an owner uploaded to clone a personality's voice; kept so a clone can be made
# again with another key.
voice_samples = sa.Table(
    "voice_samples",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=_uuid),
    sa.Column(
        "personality_id",
        UUID(as_uuid=False),
        sa.ForeignKey("personalities.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("uploaded_by", UUID(as_uuid=False), sa.ForeignKey("users.id", ondelete="SET NULL")),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("duration_secs", sa.Float, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Index("voice_samples_personality_idx", "personality_id", "created_at"),
)

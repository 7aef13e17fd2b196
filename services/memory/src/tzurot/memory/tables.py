"""Memory's tables in Postgres schema `memory` (SQLAlchemy Core; migrations mirror these)."""

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

SCHEMA = "memory"
metadata = sa.MetaData(schema=SCHEMA)

ROLES = ("user", "assistant", "system")

turns = sa.Table(
    "turns",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("job_id", sa.Text, nullable=False),
    # Order within the exchange: the user turn before the assistant's answer.
    sa.Column("position", sa.SmallInteger, nullable=False),
    sa.Column("channel_id", sa.Text, nullable=False),
    sa.Column("personality_id", sa.Text, nullable=False),
    # Gateway's internal user id of the exchange's human, on every turn of the exchange
    # (the assistant's too), so ForgetUser and RemoveLastExchange find them all.
    sa.Column("user_id", sa.Text, nullable=False, server_default=""),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("author_id", sa.Text, nullable=False, server_default=""),
    sa.Column("author_name", sa.Text, nullable=False, server_default=""),
    sa.Column("content", sa.Text, nullable=False, server_default=""),
    sa.Column(
        "message_ids", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")
    ),
    sa.Column("attachments", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    # The transaction's now(): every turn of one exchange shares it.
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    ),
    sa.UniqueConstraint("job_id", "position", name="turns_job_position_key"),
    sa.CheckConstraint("role in ('user', 'assistant', 'system')", name="turns_role_check"),
    sa.CheckConstraint("position >= 0", name="turns_position_check"),
    # History: the newest turns of one conversation.
    sa.Index(
        "turns_history_idx",
        "channel_id",
        "personality_id",
        sa.text("created_at DESC"),
        "id",
    ),
    # FindTurnsByMessageId, EditTurn, DeleteTurns: array overlap / containment.
    sa.Index("turns_message_ids_idx", "message_ids", postgresql_using="gin"),
    # ForgetUser and RemoveLastExchange.
    sa.Index("turns_user_idx", "user_id"),
    # PruneHistory (retention).
    sa.Index("turns_created_idx", "created_at"),
)

EMBEDDING_DIMENSIONS = 384
"""all-MiniLM-L6-v2's width; an OpenAI-compatible embedder is asked for this many too."""

SECTORS = ("episodic", "semantic", "procedural", "emotional", "reflective")

memories = sa.Table(
    "memories",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("personality_id", sa.Text, nullable=False),
    # '' is the personality's shared scope (lore), seen by every user.
    sa.Column("user_id", sa.Text, nullable=False, server_default=""),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("embedding", Vector(EMBEDDING_DIMENSIONS), nullable=False),
    sa.Column("sector", sa.Text, nullable=False),
    sa.Column("salience", sa.Float, nullable=False),
    sa.Column("tags", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    ),
    sa.Column(
        "last_accessed_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.text("now()"),
    ),
    # Decay is applied from here on (consolidation moves it forward).
    sa.Column(
        "decayed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    ),
    sa.Column(
        "source_turn_ids", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")
    ),
    # Set once the memory has been summarised into a reflective memory.
    sa.Column("reflected", sa.Boolean, nullable=False, server_default=sa.false()),
    # A fact replaced by a newer one that contradicts it: history, never retrieved.
    sa.Column(
        "superseded_by",
        UUID(as_uuid=True),
        sa.ForeignKey("memories.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
    # The neighbouring turns of the turn it was formed from: searched with the text (full
    # text and keyword scores), never shown in the prompt.
    sa.Column("context", sa.Text, nullable=False, server_default=""),
    sa.Column(
        "search_text",
        TSVECTOR,
        sa.Computed("to_tsvector('english', text || ' ' || context)", persisted=True),
        nullable=False,
    ),
    sa.CheckConstraint(
        "sector in ('episodic', 'semantic', 'procedural', 'emotional', 'reflective')",
        name="memories_sector_check",
    ),
    sa.CheckConstraint("salience >= 0 and salience <= 1", name="memories_salience_check"),
    sa.Index("memories_scope_idx", "personality_id", "user_id", "created_at"),
    sa.Index(
        "memories_embedding_idx",
        "embedding",
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
        postgresql_with={"m": 16, "ef_construction": 64},
    ),
    sa.Index("memories_search_text_idx", "search_text", postgresql_using="gin"),
    # Formation's claim: which of a batch's turns some memory was formed from already.
    sa.Index("memories_source_turns_idx", "source_turn_ids", postgresql_using="gin"),
    sa.Index("memories_user_idx", "user_id"),
)

waypoints = sa.Table(
    "waypoints",
    metadata,
    # Stored in both directions, so a memory's neighbours are one index range.
    sa.Column(
        "src_id",
        UUID(as_uuid=True),
        sa.ForeignKey("memories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "dst_id",
        UUID(as_uuid=True),
        sa.ForeignKey("memories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    ),
    sa.CheckConstraint("src_id <> dst_id", name="waypoints_no_loop_check"),
    sa.Index("waypoints_dst_idx", "dst_id"),
)

memory_modes = sa.Table(
    "memory_modes",
    metadata,
    sa.Column("personality_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True),
    # Nothing is stored while now() < incognito_until.
    sa.Column("incognito_until", sa.DateTime(timezone=True), nullable=True),
    # Nothing created before fresh_since is retrieved.
    sa.Column("fresh_since", sa.DateTime(timezone=True), nullable=True),
)

memory_uses = sa.Table(
    "memory_uses",
    metadata,
    # The long-term memories in the prompt of a delivered answer. Consolidation reinforces
    # them once the answer has stood for a while (not deleted, not regenerated), then drops
    # the row: retrieval alone never reinforces.
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("memory_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    ),
)

formation_outbox = sa.Table(
    "formation_outbox",
    metadata,
    # A stored exchange whose memories are not formed yet; written in the exchange's
    # transaction, deleted once its memories are, so a crash loses nothing.
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    ),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # A worker's lease (formation.py): the row is its own until claimed_until; it deletes
    # the row with its memories only while claimed_by is still its claim's token.
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("claimed_by", UUID(as_uuid=True), nullable=True),
)

fact_outbox = sa.Table(
    "fact_outbox",
    metadata,
    # A stored exchange whose facts gateway has yet to extract (StoreExchange.extract_facts),
    # written in the exchange's transaction; ClaimFactJobs leases it, StoreFacts deletes it.
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("personality_id", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    ),
    # The lease (fact_store.py): a claim's until claimed_until; StoreFacts stores the facts of
    # a claim only while every job of it is still claimed_by its token.
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("claimed_by", UUID(as_uuid=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Index("fact_outbox_created_idx", "created_at"),
)

forgotten = sa.Table(
    "forgotten",
    metadata,
    # Tombstones (tombstones.py): a user ForgetUser erased, a personality ForgetPersonality
    # erased. Gateway's internal ids (UUIDs, never reused): nothing is stored for them again.
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column(
        "forgotten_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    ),
    sa.CheckConstraint("kind in ('user', 'personality')", name="forgotten_kind_check"),
)

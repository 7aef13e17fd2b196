"""Memory's tables in Postgres schema `memory` (SQLAlchemy Core; migrations mirror these)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

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
)

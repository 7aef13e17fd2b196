"""memory.memories, waypoints, memory_modes, formation_outbox: long-term memory on pgvector.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR, UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "memory"
DIMENSIONS = 384


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.execute("create extension if not exists vector")
    op.create_table(
        "memories",
        sa.Column(
            "id", UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")
        ),
        sa.Column("personality_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False, server_default=""),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("embedding", Vector(DIMENSIONS), nullable=False),
        sa.Column("sector", sa.Text, nullable=False),
        sa.Column("salience", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column(
            "last_accessed_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()
        ),
        sa.Column("decayed_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column(
            "source_turn_ids",
            ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        sa.Column("reflected", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column(
            "search_text",
            TSVECTOR,
            sa.Computed("to_tsvector('english', text)", persisted=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name="memories_pkey"),
        sa.CheckConstraint(
            "sector in ('episodic', 'semantic', 'procedural', 'emotional', 'reflective')",
            name="memories_sector_check",
        ),
        sa.CheckConstraint("salience >= 0 and salience <= 1", name="memories_salience_check"),
        schema=SCHEMA,
    )
    op.create_index(
        "memories_scope_idx",
        "memories",
        ["personality_id", "user_id", "created_at"],
        schema=SCHEMA,
    )
    op.create_index(
        "memories_embedding_idx",
        "memories",
        ["embedding"],
        postgresql_using="hnsw",
        postgresql_ops={"embedding": "vector_cosine_ops"},
        postgresql_with={"m": 16, "ef_construction": 64},
        schema=SCHEMA,
    )
    op.create_index(
        "memories_search_text_idx",
        "memories",
        ["search_text"],
        postgresql_using="gin",
        schema=SCHEMA,
    )
    op.create_index("memories_user_idx", "memories", ["user_id"], schema=SCHEMA)
    op.create_table(
        "waypoints",
        sa.Column("src_id", UUID(as_uuid=True), nullable=False),
        sa.Column("dst_id", UUID(as_uuid=True), nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("src_id", "dst_id", name="waypoints_pkey"),
        sa.ForeignKeyConstraint(
            ["src_id"], [f"{SCHEMA}.memories.id"], ondelete="CASCADE", name="waypoints_src_id_fkey"
        ),
        sa.ForeignKeyConstraint(
            ["dst_id"], [f"{SCHEMA}.memories.id"], ondelete="CASCADE", name="waypoints_dst_id_fkey"
        ),
        sa.CheckConstraint("src_id <> dst_id", name="waypoints_no_loop_check"),
        schema=SCHEMA,
    )
    op.create_index("waypoints_dst_idx", "waypoints", ["dst_id"], schema=SCHEMA)
    op.create_table(
        "memory_modes",
        sa.Column("personality_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("incognito_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fresh_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("personality_id", "user_id", name="memory_modes_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "formation_outbox",
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("job_id", name="formation_outbox_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("formation_outbox", schema=SCHEMA)
    op.drop_table("memory_modes", schema=SCHEMA)
    op.drop_table("waypoints", schema=SCHEMA)
    op.drop_table("memories", schema=SCHEMA)

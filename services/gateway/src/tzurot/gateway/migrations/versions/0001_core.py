"""core: users, llm_configs, personalities and aliases, jobs, usage_log.

Revision ID: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column(
            "id",
            sa.UUID(as_uuid=False),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("platform_user_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), server_default="", nullable=False),
        sa.Column("timezone", sa.Text(), server_default="UTC", nullable=False),
        sa.Column("superuser", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("nsfw_verified", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform_user_id"),
        schema="core",
    )
    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.UUID(as_uuid=False),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("user_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("personality_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("guild_id", sa.Text(), server_default="", nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("request_content", sa.Text(), nullable=False),
        sa.Column(
            "request_message_ids", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("author_id", sa.Text(), nullable=False),
        sa.Column("author_name", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("content", sa.Text(), server_default="", nullable=False),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "delivered_message_ids",
            postgresql.ARRAY(sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status in ('queued', 'running', 'streamed', 'delivered', 'failed')",
            name="jobs_status_check",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["core.users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        schema="core",
    )
    op.create_index(
        "jobs_status_created_idx", "jobs", ["status", "created_at"], unique=False, schema="core"
    )
    op.create_table(
        "llm_configs",
        sa.Column(
            "id",
            sa.UUID(as_uuid=False),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("owner_user_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column(
            "advanced_parameters",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("context_window", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_referenced_messages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("free_use", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["owner_user_id"], ["core.users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="core",
    )
    op.create_index(
        "llm_configs_owner_name_key",
        "llm_configs",
        [sa.literal_column("coalesce(owner_user_id::text, '')"), sa.literal_column("lower(name)")],
        unique=True,
        schema="core",
    )
    op.create_table(
        "usage_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("job_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("request_type", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["user_id"], ["core.users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        schema="core",
    )
    op.create_index(
        "usage_log_user_created_idx",
        "usage_log",
        ["user_id", "created_at"],
        unique=False,
        schema="core",
    )
    op.create_table(
        "personalities",
        sa.Column(
            "id",
            sa.UUID(as_uuid=False),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("avatar_url", sa.Text(), server_default="", nullable=False),
        sa.Column("system_prompt", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "character",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("default_llm_config_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("error_message", sa.Text(), server_default="", nullable=False),
        sa.Column("birthday", sa.Text(), server_default="", nullable=False),
        sa.Column("owner_user_id", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("public", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("nsfw", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["default_llm_config_id"], ["core.llm_configs.id"], ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["owner_user_id"], ["core.users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
        schema="core",
    )
    op.create_index(
        "personalities_display_name_idx",
        "personalities",
        [sa.literal_column("lower(display_name)")],
        unique=False,
        schema="core",
    )
    op.create_table(
        "personality_aliases",
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("personality_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("display", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["personality_id"], ["core.personalities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alias"),
        schema="core",
    )
    op.create_index(
        op.f("ix_core_personality_aliases_personality_id"),
        "personality_aliases",
        ["personality_id"],
        unique=False,
        schema="core",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_core_personality_aliases_personality_id"),
        table_name="personality_aliases",
        schema="core",
    )
    op.drop_table("personality_aliases", schema="core")
    op.drop_index("personalities_display_name_idx", table_name="personalities", schema="core")
    op.drop_table("personalities", schema="core")
    op.drop_index("usage_log_user_created_idx", table_name="usage_log", schema="core")
    op.drop_table("usage_log", schema="core")
    op.drop_index("llm_configs_owner_name_key", table_name="llm_configs", schema="core")
    op.drop_table("llm_configs", schema="core")
    op.drop_index("jobs_status_created_idx", table_name="jobs", schema="core")
    op.drop_table("jobs", schema="core")
    op.drop_table("users", schema="core")

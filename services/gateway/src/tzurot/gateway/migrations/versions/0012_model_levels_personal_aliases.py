"""model levels and personal aliases: a user's default model, a channel's model, and aliases
that only their user uses.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UUID = postgresql.UUID(as_uuid=False)


def _config() -> sa.Column[str]:
    return sa.Column(
        "llm_config_id",
        _UUID,
        sa.ForeignKey("core.llm_configs.id", ondelete="CASCADE"),
        nullable=False,
    )


def _updated() -> sa.Column[object]:
    return sa.Column(
        "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "user_models",
        sa.Column(
            "user_id",
            _UUID,
            sa.ForeignKey("core.users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _config(),
        _updated(),
        schema="core",
    )
    op.create_table(
        "channel_models",
        sa.Column("channel_id", sa.Text(), primary_key=True),
        _config(),
        sa.Column("set_by_user_id", _UUID, sa.ForeignKey("core.users.id", ondelete="SET NULL")),
        _updated(),
        schema="core",
    )
    op.create_table(
        "personal_aliases",
        sa.Column(
            "user_id",
            _UUID,
            sa.ForeignKey("core.users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("alias", sa.Text(), primary_key=True),
        sa.Column(
            "personality_id",
            _UUID,
            sa.ForeignKey("core.personalities.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("display", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        schema="core",
    )
    op.create_index(
        "personal_aliases_personality_id_idx", "personal_aliases", ["personality_id"], schema="core"
    )


def downgrade() -> None:
    op.drop_table("personal_aliases", schema="core")
    op.drop_table("channel_models", schema="core")
    op.drop_table("user_models", schema="core")

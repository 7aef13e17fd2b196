"""vault.api_keys and vault.audit_log.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "vault"
_now = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("master_key_version", sa.Integer, nullable=False),
        sa.Column("nonce", BYTEA, nullable=False),
        sa.Column("ciphertext", BYTEA, nullable=False),
        sa.Column("hint", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("user_id", "provider", name="api_keys_pkey"),
        sa.CheckConstraint("master_key_version > 0", name="api_keys_version_check"),
        sa.CheckConstraint("octet_length(nonce) = 12", name="api_keys_nonce_check"),
        sa.CheckConstraint("char_length(hint) <= 4", name="api_keys_hint_check"),
        schema=SCHEMA,
    )
    op.create_index("api_keys_version_idx", "api_keys", ["master_key_version"], schema=SCHEMA)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
        sa.Column("caller", sa.Text, nullable=False),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False, server_default=""),
        sa.Column("provider", sa.Text, nullable=False, server_default=""),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="audit_log_pkey"),
        schema=SCHEMA,
    )
    op.create_index("audit_log_user_at_idx", "audit_log", ["user_id", "at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("audit_log", schema=SCHEMA)
    op.drop_table("api_keys", schema=SCHEMA)

"""Keyvault's tables in Postgres schema `vault` (SQLAlchemy Core; migrations mirror these)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import BYTEA

SCHEMA = "vault"
metadata = sa.MetaData(schema=SCHEMA)

_now = sa.text("now()")

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("master_key_version", sa.Integer, nullable=False),
    sa.Column("nonce", BYTEA, nullable=False),
    sa.Column("ciphertext", BYTEA, nullable=False),
    sa.Column("hint", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    # When the key was stored: set by every write of the key (PutKey) and by nothing else (not
    # a use, a rejection, a rewrap), so a read-back tells a re-stored key from the one before
    # (KeyRecord.stored_at).
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    # The provider's last rejection (401) of this key; cleared by a later use that worked
    # and by storing a new key. Set means the key is inactive.
    sa.Column("rejected_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("master_key_version > 0", name="api_keys_version_check"),
    sa.CheckConstraint("octet_length(nonce) = 12", name="api_keys_nonce_check"),
    sa.CheckConstraint("char_length(hint) <= 4", name="api_keys_hint_check"),
    # Rewrap finds stale rows by version.
    sa.Index("api_keys_version_idx", "master_key_version"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("caller", sa.Text, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False, server_default=""),
    sa.Column("provider", sa.Text, nullable=False, server_default=""),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Index("audit_log_user_at_idx", "user_id", "at"),
)

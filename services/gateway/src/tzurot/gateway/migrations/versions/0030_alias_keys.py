"""alias keys: global aliases are compared by their key, a Greek final sigma read as a
sigma (`translate(alias, <final sigma>, <sigma>)`: name_lookups.alias_key), which the primary
key on `alias` cannot serve, so every name and alias write read them all under the alias lock.
This index holds that expression; `text_pattern_ops` serves both its equality and its prefix
(`LIKE 'key%'`, the aliases a name begins) whatever the database's collation. Built in the
migration's transaction: alias writes wait for it, moments on tens of thousands of aliases.

Revision ID: 0030
Revises: 0029
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | Sequence[str] | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "personality_aliases_key_idx",
        "personality_aliases",
        [sa.text("translate(alias, '\u03c2', '\u03c3') text_pattern_ops")],
        schema="core",
    )


def downgrade() -> None:
    op.drop_index("personality_aliases_key_idx", "personality_aliases", schema="core")

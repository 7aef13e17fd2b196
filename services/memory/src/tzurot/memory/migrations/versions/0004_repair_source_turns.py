"""Repair memories.source_turn_ids polluted by the uncorrelated merge subquery.

Before this fix, merge() and absorb() gave a merged memory the turn ids of every memory in the
table, across users and personalities. A memory's sources are turns of its own scope: the same
personality, and the same user (or any user, for the personality's shared scope '').
Ids of turns that are gone (retention) are dropped too: they cannot be told apart.

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE memory.memories AS m
        SET source_turn_ids = ARRAY(
            SELECT DISTINCT s.id
            FROM unnest(m.source_turn_ids) AS s(id)
            JOIN memory.turns AS t ON t.id::text = s.id
            WHERE t.personality_id = m.personality_id
              AND (m.user_id = '' OR t.user_id = m.user_id)
            ORDER BY s.id
        )
        WHERE cardinality(m.source_turn_ids) > 0
        """
    )


def downgrade() -> None:
    """The polluted ids are not restored."""

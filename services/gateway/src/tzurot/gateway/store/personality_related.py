"""Rows of other tables that go with a personality: those that name it without a foreign key
(deleted with it: `delete_references`) and its group-channel traits (written with the rest of
an update: `set_talkativeness`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import Insert, insert

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import ConfigSource, DenyScope


def delete_references(which: sa.ColumnElement[bool]) -> list[sa.Delete]:
    """Deletes the rows that name the personalities `which` selects without a foreign key to
    them (a text scope and target, so nothing cascades): the settings of their level and of
    each user's level toward them, their lorebook attachments (the lorebooks stay), and the
    denylist entries toward them (by slug: one that outlived its personality would apply to
    the next personality given that slug). Run before the personalities' rows, in their
    transaction: the rows are what finds the ids and slugs, and a deletion run again finds
    nothing left to do. `jobs.personality_id` has no foreign key either and keeps the
    delivered and failed jobs on purpose (tables.py says why)."""
    p, s, a, d = t.personalities.c, t.settings.c, t.lorebook_attachments.c, t.denylist.c
    ids = sa.select(sa.cast(p.id, sa.Text)).where(which)
    return [
        sa.delete(t.settings).where(s.scope == ConfigSource.PERSONALITY.value, s.scope_id.in_(ids)),
        # "<user id>:<personality id>"
        sa.delete(t.settings).where(
            s.scope == ConfigSource.USER_PERSONALITY.value,
            sa.func.split_part(s.scope_id, ":", 2).in_(ids),
        ),
        sa.delete(t.lorebook_attachments).where(a.scope == "personality", a.target.in_(ids)),
        sa.delete(t.denylist).where(
            d.scope == DenyScope.PERSONALITY.value, d.scope_id.in_(sa.select(p.slug).where(which))
        ),
    ]


def set_talkativeness(personality_id: str, value: float) -> Insert:
    """The personality's talkativeness (0 to 1, checked by the caller) becomes `value`."""
    stmt = insert(g.personality_traits).values(personality_id=personality_id, talkativeness=value)
    return stmt.on_conflict_do_update(
        index_elements=[g.personality_traits.c.personality_id],
        set_={"talkativeness": value, "updated_at": sa.func.now()},
    )

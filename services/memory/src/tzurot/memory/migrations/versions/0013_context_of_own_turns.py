"""memories.context made again from the same user's turns only.

Formation took a memory's context (searched with it: `search_text` is generated from
`text || ' ' || context`) from the turn before its exchange in the conversation, whoever's
turn it was. ForgetUser deletes a user's turns and memories, not their words kept in
another user's memory, so those survived it. Formation now takes the turn before only if
it is the same user's or the channel's own (user_id ''), among the conversation's last 8
turns (`outbox_sql.PRECEDING_WINDOW`); this migration brings the memories formed before
to the same rule.

Whose turn a context came from was not recorded, and that turn may be gone since (deleted
by that very ForgetUser, by retention or DeleteTurns), so it cannot be told from the rows
which contexts hold another user's words. So no context is kept as it is: each one is
made again, as formation makes it now, from the turns that exist now, and cleared where
that cannot be done:

- the turn a memory was formed from is the one of its source turns that still exists, is
  of its scope (personality and user) and has its created_at (formation stamps a memory
  with its turn's time; turns merged in later are of other times). If those are turns of
  more than one exchange, or there is none (the turn is gone, or the memory was formed by
  a release that stamped it otherwise), the context is cleared: searched without it, the
  memory is still found by its own words;
- else the context is that turn's neighbours: the turn before it in its exchange, or for
  its exchange's first, the conversation's newest turn before it among the last 8 that is
  the same user's or the channel's; and the turn after it in its exchange. Each as
  formation writes it ("speaker: content and attachments' descriptions", at most 1,000
  characters in all), so a memory whose context was already its own is not rewritten.

Every context left is then made only of turns that exist and are the user's or the
channel's, whatever it held before. Memories without a context (added, reflected, facts)
are not touched. Pods of the previous release still running during the rollout form
memories the old way until they stop; run the migration again (downgrade to 0012, upgrade)
after the rollout to bring those too.

It commits every BATCH memories, so a write to a memory waits for one batch at most, not for
all of them, and a run cut short keeps what it did (docs/OPERATIONS.md, "Memory's migration
0013": minutes per 100,000 memories, most of it the HNSW index's upkeep).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tzurot.db.migrate import migration_lock_key

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SPACE = "".join(c for c in map(chr, range(1, 0x3001)) if c.isspace())
"""What Python's str.strip() strips (formation strips each part of a turn)."""
_UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_WINDOW = 8
"""memory_store.PRECEDING_WINDOW at this revision (outbox_sql.PRECEDING_WINDOW since)."""
_BACK = "ORDER BY p.created_at DESC, p.job_id DESC, p.position DESC"


def _said(turn: str) -> str:
    """SQL: the turn `turn` as formation writes it (forming._memory_text of its
    _memory_body); NULL if there is no such turn."""
    descriptions = (
        "(SELECT string_agg(btrim(a.value ->> 'description', :space), ' ' ORDER BY a.k)"  # noqa: S608
        f" FROM jsonb_array_elements({turn}.attachments) WITH ORDINALITY AS a(value, k)"
        " WHERE btrim(coalesce(a.value ->> 'description', ''), :space) <> '')"
    )
    body = f"concat_ws(' ', nullif(btrim({turn}.content, :space), ''), {descriptions})"
    return f"left(coalesce(nullif({turn}.author_name, ''), {turn}.role) || ': ' || {body}, 4000)"


BATCH = 1_000
"""Memories remade per committed statement. Each rewritten row is a new row version in every
index of memories, its HNSW index too (search_text changes, so no update is HOT): 1 to 5 ms a
row (docs/PERFORMANCE.md, "Migration 0013 at scale"). One statement for all of them would hold
their row locks, and formation's merges into them, for the whole of it."""


def _remake(batch: str) -> sa.TextClause:
    """The UPDATE remaking the contexts of the memories that `batch` (SQL on `m`) selects."""
    return sa.text(_REMAKE.format(batch=batch)).bindparams(space=_SPACE, uuid=_UUID)


_REMAKE = (
    # Each memory with a context, with the source turns that may be its own: existing, of
    # its scope, of its time.
    "WITH sources AS (SELECT m.id AS memory_id, t.id, t.job_id, t.position, t.channel_id,"  # noqa: S608
    "  t.personality_id, t.user_id, t.created_at"
    " FROM memory.memories m CROSS JOIN LATERAL unnest(m.source_turn_ids) AS s(turn_id)"
    " JOIN memory.turns t"
    "  ON t.id = CASE WHEN s.turn_id ~ :uuid THEN CAST(s.turn_id AS uuid) END"
    " WHERE m.context <> '' AND {batch} AND t.created_at = m.created_at"
    "  AND t.personality_id = m.personality_id AND t.user_id = m.user_id"
    # The turn it was formed from: the first of them, if they are of one exchange. (A window,
    # not `memory_id IN (... HAVING count(DISTINCT job_id) = 1)`: the planner guesses one row
    # for `sources` and joined the two by a nested loop, quadratic in the memories.)
    "), origin AS (SELECT DISTINCT ON (memory_id) * FROM (SELECT *,"
    "  min(job_id) OVER mine = max(job_id) OVER mine AS one_exchange"
    "  FROM sources WINDOW mine AS (PARTITION BY memory_id)) AS s WHERE one_exchange"
    "  ORDER BY memory_id, position"
    # Its neighbours, as formation (forming._context) takes them now. Materialized: made once,
    # not again for each memory of the batch (the planner guesses one row here too).
    "), remade AS MATERIALIZED (SELECT o.memory_id,"
    f"  left(concat_ws(E'\\n', {_said('inside')}, {_said('before_it')}, {_said('after_it')}),"
    " 1000) AS context"
    " FROM origin o"
    " LEFT JOIN LATERAL (SELECT * FROM memory.turns x WHERE x.job_id = o.job_id"
    "  AND x.position < o.position ORDER BY x.position DESC LIMIT 1) AS inside ON true"
    # Only for an exchange's first turn; the last 8 are those not older than the 8th newest
    # time (read from turns_history_idx), not the whole of the channel's past sorted.
    " LEFT JOIN LATERAL (SELECT * FROM (SELECT * FROM memory.turns p"
    "  WHERE p.channel_id = o.channel_id AND p.personality_id = o.personality_id"
    "  AND p.created_at < o.created_at AND p.created_at >= coalesce((SELECT b.created_at"
    "   FROM memory.turns b WHERE b.channel_id = o.channel_id"
    "   AND b.personality_id = o.personality_id AND b.created_at < o.created_at"
    f"   ORDER BY b.created_at DESC OFFSET {_WINDOW - 1} LIMIT 1), '-infinity')"
    f"  AND inside.id IS NULL {_BACK} LIMIT {_WINDOW}) AS p"
    f"  WHERE p.user_id IN (o.user_id, '') {_BACK} LIMIT 1) AS before_it ON true"
    " LEFT JOIN LATERAL (SELECT * FROM memory.turns x WHERE x.job_id = o.job_id"
    "  AND x.position > o.position ORDER BY x.position LIMIT 1) AS after_it ON true"
    "), target AS (SELECT m.id, coalesce(r.context, '') AS context FROM memory.memories m"
    "  LEFT JOIN remade r ON r.memory_id = m.id WHERE m.context <> '' AND {batch}"
    ") UPDATE memory.memories m SET context = target.context FROM target"
    " WHERE m.id = target.id AND m.context <> target.context"
)
_FIRST = sa.text("SELECT id FROM memory.memories WHERE context <> '' ORDER BY id LIMIT 1")
_NEXT = sa.text(
    "SELECT id FROM memory.memories WHERE context <> '' AND id >= :start"
    " ORDER BY id OFFSET :size LIMIT 1"
)
_MIGRATION_LOCK = migration_lock_key("memory")
"""The key of tzurot.db.migrate's advisory lock on this schema's migrations."""


def upgrade() -> None:
    """Batches of BATCH memories in id order, each committed (a memory's context depends on
    turns only, so batches give what one statement gives). Offline (--sql): one statement."""
    migration = op.get_context()
    if migration.as_sql:
        op.execute(_remake("true"))
        return
    # Outside the run's transaction its advisory lock and SET LOCAL lock_timeout are gone:
    # the lock is held for the session meanwhile (taken before the commit, so no other run
    # comes in between), and the timeout set for the session.
    lock = {"key": _MIGRATION_LOCK}
    op.execute(sa.text("SELECT pg_advisory_lock(hashtext(:key))").bindparams(**lock))
    timeout = op.get_bind().scalar(sa.text("SELECT current_setting('lock_timeout')"))
    with migration.autocommit_block():
        bind = op.get_bind()
        bind.execute(sa.text("SELECT set_config('lock_timeout', :t, false)"), {"t": timeout})
        start = bind.scalar(_FIRST)
        while start is not None:
            stop = bind.scalar(_NEXT, {"start": start, "size": BATCH})
            bounds = {"start": start} if stop is None else {"start": start, "stop": stop}
            batch = "m.id >= :start" if stop is None else "m.id >= :start AND m.id < :stop"
            bind.execute(_remake(batch), bounds)
            start = stop
    # Back in a transaction: the run's lock for it, then the session's let go.
    op.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))").bindparams(**lock))
    op.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:key))").bindparams(**lock))


def downgrade() -> None:
    """The contexts are not put back: some held another user's words."""

"""Deleting everything memory keeps of one user or one personality, after its tombstone
(tombstones.py): the deletes ForgetUser and ForgetPersonality share, by the column that names
whose rows they are.

In one transaction: first the turns and, from the same snapshot, the outbox rows and memory
uses of their jobs and the fact outbox rows; then the memory modes; then the memories (their
links cascade). A formation batch or a StoreFacts that claimed outbox rows before and writes
later finds them gone and writes nothing of them (formation writes only the jobs still
leased to it; StoreFacts stores facts only for jobs still waiting).

Nothing of theirs is left in other rows: a memory's context (searched with it) is made only
of its own user's turns or the channel's (`CLAIM`'s preceding turn, outbox_sql.py), so the
memories of the other users of a channel hold none of a forgotten user's words.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory import scoring
from tzurot.memory.tables import memories, memory_modes

Owner = Literal["user_id", "personality_id"]
"""The column naming whose rows go: a user's, or a personality's."""


def _forget_turns(owner: Owner) -> sa.TextClause:
    return sa.text(
        f"WITH gone AS (DELETE FROM memory.turns WHERE {owner} = :id RETURNING job_id"  # noqa: S608 - a column of ours
        "), jobs AS (SELECT DISTINCT job_id FROM gone"
        "), formation AS (DELETE FROM memory.formation_outbox"
        "  WHERE job_id IN (SELECT job_id FROM jobs)"
        "), uses AS (DELETE FROM memory.memory_uses WHERE job_id IN (SELECT job_id FROM jobs)"
        f"), facts AS (DELETE FROM memory.fact_outbox WHERE {owner} = :id"
        ") SELECT count(*) FROM gone"
    )


_FORGET_TURNS = {owner: _forget_turns(owner) for owner in ("user_id", "personality_id")}


async def erase(engine: AsyncEngine, owner: Owner, owner_id: str) -> tuple[int, int]:
    """Deletes the rows `owner` names `owner_id` in (the module says which, in which order);
    how many turns and memories went."""
    async with engine.begin() as conn:
        turns = int(await conn.scalar(_FORGET_TURNS[owner], {"id": owner_id}) or 0)
        await conn.execute(sa.delete(memory_modes).where(memory_modes.c[owner] == owner_id))
        gone = await conn.execute(sa.delete(memories).where(memories.c[owner] == owner_id))
    # The texts searches tokenised: none of them stays in this process (another replica's
    # cache forgets them as it fills).
    scoring.document.cache_clear()
    return turns, int(gone.rowcount)

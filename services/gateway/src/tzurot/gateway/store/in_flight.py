"""A deleted personality's answers in flight: none is stored into history afterwards, and
none a dead bot left half shown is left unexplained (unfinished.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import tables as t
from tzurot.gateway.domain import JobStatus
from tzurot.gateway.store.previews import why_withheld, withhold_unfinished

_IN_FLIGHT = (JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.STREAMED.value)


def delete_answers_in_flight(of: sa.ColumnElement[bool]) -> sa.Delete:
    """Deletes the jobs (`of`: which personalities') not answered and delivered yet: queued,
    running, or streamed and waiting for their confirmation or for memory. Nothing of them is
    stored into history afterwards (a confirmation finds no job; a run that loses its job
    stops and writes nothing, each told why: lost_jobs.py); failed and delivered jobs stay,
    they write nothing more."""
    return sa.delete(t.jobs).where(of, t.jobs.c.status.in_(_IN_FLIGHT))


async def drop_personality_answers(
    conn: AsyncConnection, personality_id: str, now: datetime | None = None
) -> int:
    """In the caller's transaction, deletes the personality's answers in flight
    (`delete_answers_in_flight`); how many. Each one a dead bot left showing a preview is
    handed to the bot withheld first (store/previews.withhold_unfinished): the bot turns the
    preview into why, for whichever user it answered (PERSONALITY_DELETED, or
    USER_DATA_DELETING when her data is being deleted too), due by `now`, the gateway's clock
    (withhold_unfinished)."""
    of = t.jobs.c.personality_id == personality_id
    await conn.execute(withhold_unfinished(of, why_withheld(), now))
    return int((await conn.execute(delete_answers_in_flight(of))).rowcount)

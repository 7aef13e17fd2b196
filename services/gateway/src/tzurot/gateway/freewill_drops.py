"""What a dropped free-will turn does: its slot of the day's budget is given back, and when it
was dropped for a reason that will not pass by itself (the payer's key refused or out of
credit, the channel gone or closed to the bot, the personality gone) free will stops there for
that personality, with the reason: /freewill status says why, and no more turns are queued
that would be dropped the same way.

It runs in the transaction that acknowledges the event (or gives up on it), so a turn is given
back once. A turn's dedup key names its slot (`freewill:<conversation>:<local day>:<n>`, n ≤
the daily budget); a dropped turn's key is retired, and the scheduler queues the next turn in
the lowest free slot. Locks are taken event first, then the channel, then the personality.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import group_tables as g

log = structlog.get_logger(__name__)

KEY_PREFIX = "freewill:"
DISABLING_REASONS = frozenset(
    {
        "INVALID_API_KEY",
        "PROVIDER_QUOTA_EXCEEDED",
        "NO_API_KEY",
        "NO_PAYER",
        "FORBIDDEN",
        "CHANNEL_GONE",
        "PERSONALITY_NOT_FOUND",
    }
)
"""Drop reasons that switch the personality's free will off in that channel."""


def slot_key(conversation: str, day: date, n: int) -> str:
    """The dedup key of the day's n-th free-will turn in a conversation."""
    return f"{KEY_PREFIX}{conversation}:{day.isoformat()}:{n}"


def parse_slot(key: str) -> tuple[str, date, int] | None:
    """(conversation, local day, n) of a free-will turn's dedup key; None for other keys."""
    if not key.startswith(KEY_PREFIX):
        return None
    try:
        conversation, day, n = key.removeprefix(KEY_PREFIX).rsplit(":", 2)
        return conversation, date.fromisoformat(day), int(n)
    except ValueError:
        return None


async def free_slot(conn: AsyncConnection, conversation: str, day: date, budget: int) -> int | None:
    """The lowest slot of the day not taken by a turn queued (and not dropped); None: none."""
    keys = [slot_key(conversation, day, n) for n in range(1, budget + 1)]
    e = g.bot_events.c
    taken = set((await conn.scalars(sa.select(e.dedup_key).where(e.dedup_key.in_(keys)))).all())
    return next((n for n, key in enumerate(keys, 1) if key not in taken), None)


async def turn_dropped(conn: AsyncConnection, event: sa.RowMapping, reason: str) -> None:
    """`event` (a bot_events row, locked by the caller) was dropped for `reason`."""
    slot = parse_slot(event["dedup_key"] or "")
    if slot is None:
        return
    conversation, day, _ = slot
    fc, e = g.freewill_channels.c, g.bot_events.c
    refunded = await conn.scalar(
        sa.update(g.freewill_channels)
        .where(fc.conversation_id == conversation, fc.used_day == day, fc.used_count > 0)
        .values(used_count=fc.used_count - 1)
        .returning(fc.used_count)
    )
    retired = e.dedup_key + ":dropped:" + sa.cast(e.id, sa.Text)
    await conn.execute(sa.update(g.bot_events).where(e.id == event["id"]).values(dedup_key=retired))
    log.info(
        "freewill.turn_dropped",
        conversation=conversation,
        reason=reason,
        refunded=refunded is not None,
    )
    if reason not in DISABLING_REASONS or event["personality_id"] is None:
        return
    fp = g.freewill_personalities.c
    result = await conn.execute(
        sa.update(g.freewill_personalities)
        .where(
            fp.conversation_id == conversation,
            fp.personality_id == event["personality_id"],
            fp.enabled.is_(True),
        )
        .values(enabled=False, disabled_reason=reason, updated_at=sa.func.now())
    )
    if result.rowcount:
        log.info(
            "freewill.disabled",
            conversation=conversation,
            personality=str(event["personality_id"]),
            reason=reason,
        )

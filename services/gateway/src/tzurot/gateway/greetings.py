"""A character's greeting when a conversation with it starts in a channel.

"Starts": the personality is activated in a channel (or thread) by `/channel activate` and
has no history there yet; a chat begun by mentioning it does not greet (the user spoke
first, and the answer is the start). The greeting is one of the card's `first_mes` and
`alternate_greetings` (drawn, seeded by the activation), or of its `group_only_greetings`
when another personality is already active in the channel and the card has some. `{{char}}`
(the nickname, else the name) and `{{user}}` (who activated it) are expanded, like `<BOT>`
and `<USER>`. It is queued as a bot event (kind "greeting"): the bot posts it as the
personality, and its acknowledgement makes it the conversation's first turn and records its
index in the conversation's lore state (lorebook entries with `@@is_greeting N` fire only
after greeting N), once, even when memory is away then (event_acks.py). Like a free-will
post, the greeting is said to the channel, not to whoever activated it: an assistant turn
stored with no user (in the channel's history for everyone, in no one's own: no user's export
holds it, nor does their undo, clear, ❌ or data deletion take it), from which no long-term
memory forms. The event keeps who activated it (`payer_user_id`, though nothing is paid), for
their export.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from tzurot.gateway.domain import HistoryTurn, Location, Personality
from tzurot.gateway.group_store import BotEventRow, GroupStore
from tzurot.gateway.ports import Memory

KIND = "greeting"
_CHAR = re.compile(r"\{\{char\}\}|<BOT>|<char>", re.IGNORECASE)
_USER = re.compile(r"\{\{user\}\}|<USER>", re.IGNORECASE)


def greetings(card: Mapping[str, Any], *, group: bool) -> list[tuple[int, str]]:
    """The greetings to draw from, each with its index (0 first_mes, n alternate n-1, then
    the group-only ones)."""
    first = str(card.get("first_mes") or "")
    alternates = [str(g) for g in card.get("alternate_greetings") or [] if str(g).strip()]
    ordinary = [(0, first)] if first.strip() else []
    ordinary += [(i + 1, text) for i, text in enumerate(alternates)]
    group_only = [str(g) for g in card.get("group_only_greetings") or [] if str(g).strip()]
    if group and group_only:
        start = 1 + len(alternates)
        return [(start + i, text) for i, text in enumerate(group_only)]
    return ordinary


def expand(text: str, *, char: str, user: str) -> str:
    return _USER.sub(lambda _: user, _CHAR.sub(lambda _: char, text)).strip()


class Greetings:
    def __init__(self, store: GroupStore, memory: Memory, *, seed: str = "") -> None:
        self._store, self._memory, self._seed = store, memory, seed

    async def activated(  # the activation's facts
        self,
        where: Location,
        personality: Personality,
        *,
        user_id: str | None,
        user_name: str,
        others_active: bool,
        activation_key: str,
    ) -> str | None:
        """Queues the personality's greeting for a conversation that starts now; the event
        id, or None (no greeting, history there already, or queued for this activation)."""
        choices = greetings(personality.card, group=others_active)
        if not choices:
            return None
        if await self._memory.has_history(where.conversation_id, personality.id):
            return None
        key = f"{KIND}:{where.conversation_id}:{personality.id}:{activation_key}"
        index, text = random.Random(f"{self._seed}:{key}").choice(choices)  # noqa: S311  # a pick, not a secret
        char = str(personality.card.get("nickname") or "") or personality.display_name
        return await self._store.add_event(
            {
                "kind": KIND,
                "dedup_key": key,
                "guild_id": where.guild_id,
                "channel_id": where.channel_id,
                "thread_id": where.thread_id,
                "nsfw_channel": where.nsfw_channel,
                "personality_id": personality.id,
                "payer_user_id": user_id,
                "reason": f"greeting {index}",
                "text": expand(text, char=char, user=user_name or "you")[:20000],
            }
        )


def greeting_turn(event: BotEventRow, personality: Personality) -> HistoryTurn:
    """The posted greeting (`event`, acknowledged with its message ids) as the conversation's
    first turn: the personality's, said to the channel."""
    return HistoryTurn(
        "assistant", personality.slug, personality.display_name, event.text, event.message_ids
    )


def index_of(event: BotEventRow) -> int:
    """The greeting's index, from the event's reason ("greeting <n>")."""
    _, _, number = event.reason.partition(" ")
    return int(number) if number.isdigit() else 0

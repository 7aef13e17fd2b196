"""What the bot posted for one (message, personality), remembered for replies, reactions and
Inspect: a bounded book by Discord message id, and the latest answer per (channel,
personality)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import discord

from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


@dataclass
class Answer:
    """What the bot posted for one (message, personality): for replies and reactions."""

    personality: common.Personality
    user_id: int
    channel: discord.abc.Messageable
    request: gw.GenerateRequest
    message_ids: list[int] = field(default_factory=list)
    job_id: str = ""
    shown: common.Personality = field(default_factory=common.Personality)  # as resolved
    # Why nothing was posted, when a scheduled turn failed quietly (e.g. CHAIN_INTERRUPTED),
    # and the gRPC code it failed with ("" when it was not the gateway's refusal).
    error_reason: str = ""
    error_code: str = ""
    # The gateway asks for the answer to be spoken once delivered (voice).
    speak: bool = False


class AnswerBook:
    """The answers this process posted, oldest forgotten first past `capacity`."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._by_message: OrderedDict[int, Answer] = OrderedDict()
        self._latest: dict[tuple[int, str], Answer] = {}

    def get(self, message_id: int) -> Answer | None:
        return self._by_message.get(message_id)

    def remember(self, message_id: int, answer: Answer) -> None:
        self._by_message[message_id] = answer

    def forget(self, message_id: int) -> None:
        self._by_message.pop(message_id, None)

    def answers_to(self, message_id: str) -> list[Answer]:
        """The answers remembered to the user's message `message_id` (one per personality
        that answered it; a 🔄's in place of the one it replaced), oldest first."""
        found: dict[int, Answer] = {}
        for answer in list(self._by_message.values()):
            if message_id in answer.request.message_ids:
                found.setdefault(id(answer), answer)
        return list(found.values())

    def trim(self) -> None:
        while len(self._by_message) > self._capacity:
            self._by_message.popitem(last=False)

    def set_latest(self, channel_id: int, slug: str, answer: Answer) -> None:
        self._latest[(channel_id, slug)] = answer

    def drop_latest(self, channel_id: int, slug: str, answer: Answer) -> bool:
        """Forgets `answer` as the latest in its channel; whether it was the latest."""
        key = (channel_id, slug)
        if self._latest.get(key) is answer:
            del self._latest[key]
            return True
        return False

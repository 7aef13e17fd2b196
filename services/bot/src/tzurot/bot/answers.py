"""What the bot posted for one (message, personality), remembered for replies, reactions and
Inspect: a bounded book by Discord message id, and the latest answer per (channel,
personality)."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import discord

from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

REGENERATION_MARK = "#regen"
"""What a 🔄's key adds to the key of the answer it replaces: `<key>#regen<n>.<token>`
(at most 6 + 7 + 1 + 12 characters more at a million 🔄s: a message id and a personality's
name, 101 at most, stay well within the gateway's 200 for a key)."""


def new_token() -> str:
    """A 🔄's own part of its key: 48 random bits, 12 hex digits."""
    return secrets.token_hex(6)


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
    # When the user last edited the message answered, as that edit was applied (edits.py).
    edited_at: datetime | None = None


@dataclass
class _Indexed:
    """Where an answer is in `AnswerBook`'s index of the user's messages answered."""

    asked_with: tuple[str, ...]  # its request's message ids, as when first remembered
    posted: int = 0  # how many of its messages the book remembers


class AnswerBook:
    """The answers this process posted, oldest forgotten first past `capacity`; indexed by
    the user's message they answer too (`answers_to`, on every message update), so long as
    any message of theirs is remembered."""

    def __init__(self, capacity: int, *, token: Callable[[], str] = new_token) -> None:
        """`token`: what makes each 🔄's key one never asked before (tests pass their own)."""
        self._capacity, self._token = capacity, token
        self._by_message: OrderedDict[int, Answer] = OrderedDict()
        # By a user's message id: the answers to it (by `id()`, oldest first).
        self._to_message: dict[str, dict[int, Answer]] = {}
        self._indexed: dict[int, _Indexed] = {}  # by the answer's `id()`
        self._latest: dict[tuple[int, str], Answer] = {}
        self._regenerations: OrderedDict[str, int] = OrderedDict()
        self._regenerating: dict[str, str] = {}  # the key of a 🔄 being made, by its base

    def get(self, message_id: int) -> Answer | None:
        return self._by_message.get(message_id)

    def remember(self, message_id: int, answer: Answer) -> None:
        """`answer` posted as `message_id`. Its request's message ids (those it answers) are
        read now, when the first of its messages is remembered: they never change after."""
        previous = self._by_message.get(message_id)
        if previous is answer:
            return
        if previous is not None:
            self._unindex(previous)
        self._by_message[message_id] = answer
        entry = self._indexed.get(id(answer))
        if entry is None:
            entry = self._indexed[id(answer)] = _Indexed(
                tuple(dict.fromkeys(answer.request.message_ids))
            )
            for asked in entry.asked_with:
                self._to_message.setdefault(asked, {})[id(answer)] = answer
        entry.posted += 1

    def forget(self, message_id: int) -> None:
        answer = self._by_message.pop(message_id, None)
        if answer is not None:
            self._unindex(answer)

    def answers_to(self, message_id: str) -> list[Answer]:
        """The answers remembered to the user's message `message_id` (one per personality
        that answered it; a 🔄's in place of the one it replaced), oldest first."""
        return list(self._to_message.get(message_id, {}).values())

    def _unindex(self, answer: Answer) -> None:
        """One message of `answer` forgotten: the last one takes it out of `answers_to`."""
        entry = self._indexed[id(answer)]
        entry.posted -= 1
        if entry.posted:
            return
        del self._indexed[id(answer)]
        for asked in entry.asked_with:
            answers = self._to_message[asked]
            del answers[id(answer)]
            if not answers:
                del self._to_message[asked]

    def next_regeneration(self, key: str) -> str:
        """The key of a new 🔄 of the answer asked under `key`: `…#regen<n>.<token>`, n past
        both the answer's own count and every 🔄 this process asked for the same message and
        personality, the token new for each 🔄, so no 🔄 lands on a key asked before (by an
        earlier bot process too, or one whose count this book forgot): the gateway would
        answer such a key with its job's stored failure. While one is being made, its key
        (two quick 🔄s are one job)."""
        base, _, asked_as = key.partition(REGENERATION_MARK)
        asked = self._regenerating.get(base)
        if asked is not None:  # a 🔄 of it still being made: the same job, not a second one
            return asked
        count = asked_as.partition(".")[0]  # "" for an answer no 🔄 made
        number = max(int(count) if count.isdigit() else 0, self._regenerations.get(base, 0)) + 1
        self._regenerations[base] = number
        self._regenerations.move_to_end(base)
        while len(self._regenerations) > self._capacity:
            self._regenerations.popitem(last=False)
        self._regenerating[base] = f"{base}{REGENERATION_MARK}{number}.{self._token()}"
        return self._regenerating[base]

    def regeneration_ended(self, key: str) -> None:
        """The 🔄 asked under `key` was posted or failed: the next one gets a new key."""
        base = key.partition(REGENERATION_MARK)[0]
        if self._regenerating.get(base) == key:
            del self._regenerating[base]

    def trim(self) -> None:
        while len(self._by_message) > self._capacity:
            self._unindex(self._by_message.popitem(last=False)[1])

    def set_latest(self, channel_id: int, slug: str, answer: Answer) -> None:
        self._latest[(channel_id, slug)] = answer

    def drop_latest(self, channel_id: int, slug: str, answer: Answer) -> bool:
        """Forgets `answer` as the latest in its channel; whether it was the latest."""
        key = (channel_id, slug)
        if self._latest.get(key) is answer:
            del self._latest[key]
            return True
        return False

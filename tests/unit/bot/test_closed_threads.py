"""Locked and archived threads (discord-api-docs topics/threads.mdx): in a thread locked to the
bot (no Manage Threads) nothing is generated, paid for or told; an answer whose thread a
moderator closes (archives) while it streams stops where it was, with no notice (one would
reopen the thread), and confirms what was delivered."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from structlog.testing import capture_logs

from tests.unit.bot.test_answering import (
    LILITH,
    EveryPost,
    FirstPostOnly,
    GenerateCall,
    SpeakingStub,
    Stub,
    Voices,
    Webhooks,
    poster,
    refusal,
)
from tzurot.bot.answering import Poster
from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.config import BotSettings
from tzurot.bot.delivery import LOCKED_THREAD, delivery_problem, locked_thread
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.voice import voice_problem
from tzurot.v1 import gateway_pb2 as gw

THREAD_ARCHIVED, THREAD_LOCKED = 50083, 160005
ALLOWED = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    manage_webhooks=True,
    attach_files=True,
    send_voice_messages=True,
    read_message_history=True,
)


class Parent(discord.TextChannel):
    """The thread's parent channel, which holds the webhook."""

    def __init__(self, guild: Any) -> None:  # no connection state: nothing else is read
        self.id = 41
        self.guild = guild

    def permissions_for(self, obj: Any, /) -> discord.Permissions:
        return ALLOWED


class Thread(discord.Thread):
    """A thread as the poster reads it: `locked`/`archived` as the gateway's events left them;
    `notices` are what the bot posted itself."""

    def __init__(
        self, *, locked: bool = False, manage_threads: bool = False, cached: bool = True
    ) -> None:
        self.id = 42
        self.guild = SimpleNamespace(me=object() if cached else None)  # type: ignore[assignment]  # only `me` is read
        self.locked, self.archived = locked, False
        self._perms = discord.Permissions(ALLOWED.value, manage_threads=manage_threads)
        self._parent = Parent(self.guild)
        self.notices: list[str] = []

    @property
    def parent(self) -> Any:
        return self._parent

    def permissions_for(self, obj: Any, /) -> discord.Permissions:
        return self._perms

    def typing(self) -> Any:
        return contextlib.nullcontext()

    async def send(self, content: str | None = None, **_: Any) -> Any:
        self.notices.append(content or "")
        return discord.Object(id=1)


def test_a_locked_thread_is_closed_to_a_bot_without_manage_threads() -> None:
    locked = Thread(locked=True)
    assert locked_thread(locked)
    assert delivery_problem(locked) == LOCKED_THREAD
    assert "locked" in (voice_problem(locked) or "")  # no voice paid for there either
    assert locked_thread(Thread(locked=True, cached=False))  # permissions unknown: closed
    for open_to_it in (Thread(), Thread(locked=True, manage_threads=True)):
        assert not locked_thread(open_to_it)
        assert delivery_problem(open_to_it) is None
        assert voice_problem(open_to_it) is None


async def test_nothing_is_generated_or_told_in_a_locked_thread() -> None:
    stub, webhooks = Stub(), Webhooks(RuntimeError("nothing is posted"))
    answers, _ = poster(stub, webhooks)
    thread = Thread(locked=True)
    turn = Answer(LILITH, 0, thread, gw.GenerateRequest(), shown=LILITH)
    with capture_logs() as logs:
        await answers.post(thread, None, LILITH, gw.GenerateRequest(), 7)  # a moderator's
        await answers.post(thread, None, LILITH, gw.GenerateRequest(), 0, quiet=turn)
    assert stub.calls == []  # nothing asked of the gateway: nothing paid for
    assert webhooks.looked_up == 0
    assert thread.notices == []  # Discord would refuse it: not even tried
    assert turn.error_reason == "FORBIDDEN"  # the turn is dropped (free will stops there)
    assert [e["locked_thread"] for e in logs if e["event"] == "bot.channel_forbidden"] == [
        True,
        True,
    ]
    moderated = Thread(locked=True, manage_threads=True)  # a bot with Manage Threads may
    answers, speaking_stub, _ = speaking(EveryPost(RuntimeError("unused")))
    await answers.post(moderated, None, LILITH, gw.GenerateRequest(), 7)
    assert speaking_stub.confirmed == [["501"]]


def speaking(webhooks: Webhooks) -> tuple[Poster, SpeakingStub, Voices]:
    stub, voices = SpeakingStub(), Voices()
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    settings = BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0)
    return Poster(gateway, webhooks, settings, AnswerBook(10), voice=voices), stub, voices  # type: ignore[arg-type]  # fakes of the pool and the voice poster


@pytest.mark.parametrize("status", [403, 400])
async def test_an_edit_refused_in_a_thread_closed_mid_stream_stops_quietly(status: int) -> None:
    """Discord's status for 50083 is not documented: either way the answer stops where it
    was, what was posted is confirmed, nothing is told (a notice would reopen the thread),
    no voice follows, and the thread is not taken for one forbidding the bot."""
    answers, stub, voices = speaking(FirstPostOnly(refusal(status, THREAD_ARCHIVED)))
    thread = Thread()
    with capture_logs() as logs:
        await answers.post(thread, None, LILITH, gw.GenerateRequest(), 7)
    assert thread.notices == []
    assert stub.confirmed == [["501"]]  # delivered as far as it was
    assert voices.asked == []
    assert "bot.thread_closed" in [e["event"] for e in logs]
    await answers.post(thread, None, LILITH, gw.GenerateRequest(), 7)  # reopened by a user
    assert len(stub.calls) == 2  # answered again: not remembered as forbidden


async def test_a_thread_locked_mid_stream_is_not_told_either() -> None:
    answers, stub, _ = speaking(FirstPostOnly(refusal(403, THREAD_LOCKED)))
    thread = Thread()
    await answers.post(thread, None, LILITH, gw.GenerateRequest(), 7)
    assert thread.notices == []
    assert stub.confirmed == [["501"]]


class Sends(Webhooks):
    """Records the answer's posts (none should come)."""

    def __init__(self) -> None:
        super().__init__(RuntimeError("unused"))
        self.sent: list[str] = []

    async def send(self, channel: object, content: str, **_: Any) -> Any:
        self.sent.append(content)
        return SimpleNamespace(id=501)


class ClosingStub(Stub):
    """A moderator closes the thread as the generation starts (the bot holds THREAD_UPDATE)."""

    def __init__(self, thread: Thread) -> None:
        super().__init__()
        self.thread = thread

    def Generate(self, request: gw.GenerateRequest, timeout: float) -> GenerateCall:
        self.thread.archived = True
        return super().Generate(request, timeout)


async def test_no_new_message_reopens_a_thread_closed_while_the_answer_was_coming() -> None:
    """Discord would take a new message there and unarchive the thread: the bot posts none."""
    thread, webhooks = Thread(), Sends()
    answers, _ = poster(ClosingStub(thread), webhooks)
    with capture_logs() as logs:
        await answers.post(thread, None, LILITH, gw.GenerateRequest(), 7)
    assert webhooks.sent == []
    assert thread.notices == []
    assert "bot.thread_closed" in [e["event"] for e in logs]

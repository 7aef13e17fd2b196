"""A reply reads its history and memories in one call to memory (GetReplyContext's port)
when the message is the query; the report says what the answer went without."""

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import REGISTRY

from tests.unit.inference.test_service import (
    REQUEST,
    USER,
    FakeHistory,
    FakeModel,
    FakeVault,
    collect,
)
from tzurot.inference.domain import (
    GroupMember,
    HistoryTurn,
    MemoryItem,
    Persona,
    ReplyContext,
    ReplyContextQuery,
    ReplyFinished,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.service import Inference
from tzurot.runtime.errors import Unavailable

STAMP = datetime(2025, 6, 1, tzinfo=UTC)
TURNS = [
    HistoryTurn("user", "Bob", "yo", created_at=STAMP),
    HistoryTurn("assistant", "Lilith", "Greetings.", created_at=STAMP),
]
MOTHS = MemoryItem("m-1", "Ann is afraid of moths.", 0.9)


class FakeContext:
    def __init__(self, found: ReplyContext | Exception) -> None:
        self.found = found
        self.asked: list[ReplyContextQuery] = []

    async def reply_context(self, query: ReplyContextQuery) -> ReplyContext:
        self.asked.append(query)
        if isinstance(self.found, Exception):
            raise self.found
        return self.found


class FakeMemories:
    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    async def relevant_memories(self, **query: Any) -> list[MemoryItem]:
        self.asked.append(query)
        return [MOTHS]


def make(
    context: FakeContext, history: FakeHistory | None = None, memories: FakeMemories | None = None
) -> tuple[Inference, FakeModel]:
    model = FakeModel()
    inference = Inference(
        providers=ProviderRegistry(),
        keys=KeyResolver(FakeVault({(USER, "openrouter"): "sk-userKEYzq7Wm3Xv9Rt2"})),
        history=history or FakeHistory([]),
        llm=model,
        history_limit=30,
        memories=memories,
        context=context,
    )
    return inference, model


async def finish(events: AsyncIterator[Any]) -> ReplyFinished:
    finished = (await collect(events))[-1]
    assert isinstance(finished, ReplyFinished)
    return finished


def degraded(reason: str) -> float:
    return REGISTRY.get_sample_value("tzurot_degraded_answers_total", {"reason": reason}) or 0.0


async def test_history_and_memories_come_in_one_read() -> None:
    context = FakeContext(ReplyContext(TURNS, [MOTHS]))
    history, memories = FakeHistory([]), FakeMemories()
    inference, model = make(context, history, memories)
    request = replace(REQUEST, content="  hello   there ", memory_limit=4, memory_threshold=0.3)
    finished = await finish(inference.generate_reply(request))
    assert context.asked == [
        ReplyContextQuery(
            channel_id="chan-1",
            personality_id="p-1",
            history_limit=30,
            user_id=USER,
            query="hello there",
            memory_limit=4,
            threshold=0.3,
            query_author="Ann",  # the user's turn is stored under the request's author name
        )
    ]
    assert (history.calls, memories.asked) == ([], [])
    assert finished.report.history_turns == 2
    assert finished.report.memory_ids == ("m-1",)
    assert finished.report.degraded == ()
    prompt = str(model.calls[0]["messages"])
    assert "Ann is afraid of moths." in prompt
    assert "Bob: yo" in prompt


async def test_a_group_reads_the_whole_channel_and_sees_it_as_this_personality() -> None:
    sage = HistoryTurn("assistant", "Sage", "Hm.", created_at=STAMP, personality_id="p-sage")
    context = FakeContext(ReplyContext([*TURNS, sage], []))
    inference, model = make(context)
    group = (GroupMember("p-1", "Lilith"), GroupMember("p-sage", "Sage"))
    await finish(inference.generate_reply(replace(REQUEST, group=group)))
    assert context.asked[0].whole_channel
    assert "Sage: Hm." in str(model.calls[0]["messages"])  # another's answer, attributed


async def test_a_failed_search_degrades_the_answer_not_the_history() -> None:
    before = degraded("memory_unavailable")
    inference, _ = make(FakeContext(ReplyContext(TURNS, [], memories_unavailable=True)))
    with structlog.testing.capture_logs() as logs:
        finished = await finish(inference.generate_reply(REQUEST))
    assert finished.content
    assert finished.report.history_turns == 2
    assert finished.report.degraded == ("memory_unavailable",)
    assert degraded("memory_unavailable") - before == 1
    assert [e["log_level"] for e in logs if e["event"] == "memory.unavailable"] == ["warning"]


async def test_memory_down_degrades_history_and_memories() -> None:
    before = degraded("memory_unavailable"), degraded("history_unavailable")
    inference, _ = make(FakeContext(Unavailable("memory is restarting")))
    with structlog.testing.capture_logs() as logs:
        finished = await finish(inference.generate_reply(REQUEST))
    assert finished.content
    assert finished.report.history_turns == 0
    assert set(finished.report.degraded) == {"history_unavailable", "memory_unavailable"}
    assert (degraded("memory_unavailable"), degraded("history_unavailable")) == (
        before[0] + 1,
        before[1] + 1,
    )
    events = {e["event"]: e for e in logs}
    assert events["history.unavailable"]["code"] == "UNAVAILABLE"
    assert events["memory.unavailable"]["code"] == "UNAVAILABLE"


async def test_a_scheduled_turn_finds_its_query_in_the_history_first() -> None:
    context = FakeContext(ReplyContext([], []))
    history, memories = FakeHistory(TURNS), FakeMemories()
    inference, _ = make(context, history, memories)
    request = replace(REQUEST, content="", directive="Say something to the room.")
    finished = await finish(inference.generate_reply(request))
    assert context.asked == []
    assert history.calls == [("chan-1", "p-1", 30)]
    assert [q["query"] for q in memories.asked] == ["Greetings."]
    assert memories.asked[0]["exclude_after"] == STAMP
    assert finished.report.memory_ids == ("m-1",)


class WholeChannelHistory(FakeHistory):
    """Also records whether the whole channel was asked for."""

    def __init__(self, turns: list[HistoryTurn]) -> None:
        super().__init__(turns)
        self.whole_channel: list[bool] = []

    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[HistoryTurn]:
        self.whole_channel.append(whole_channel)
        return await super().recent_turns(channel_id, personality_id, limit)


async def test_a_shared_turn_reads_the_channel_and_only_shared_memories() -> None:
    """A scheduled turn said in public (free will, a chain reply): the payer's key pays, but
    neither the payer's own memories nor their persona reach the prompt, and the history is
    the whole channel's (another personality's answer attributed), even outside a group."""
    sage = HistoryTurn("assistant", "Sage", "Hm.", created_at=STAMP, personality_id="p-sage")
    history, memories = WholeChannelHistory([*TURNS, sage]), FakeMemories()
    inference, model = make(FakeContext(ReplyContext([], [])), history, memories)
    request = replace(
        REQUEST,
        content="",
        directive="Say something to the room.",
        shared_context=True,
        persona=Persona(name="Ann", description="Ann lives at 12 Elm Street."),
    )
    await finish(inference.generate_reply(request))
    assert history.whole_channel == [True]
    assert [q["user_id"] for q in memories.asked] == [""]  # the personality's shared lore only
    assert model.calls[0]["api_key"] == "sk-userKEYzq7Wm3Xv9Rt2"  # still the payer's key
    prompt = str(model.calls[0]["messages"])
    assert "Sage: Hm." in prompt
    assert "Elm Street" not in prompt


async def test_without_a_channel_only_memories_are_asked() -> None:
    context, memories = FakeContext(ReplyContext(TURNS, [MOTHS])), FakeMemories()
    inference, _ = make(context, memories=memories)
    finished = await finish(inference.generate_reply(replace(REQUEST, channel_id="")))
    assert context.asked == []
    assert [q["query"] for q in memories.asked] == ["hello"]
    assert finished.report.history_turns == 0

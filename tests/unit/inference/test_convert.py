"""Proto <-> domain mappings."""

from datetime import UTC, datetime

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.inference import convert
from tzurot.inference.domain import (
    HistoryTurn,
    MemoryItem,
    PromptReport,
    ReplyContext,
    ReplyFinished,
    TextDelta,
    TokenUsage,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import memory_pb2 as mem


def test_reply_request() -> None:
    params = struct_pb2.Struct()
    params.update({"temperature": 0.5, "stop": ["x"]})
    request = convert.reply_request(
        inf.GenerateReplyRequest(
            job_id="j",
            user_id="u",
            actor=common.Actor(user_id="d:1", display_name="Ann"),
            location=common.Location(channel_id="c"),
            personality=common.Personality(
                id="p",
                display_name="Lilith",
                system_prompt="sp",
                character=common.CharacterFields(scenario="sc", post_history_instructions="ph"),
            ),
            config=common.ResolvedLlmConfig(
                config=common.LlmConfig(
                    provider="openai", model="m", free_use=True, advanced_parameters=params
                )
            ),
            content="hi",
            timezone="UTC",
            max_history_messages=7,
        )
    )
    assert (request.author_name, request.channel_id, request.content) == ("Ann", "c", "hi")
    assert (request.character.id, request.character.scenario) == ("p", "sc")
    assert request.character.post_history_instructions == "ph"
    assert (request.model.provider, request.model.model, request.model.free_use) == (
        "openai",
        "m",
        True,
    )
    assert request.model.advanced_parameters == {"temperature": 0.5, "stop": ["x"]}
    assert (request.timezone, request.max_history_messages) == ("UTC", 7)


def test_empty_config_has_no_parameters() -> None:
    request = convert.reply_request(inf.GenerateReplyRequest())
    assert request.model.advanced_parameters == {}


def test_history_turn_roles() -> None:
    turn = common.Turn(role=common.ROLE_ASSISTANT, author_name="L", content="x")
    assert convert.history_turn(turn) == HistoryTurn("assistant", "L", "x")
    assert convert.history_turn(common.Turn(role=common.ROLE_UNSPECIFIED, content="x")) is None


def test_reply_events() -> None:
    assert convert.reply_event(TextDelta("a")).chunk.text == "a"
    finished = convert.reply_event(
        ReplyFinished(
            content="abc",
            provider="openai",
            model="m",
            usage=TokenUsage(3, 4),
            finish_reason="length",
            report=PromptReport(
                prompt_tokens_estimate=9,
                history_turns=2,
                key_source="system",
                user_key_providers=("openai",),
                refused_key_providers=("brave",),
            ),
        )
    ).finished
    assert (finished.content, finished.finish_reason) == ("abc", "length")
    assert (finished.usage.provider, finished.usage.input_tokens) == ("openai", 3)
    assert (finished.report.history_turns, finished.report.key_source) == (2, "system")
    assert list(finished.report.user_key_providers) == ["openai"]
    assert list(finished.report.refused_key_providers) == ["brave"]


def test_reply_context_from_proto_golden() -> None:
    """Every field of every turn and memory: attachments' descriptions join the content,
    a turn without a known role is left out, an unset time is None."""
    stamp = Timestamp(seconds=1_735_787_045, nanos=600_001_999)
    at = datetime(2025, 1, 2, 3, 4, 5, 600_001, tzinfo=UTC)
    reply = mem.GetReplyContextResponse(
        turns=[
            common.Turn(
                id="t1",
                role=common.ROLE_USER,
                author_id="a1",
                author_name="Alice",
                content="look",
                message_ids=["m1", "m2"],
                created_at=stamp,
                personality_id="p",
                channel_id="c",
                job_id="j1",
                attachments=[
                    common.Attachment(url="u1", filename="cat.png", description="a cat"),
                    common.Attachment(url="u2"),
                    common.Attachment(url="u3", description="a dog"),
                ],
            ),
            common.Turn(role=common.ROLE_UNSPECIFIED, content="dropped"),
            common.Turn(
                role=common.ROLE_ASSISTANT,
                author_name="Lilith",
                content="nice",
                attachments=[common.Attachment(url="u4")],
                job_id="j1",
            ),
            common.Turn(role=common.ROLE_SYSTEM, content="note", created_at=stamp),
        ],
        memories=[
            common.Memory(id="m", text="likes cats", score=0.25, created_at=stamp),
            common.Memory(id="n", text="undated"),
        ],
        memories_unavailable=True,
    )
    assert convert.reply_context(reply) == ReplyContext(
        turns=[
            HistoryTurn(
                role="user",
                author_name="Alice",
                content="look\n[cat.png: a cat]\n[attachment: a dog]",
                author_id="a1",
                message_ids=("m1", "m2"),
                created_at=at,
                personality_id="p",
                job_id="j1",
            ),
            HistoryTurn(role="assistant", author_name="Lilith", content="nice", job_id="j1"),
            HistoryTurn(role="system", author_name="", content="note", created_at=at),
        ],
        memories=[
            MemoryItem(id="m", text="likes cats", score=0.25, created_at=at),
            MemoryItem(id="n", text="undated"),
        ],
        memories_unavailable=True,
    )
    assert convert.reply_context(mem.GetReplyContextResponse()) == ReplyContext([], [])

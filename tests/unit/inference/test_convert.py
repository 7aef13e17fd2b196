"""Proto <-> domain mappings."""

from google.protobuf import struct_pb2

from tzurot.inference import convert
from tzurot.inference.domain import (
    HistoryTurn,
    PromptReport,
    ReplyFinished,
    TextDelta,
    TokenUsage,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf


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

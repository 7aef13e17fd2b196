"""Proto <-> domain mappings for InferenceService (and the memory turns it reads)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from tzurot.inference import domain as d
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import inference_pb2 as inf

_ROLES: dict[int, d.Role] = {
    common.ROLE_USER: "user",
    common.ROLE_ASSISTANT: "assistant",
    common.ROLE_SYSTEM: "system",
}


def reply_request(msg: inf.GenerateReplyRequest) -> d.ReplyRequest:
    person, character = msg.personality, msg.personality.character
    config = msg.config.config
    return d.ReplyRequest(
        job_id=msg.job_id,
        user_id=msg.user_id,
        author_name=msg.actor.display_name,
        channel_id=msg.location.channel_id,
        character=d.Character(
            id=person.id,
            name=person.display_name,
            system_prompt=person.system_prompt,
            description=character.description,
            personality=character.personality,
            scenario=character.scenario,
            example_dialogues=character.example_dialogues,
            post_history_instructions=character.post_history_instructions,
        ),
        model=d.ModelChoice(
            provider=config.provider,
            model=config.model,
            advanced_parameters=_struct(config),
            free_use=config.free_use,
        ),
        content=msg.content,
        timezone=msg.timezone,
        max_history_messages=msg.max_history_messages,
    )


def _struct(config: common.LlmConfig) -> dict[str, Any]:
    if not config.HasField("advanced_parameters"):
        return {}
    parsed: dict[str, Any] = json_format.MessageToDict(config.advanced_parameters)
    return parsed


def history_turn(turn: common.Turn) -> d.HistoryTurn | None:
    """The turn as the prompt sees it; None for a turn without a known role."""
    role = _ROLES.get(turn.role)
    if role is None:
        return None
    return d.HistoryTurn(role=role, author_name=turn.author_name, content=turn.content)


def reply_event(event: d.ReplyEvent) -> inf.GenerateReplyResponse:
    if isinstance(event, d.TextDelta):
        return inf.GenerateReplyResponse(chunk=gw.TextChunk(text=event.text))
    return inf.GenerateReplyResponse(
        finished=inf.ReplyFinished(
            content=event.content,
            usage=common.Usage(
                provider=event.provider,
                model=event.model,
                input_tokens=event.usage.input_tokens,
                output_tokens=event.usage.output_tokens,
            ),
            finish_reason=event.finish_reason,
            report=inf.PromptReport(
                prompt_tokens_estimate=event.report.prompt_tokens_estimate,
                history_turns=event.report.history_turns,
                key_source=event.report.key_source,
            ),
        )
    )

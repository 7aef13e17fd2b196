"""Proto <-> domain mappings for InferenceService (and the memory turns it reads)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format

from tzurot.inference import domain as d
from tzurot.inference.lore import convert as lore_convert
from tzurot.inference.lore.model import LoreInput
from tzurot.inference.skills.base import Skill
from tzurot.inference.speech import KeyCheck, VoiceSpec
from tzurot.inference.voice import SpeechBilled, SpeechResult
from tzurot.runtime.timestamps import to_datetime
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import memory_pb2 as mem

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
        author_id=msg.actor.user_id,
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
            author_note=character.author_note,
            author_note_depth=character.author_note_depth,
            nickname=person.card.nickname,
            birthday=person.birthday,
            cleanup_rules=tuple(
                d.CleanupRule(rule.pattern, rule.replacement) for rule in person.cleanup_rules
            ),
        ),
        model=d.ModelChoice(
            provider=config.provider,
            model=config.model,
            advanced_parameters=_struct(config),
            free_use=config.free_use,
            context_window=max(config.context_window, 0),
            max_referenced_messages=max(config.max_referenced_messages, 0),
        ),
        content=msg.content,
        group=tuple(d.GroupMember(m.personality_id, m.name) for m in msg.group.members),
        directive=msg.directive,
        message_ids=tuple(msg.message_ids),
        shared_context=msg.shared_context,
        replaces_job_id=msg.replaces_job_id,
        timezone=msg.timezone,
        max_history_messages=msg.max_history_messages,
        persona=_persona(msg) if msg.HasField("persona") else None,
        references=tuple(
            d.Reference(
                message_id=ref.message_id,
                author_name=ref.author_name,
                content=_with_descriptions(ref.content, ref.attachments),
                depth=ref.depth,
                author_id=ref.author_id,
                created_at=to_datetime(ref.created_at) if ref.HasField("created_at") else None,
            )
            for ref in msg.references
        ),
        attachments=tuple(attachment(a) for a in msg.attachments),
        mentions=tuple(
            d.Mention(kind=m.kind, name=m.name, description=m.description) for m in msg.mentions
        ),
        skills=tuple(person.skills),
        memory_threshold=msg.memory_threshold,
        memory_limit=max(msg.memory_limit, 0),
        include_reasoning=msg.include_reasoning,
        lore=_lore(msg) if msg.HasField("lore") and msg.lore.lorebooks else None,
    )


def _lore(msg: inf.GenerateReplyRequest) -> LoreInput:
    count, state = lore_convert.state(msg.lore.state)
    return LoreInput(books=lore_convert.books(msg.lore), message_count=count, state=state)


def _persona(msg: inf.GenerateReplyRequest) -> d.Persona:
    p = msg.persona
    return d.Persona(
        name=p.name, preferred_name=p.preferred_name, pronouns=p.pronouns, description=p.description
    )


def _with_descriptions(content: str, attachments: Iterable[common.Attachment]) -> str:
    notes = [
        f"[{a.filename or 'attachment'}: {a.description}]" for a in attachments if a.description
    ]
    return "\n".join([content, *notes]) if notes else content


def attachment(a: common.Attachment) -> d.AttachmentRef:
    return d.AttachmentRef(
        url=a.url,
        content_type=a.content_type,
        filename=a.filename,
        size_bytes=a.size_bytes,
        description=a.description,
    )


def attachment_proto(a: d.AttachmentRef) -> common.Attachment:
    return common.Attachment(
        url=a.url,
        content_type=a.content_type,
        filename=a.filename,
        size_bytes=a.size_bytes,
        description=a.description,
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
    attachments = turn.attachments
    return d.HistoryTurn(
        role=role,
        author_name=turn.author_name,
        content=_with_descriptions(turn.content, attachments) if attachments else turn.content,
        author_id=turn.author_id,
        message_ids=tuple(turn.message_ids),
        created_at=to_datetime(turn.created_at) if turn.HasField("created_at") else None,
        personality_id=turn.personality_id,
        job_id=turn.job_id,
    )


def reply_context(msg: mem.GetReplyContextResponse) -> d.ReplyContext:
    turns = [history_turn(turn) for turn in msg.turns]
    return d.ReplyContext(
        turns=[turn for turn in turns if turn is not None],
        memories=[memory_item(memory) for memory in msg.memories],
        memories_unavailable=msg.memories_unavailable,
    )


def memory_item(memory: common.Memory) -> d.MemoryItem:
    return d.MemoryItem(
        id=memory.id,
        text=memory.text,
        score=memory.score,
        created_at=to_datetime(memory.created_at) if memory.HasField("created_at") else None,
    )


def skill_info(skill: Skill) -> common.SkillInfo:
    return common.SkillInfo(
        name=skill.name,
        description=skill.description,
        parameters_json=json.dumps(dict(skill.parameters), separators=(",", ":")),
        stealth=skill.stealth,
        auto_memorize=skill.auto_memorize,
    )


def skill_step(step: d.SkillStep) -> common.SkillStep:
    return common.SkillStep(
        step=step.step,
        skill=step.skill,
        arguments=step.arguments,
        summary=step.summary,
        duration_ms=step.duration_ms,
        ok=step.ok,
        stealth=step.stealth,
    )


def generated_file(file: d.GeneratedFile) -> common.GeneratedFile:
    return common.GeneratedFile(
        filename=file.filename,
        content_type=file.content_type,
        data=file.data,
        description=file.description,
    )


def paid_call(paid: d.PaidCall) -> common.Usage:
    return common.Usage(
        provider=paid.provider,
        model=paid.model,
        input_tokens=paid.usage.input_tokens,
        output_tokens=paid.usage.output_tokens,
        images=paid.usage.images,
        request_type=paid.request_type,
        audio_seconds=paid.audio_seconds,
        estimated=paid.estimated,
    )


def failed_call(paid: d.PaidCall) -> common.Usage:
    """A call paid, not delivered (Usage.failed): a helper RPC's call cut off once sent."""
    usage = paid_call(paid)
    usage.failed = True
    return usage


def cut_off_detail(cut_off: Iterable[d.PaidCall]) -> inf.UsageSpent | None:
    """The status detail a helper RPC's error carries (TzurotError.attach): its calls that
    failed once their request went out, estimated; None when there were none."""
    usage = [failed_call(p) for p in cut_off]
    return inf.UsageSpent(usage=usage, failed=True) if usage else None


def reply_event(event: d.ReplyEvent) -> inf.GenerateReplyResponse:
    if isinstance(event, d.TextDelta):
        return inf.GenerateReplyResponse(chunk=gw.TextChunk(text=event.text))
    if isinstance(event, d.AttachmentRead):
        return inf.GenerateReplyResponse(
            attachment_read=inf.AttachmentRead(
                index=event.index,
                attachment=attachment_proto(event.attachment),
                usage=[paid_call(p) for p in event.paid],
                refused_key_providers=list(event.refused_key_providers),
            )
        )
    if isinstance(event, d.SkillActivity):
        return inf.GenerateReplyResponse(
            activity=common.SkillActivity(skill=event.skill, step=event.step)
        )
    if isinstance(event, d.UsageSpent):
        return inf.GenerateReplyResponse(
            usage_spent=inf.UsageSpent(
                usage=[paid_call(p) for p in event.paid],
                failed=event.failed,
                all_rounds=event.all_rounds,
            )
        )
    if isinstance(event, d.PromptSent | d.RoundsBilled | d.KeyRefused | d.HelperCallPending):
        return _said_on_the_way(event)
    return inf.GenerateReplyResponse(
        finished=inf.ReplyFinished(
            content=event.content,
            usage=common.Usage(
                provider=event.provider,
                model=event.model,
                input_tokens=event.usage.input_tokens,
                output_tokens=event.usage.output_tokens,
                images=event.usage.images,
                estimated=event.usage.estimated,
            ),
            finish_reason=event.finish_reason,
            reasoning=event.reasoning,
            report=inf.PromptReport(
                prompt_tokens_estimate=event.report.prompt_tokens_estimate,
                history_turns=event.report.history_turns,
                key_source=event.report.key_source,
                user_key_providers=event.report.user_key_providers,
                refused_key_providers=event.report.refused_key_providers,
                memory_ids=event.report.memory_ids,
                referenced_message_ids=event.report.referenced_message_ids,
                lore=[
                    *(lore_convert.activation_proto(a, dropped=False) for a in event.report.lore),
                    *(
                        lore_convert.activation_proto(a, dropped=True)
                        for a in event.report.lore_dropped
                    ),
                ],
                memories=[common.MemoryNote(id=m.id, text=m.text) for m in event.report.memories],
                degraded=event.report.degraded,
                skill_steps=[skill_step(s) for s in event.report.skill_steps],
            ),
            attachments=[attachment_proto(a) for a in event.attachments],
            user_content=event.user_content,
            lore_state=None
            if event.lore is None
            else lore_convert.state_proto(event.lore.message_count, event.lore.state),
            files=[generated_file(f) for f in event.files],
        )
    )


def _said_on_the_way(
    event: d.PromptSent | d.RoundsBilled | d.KeyRefused | d.HelperCallPending,
) -> inf.GenerateReplyResponse:
    """What the reply says before its end for a caller that asked (server._accepts): the
    answer's progress, a wallet key refused, helper calls the provider has."""
    if isinstance(event, d.KeyRefused):
        return inf.GenerateReplyResponse(key_refused=inf.KeyRefused(provider=event.provider))
    if isinstance(event, d.HelperCallPending):
        return inf.GenerateReplyResponse(
            helper_call_pending=inf.HelperCallPending(
                index=event.index, calls=[paid_call(p) for p in event.calls]
            )
        )
    return _answer_progress(event)


def transcription_pending(event: d.HelperCallPending) -> inf.GenerateReplyResponse:
    """`event` for a caller that reads only TranscriptionPending (an older gateway): its
    transcription, or none (taken back, or another kind of call: nothing to keep)."""
    heard = next((p for p in event.calls if p.request_type == d.TRANSCRIPTION), None)
    return inf.GenerateReplyResponse(
        transcription_pending=inf.TranscriptionPending(
            index=event.index, estimate=None if heard is None else paid_call(heard)
        )
    )


def _answer_progress(event: d.PromptSent | d.RoundsBilled) -> inf.GenerateReplyResponse:
    """A request the provider began answering, or the rounds billed so far: what the
    gateway counts on a cancel."""
    if isinstance(event, d.PromptSent):
        return inf.GenerateReplyResponse(
            prompt_sent=inf.PromptSent(
                provider=event.provider, model=event.model, input_tokens=event.input_tokens
            )
        )
    return inf.GenerateReplyResponse(
        rounds_billed=inf.RoundsBilled(
            usage=common.Usage(
                provider=event.provider,
                model=event.model,
                input_tokens=event.usage.input_tokens,
                output_tokens=event.usage.output_tokens,
                estimated=event.usage.estimated,
            )
        )
    )


def voice_spec(msg: common.VoiceConfig) -> VoiceSpec:
    return VoiceSpec(
        provider=msg.provider,
        voice_id=msg.voice_id,
        model=msg.model,
        stability=msg.stability if msg.HasField("stability") else None,
        similarity_boost=msg.similarity_boost if msg.HasField("similarity_boost") else None,
        style=msg.style if msg.HasField("style") else None,
        speed=msg.speed if msg.HasField("speed") else None,
    )


def speech_finished(result: SpeechResult) -> common.SpeechFinished:
    return common.SpeechFinished(
        content_type=result.content_type,
        size_bytes=result.size_bytes,
        duration_secs=result.duration_secs,
        waveform=result.waveform,
        characters=result.characters,
        stand_in_voice=result.stand_in_voice,
    )


def speech_billed(billed: SpeechBilled) -> inf.SpeechBilled:
    return inf.SpeechBilled(
        provider=billed.provider, model=billed.model, characters=billed.characters
    )


def key_check(check: KeyCheck) -> inf.ValidateKeyResponse:
    """A proven key: the voices it lists, or what its restriction was seen to lack."""
    reply = inf.ValidateKeyResponse(model_count=check.voices)
    if check.restricted:
        reply.restriction.CopyFrom(common.KeyRestriction(missing_permissions=check.missing))
    return reply


def said_text(turn: common.Turn) -> str:
    """What a turn said: its content and its attachments' descriptions."""
    parts = [turn.content.strip()]
    parts += [a.description.strip() for a in turn.attachments if a.description.strip()]
    return " ".join(part for part in parts if part)

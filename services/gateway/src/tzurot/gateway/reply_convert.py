"""Gateway -> inference: the reply request, and the events of inference's reply stream (its
chunks, paid calls, progress, refused keys and the finished answer with its report)."""

from __future__ import annotations

from tzurot.gateway import domain as d
from tzurot.gateway import lore_convert
from tzurot.gateway.message_convert import attachment, attachment_proto, referenced_message_proto
from tzurot.gateway.personality_convert import CONFIG_SOURCE, llm_config, personality
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import inference_pb2 as inf


def reply_request(r: d.ReplyRequest) -> inf.GenerateReplyRequest:
    return inf.GenerateReplyRequest(
        job_id=r.job_id,
        user_id=r.user_id,
        actor=common.Actor(user_id=r.actor.platform_user_id, display_name=r.actor.display_name),
        location=common.Location(
            guild_id=r.location.guild_id,
            channel_id=r.location.conversation_id,
            thread_id=r.location.thread_id,
            nsfw_channel=r.location.nsfw_channel,
        ),
        personality=personality(r.personality),
        config=common.ResolvedLlmConfig(
            config=llm_config(r.config.config), source=CONFIG_SOURCE[r.config.source]
        ),
        content=r.content,
        references=[referenced_message_proto(m) for m in r.references],
        attachments=[attachment_proto(a) for a in r.attachments],
        timezone=r.timezone,
        max_history_messages=r.max_history_messages,
        include_reasoning=r.keep_reasoning,
        persona=None
        if r.persona is None
        else gw.Persona(
            name=r.persona.name,
            preferred_name=r.persona.preferred_name,
            pronouns=r.persona.pronouns,
            description=r.persona.description,
        ),
        memory_threshold=r.memory_threshold,
        memory_limit=r.memory_limit,
        mentions=[
            inf.MentionedEntity(kind=m.kind, id=m.id, name=m.name, description=m.description)
            for m in r.mentions
        ],
        lore=None if r.lore is None else lore_convert.lore_context(r.lore),
        group=inf.GroupContext(
            members=[inf.GroupMember(personality_id=m.personality_id, name=m.name) for m in r.group]
        )
        if r.group
        else None,
        directive=r.directive,
        message_ids=list(r.message_ids),
        shared_context=r.shared_context,
        replaces_job_id=r.replaces_job_id,
        accepts_usage_spent=True,
        accepts_answer_progress=True,
        accepts_key_refused=True,
        accepts_transcription_pending=True,  # what an inference without the next sends
        accepts_helper_call_pending=True,
    )


def known_reply_event(msg: inf.GenerateReplyResponse) -> bool:
    """Whether this gateway knows the event: one a newer inference added is skipped, never
    read as the finished answer (`reply_event` reads anything else as `finished`)."""
    return msg.WhichOneof("event") is not None


def _usage_of(u: common.Usage) -> d.Usage:
    """The domain usage of a call inference reports (its answer's, a paid call's, a round's);
    `failed` is said by the event carrying it (UsageSpent.failed)."""
    return d.Usage(
        provider=u.provider,
        model=u.model,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        images=u.images,
        request_type=u.request_type,
        audio_seconds=u.audio_seconds,
        estimated=u.estimated,  # never set by an older inference
    )


def usage_spent(spent: inf.UsageSpent) -> d.UsageSpent:
    return d.UsageSpent(
        paid=tuple(_usage_of(u) for u in spent.usage),
        failed=spent.failed,
        all_rounds=spent.all_rounds,
    )


def cut_off_usage(err: TzurotError) -> d.UsageSpent | None:
    """What a helper RPC (ExtractFacts) that failed was billed before it did, from its
    status details (inference's UsageSpent, failed, estimated); None from an older inference
    or a call never sent."""
    spent = err.detail(inf.UsageSpent)
    return None if spent is None else usage_spent(spent)


def reply_event(msg: inf.GenerateReplyResponse) -> d.ReplyEvent:
    if msg.HasField("chunk"):
        return d.ReplyChunk(msg.chunk.text)
    if msg.HasField("activity"):
        return d.SkillActivity(skill=msg.activity.skill, step=msg.activity.step)
    if msg.HasField("usage_spent"):
        return usage_spent(msg.usage_spent)
    if msg.WhichOneof("event") in (
        "prompt_sent",
        "rounds_billed",
        "key_refused",
        "transcription_pending",
        "helper_call_pending",
    ):
        return _said_on_the_way(msg)
    if msg.HasField("attachment_read"):
        read = msg.attachment_read
        return d.AttachmentRead(
            index=read.index,
            attachment=attachment(read.attachment),
            paid=tuple(_usage_of(u) for u in read.usage),
            refused_key_providers=tuple(read.refused_key_providers),
        )
    fin = msg.finished
    return d.ReplyFinished(
        content=fin.content,
        usage=_usage_of(fin.usage),
        finish_reason=fin.finish_reason,
        reasoning=fin.reasoning,
        report=prompt_report(fin.report) if fin.HasField("report") else None,
        attachments=tuple(attachment(a) for a in fin.attachments),
        user_content=fin.user_content,
        lore_state=lore_convert.lore_state(fin.lore_state) if fin.HasField("lore_state") else None,
        files=tuple(
            d.GeneratedFile(f.filename, f.content_type, f.data, f.description) for f in fin.files
        ),
    )


def _said_on_the_way(
    msg: inf.GenerateReplyResponse,
) -> d.PromptSent | d.RoundsBilled | d.KeyRefused | d.HelperCallPending:
    """What inference says before the reply ends: its progress and the helper calls the
    provider has (kept for a cancel; an older inference's transcription alone), a wallet key
    refused (marked inactive at once)."""
    if msg.HasField("key_refused"):
        return d.KeyRefused(provider=msg.key_refused.provider)
    if msg.HasField("helper_call_pending"):
        pending = msg.helper_call_pending
        return d.HelperCallPending(pending.index, tuple(_usage_of(u) for u in pending.calls))
    if msg.HasField("transcription_pending"):
        heard = msg.transcription_pending
        estimate = (_usage_of(heard.estimate),) if heard.HasField("estimate") else ()
        return d.HelperCallPending(heard.index, estimate)
    return _answer_progress(msg)


def _answer_progress(msg: inf.GenerateReplyResponse) -> d.PromptSent | d.RoundsBilled:
    """A request inference sent, or its rounds billed so far: kept for a cancel."""
    if msg.HasField("prompt_sent"):
        sent = msg.prompt_sent
        return d.PromptSent(sent.provider, sent.model, sent.input_tokens)
    return d.RoundsBilled(_usage_of(msg.rounds_billed.usage))


def prompt_report(msg: inf.PromptReport) -> d.PromptReport:
    return d.PromptReport(
        prompt_tokens_estimate=msg.prompt_tokens_estimate,
        history_turns=msg.history_turns,
        memory_ids=tuple(msg.memory_ids),
        referenced_message_ids=tuple(msg.referenced_message_ids),
        key_source=msg.key_source,
        lore=tuple(lore_convert.lore_activation(a) for a in msg.lore),
        memories=tuple(d.MemoryNote(id=m.id, text=m.text) for m in msg.memories),
        degraded=tuple(msg.degraded),
        user_key_providers=tuple(msg.user_key_providers),
        refused_key_providers=tuple(msg.refused_key_providers),
        skill_steps=tuple(
            d.SkillStep(
                step=s.step,
                skill=s.skill,
                arguments=s.arguments,
                summary=s.summary,
                duration_ms=s.duration_ms,
                ok=s.ok,
                stealth=s.stealth,
            )
            for s in msg.skill_steps
        ),
    )

"""Proto <-> domain mappings for gateway's own API and the services it calls."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.gateway import domain as d
from tzurot.gateway import lore_convert
from tzurot.gateway.imports import ImportFormat
from tzurot.gateway.key_uses import taken_after
from tzurot.runtime.errors import InvalidArgument, TzurotError
from tzurot.runtime.timestamps import to_timestamp
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import keyvault_pb2 as kv

_JOB_STATUS = {
    d.JobStatus.QUEUED: common.JOB_STATUS_QUEUED,
    d.JobStatus.RUNNING: common.JOB_STATUS_RUNNING,
    d.JobStatus.STREAMED: common.JOB_STATUS_STREAMED,
    d.JobStatus.DELIVERED: common.JOB_STATUS_DELIVERED,
    d.JobStatus.FAILED: common.JOB_STATUS_FAILED,
}
CONFIG_SOURCE = {
    d.ConfigSource.HARDCODED: common.CONFIG_SOURCE_HARDCODED,
    d.ConfigSource.GLOBAL: common.CONFIG_SOURCE_GLOBAL,
    d.ConfigSource.PERSONALITY: common.CONFIG_SOURCE_PERSONALITY,
    d.ConfigSource.CHANNEL: common.CONFIG_SOURCE_CHANNEL,
    d.ConfigSource.USER: common.CONFIG_SOURCE_USER,
    d.ConfigSource.USER_PERSONALITY: common.CONFIG_SOURCE_USER_PERSONALITY,
}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    return to_timestamp(value)


# ---- requests into gateway ----


def actor(msg: common.Actor) -> d.Actor:
    return d.Actor(platform_user_id=msg.user_id, display_name=msg.display_name or msg.user_id)


def location(msg: common.Location) -> d.Location:
    return d.Location(
        guild_id=msg.guild_id,
        channel_id=msg.channel_id,
        thread_id=msg.thread_id,
        nsfw_channel=msg.nsfw_channel,
    )


def attachment(msg: common.Attachment) -> d.Attachment:
    return d.Attachment(
        url=msg.url,
        content_type=msg.content_type,
        filename=msg.filename,
        size_bytes=msg.size_bytes,
        description=msg.description,
    )


def referenced_message(msg: common.ReferencedMessage) -> d.ReferencedMessage:
    return d.ReferencedMessage(
        message_id=msg.message_id,
        author_id=msg.author_id,
        author_name=msg.author_name,
        content=msg.content,
        created_at=msg.created_at.ToDatetime(tzinfo=UTC) if msg.HasField("created_at") else None,
        attachments=tuple(attachment(a) for a in msg.attachments),
        depth=msg.depth,
    )


def generate_command(req: gw.GenerateRequest) -> d.GenerateCommand:
    return d.GenerateCommand(
        actor=actor(req.actor),
        location=location(req.location),
        personality=req.personality,
        content=req.content,
        idempotency_key=req.idempotency_key,
        message_ids=tuple(req.message_ids),
        references=tuple(referenced_message(r) for r in req.references),
        attachments=tuple(attachment(a) for a in req.attachments),
        include_reasoning=req.include_reasoning,
        mentions=tuple(
            d.Mention(kind=m.kind, id=m.id, name=m.name, description=m.description)
            for m in req.mentions[:MAX_MENTIONS]
        ),
        turn_id=req.turn_id,
        round_id=req.round_id,
        replaces_job_id=req.replaces_job_id.strip(),
    )


MAX_MENTIONS = 20


# ---- replies from gateway ----


def personality(p: d.Personality) -> common.Personality:
    return common.Personality(
        id=p.id,
        slug=p.slug,
        display_name=p.display_name,
        aliases=list(p.aliases),
        avatar_url=p.avatar_url,
        system_prompt=p.system_prompt,
        character=common.CharacterFields(
            description=p.character.description,
            personality=p.character.personality,
            scenario=p.character.scenario,
            example_dialogues=p.character.example_dialogues,
            post_history_instructions=p.character.post_history_instructions,
            author_note=p.character.author_note,
            author_note_depth=p.character.author_note_depth,
        ),
        cleanup_rules=[
            common.CleanupRule(pattern=r.pattern, replacement=r.replacement)
            for r in p.cleanup_rules
        ],
        default_llm_config_id=p.default_llm_config_id or "",
        error_message=p.error_message,
        birthday=p.birthday,
        owner_user_id=p.owner_user_id or "",
        public=p.public,
        nsfw=p.nsfw,
        voice_id=p.voice_id,
        skills=list(p.skills),
        created_at=timestamp(p.created_at),
        updated_at=timestamp(p.updated_at),
        card=lore_convert.character_card(p.card),
        custom_fields=lore_convert.struct(p.custom_fields),
        suppress_embeds=p.suppress_embeds,
    )


def usage(u: d.Usage | None) -> common.Usage | None:
    if u is None:
        return None
    return common.Usage(
        provider=u.provider,
        model=u.model,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        images=u.images,
    )


def skill_step(s: d.SkillStep) -> common.SkillStep:
    return common.SkillStep(
        step=s.step,
        skill=s.skill,
        arguments=s.arguments,
        summary=s.summary,
        duration_ms=s.duration_ms,
        ok=s.ok,
        stealth=s.stealth,
    )


def generated_file(f: d.GeneratedFile) -> common.GeneratedFile:
    return common.GeneratedFile(
        filename=f.filename, content_type=f.content_type, data=f.data, description=f.description
    )


def skill_info(s: d.SkillInfo) -> common.SkillInfo:
    return common.SkillInfo(
        name=s.name,
        description=s.description,
        parameters_json=s.parameters_json,
        stealth=s.stealth,
        auto_memorize=s.auto_memorize,
    )


def skill_info_in(msg: common.SkillInfo) -> d.SkillInfo:
    return d.SkillInfo(
        name=msg.name,
        description=msg.description,
        parameters_json=msg.parameters_json,
        stealth=msg.stealth,
        auto_memorize=msg.auto_memorize,
    )


def generate_event(event: d.GenerateEvent) -> gw.GenerateResponse:
    if isinstance(event, d.JobAccepted):
        return gw.GenerateResponse(
            accepted=gw.JobAccepted(
                job_id=event.job_id,
                personality=personality(event.personality),
                replayed=event.replayed,
                replacing=event.replacing,
            )
        )
    if isinstance(event, d.ReplyChunk):
        return gw.GenerateResponse(chunk=gw.TextChunk(text=event.text))
    if isinstance(event, d.SkillActivity):
        return gw.GenerateResponse(
            activity=common.SkillActivity(skill=event.skill, step=event.step)
        )
    return gw.GenerateResponse(
        finished=gw.GenerationFinished(
            job_id=event.job_id,
            content=event.content,
            usage=usage(event.usage),
            finish_reason=event.finish_reason,
            reasoning=event.reasoning,
            footer=event.footer,
            files=[generated_file(f) for f in event.files],
            speak=event.speak,
        )
    )


def job(j: d.Job, context: d.JobContext | None = None) -> gw.Job:
    """The job; with `context`, what informed its answer (Job.inspection)."""
    return gw.Job(
        id=j.id,
        idempotency_key=j.idempotency_key,
        status=_JOB_STATUS[j.status],
        personality_id=j.personality_id,
        user_id=j.user_id,
        channel_id=j.channel_id,
        attempts=j.attempts,
        content=j.content,
        usage=usage(j.usage),
        error=None
        if j.error is None
        else gw.JobError(code=j.error.code, message=j.error.message, reason=j.error.reason),
        created_at=timestamp(j.created_at),
        started_at=timestamp(j.started_at),
        finished_at=timestamp(j.finished_at),
        delivered_at=timestamp(j.delivered_at),
        inspection=None if context is None else job_inspection(context),
        author_id=j.author_id,
        request_message_ids=list(j.request_message_ids),
        delivered_message_ids=list(j.delivered_message_ids),
        preview_message_ids=list(j.preview_message_ids),
    )


def unfinished_answer(
    u: d.UnfinishedAnswer, personality: common.Personality | None
) -> gw.UnfinishedAnswer:
    return gw.UnfinishedAnswer(
        job_id=u.job_id,
        personality=personality,
        content=u.content,
        preview_message_ids=list(u.preview_message_ids),
        failed_reason=u.failed_reason,
        failed_message=u.failed_message,
        replaced_message_ids=list(u.replaced_message_ids),
        reply_header=u.reply_header,
    )


def job_inspection(c: d.JobContext) -> gw.JobInspection:
    report = c.report or d.PromptReport()
    return gw.JobInspection(
        memory_ids=list(report.memory_ids),
        referenced_message_ids=list(report.referenced_message_ids),
        history_turns=report.history_turns,
        key_source=report.key_source,
        prompt_tokens_estimate=report.prompt_tokens_estimate,
        reasoning=c.reasoning,
        lore=[lore_convert.lore_activation_proto(a) for a in report.lore],
        memories=[common.MemoryNote(id=m.id, text=m.text) for m in report.memories],
        degraded=list(report.degraded),
        skill_steps=[skill_step(s) for s in report.skill_steps],
    )


def wallet_key(k: d.WalletKey) -> gw.WalletKey:
    return gw.WalletKey(
        provider=k.provider,
        active=k.active,
        created_at=timestamp(k.created_at),
        last_used_at=timestamp(k.last_used_at),
        hint=k.hint,
    )


def key_restriction(r: d.KeyRestriction | None) -> common.KeyRestriction | None:
    return None if r is None else common.KeyRestriction(missing_permissions=r.missing_permissions)


def key_check(reply: inf.ValidateKeyResponse) -> d.KeyCheck:
    """Inference's verdict on a key: what it sees and, when present, its restriction."""
    restriction = (
        d.KeyRestriction(tuple(reply.restriction.missing_permissions))
        if reply.HasField("restriction")
        else None
    )
    return d.KeyCheck(
        models=reply.model_count,
        restriction=restriction,
        unchecked=reply.unchecked,
        billed_requests=reply.billed_requests,
    )


# ---- gateway -> inference ----


def llm_config(c: d.LlmConfig) -> common.LlmConfig:
    msg = common.LlmConfig(
        id=c.id,
        name=c.name,
        provider=c.provider,
        model=c.model,
        owner_user_id=c.owner_user_id or "",
        context_window=c.context_window,
        max_referenced_messages=c.max_referenced_messages,
        free_use=c.free_use,
        description=c.description,
    )
    json_format.ParseDict(dict(c.advanced_parameters), msg.advanced_parameters)
    return msg


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
        references=[_referenced_message_proto(m) for m in r.references],
        attachments=[attachment_proto(a) for a in r.attachments],
        timezone=r.timezone,
        max_history_messages=r.max_history_messages,
        include_reasoning=r.include_reasoning,
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
    if msg.WhichOneof("event") in ("prompt_sent", "rounds_billed", "key_refused"):
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
) -> d.PromptSent | d.RoundsBilled | d.KeyRefused:
    """What inference says before the reply ends: its progress (kept for a cancel), a
    wallet key refused (marked inactive at once)."""
    if msg.HasField("key_refused"):
        return d.KeyRefused(provider=msg.key_refused.provider)
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


def attachment_proto(a: d.Attachment) -> common.Attachment:
    return common.Attachment(
        url=a.url,
        content_type=a.content_type,
        filename=a.filename,
        size_bytes=a.size_bytes,
        description=a.description,
    )


def _referenced_message_proto(m: d.ReferencedMessage) -> common.ReferencedMessage:
    return common.ReferencedMessage(
        message_id=m.message_id,
        author_id=m.author_id,
        author_name=m.author_name,
        content=m.content,
        created_at=timestamp(m.created_at),
        attachments=[attachment_proto(a) for a in m.attachments],
        depth=m.depth,
    )


# ---- keyvault ----


def key_use(use: d.KeyUse) -> kv.KeyUse:
    return kv.KeyUse(
        user_id=use.user_id,
        provider=use.provider,
        used_at=timestamp(use.used_at),
        rejected=use.rejected,
        # Only the key read at or after it, never one the user stored since (unset: any).
        taken_after=timestamp(taken_after(use)),
    )


def key_record(rec: kv.KeyRecord) -> d.WalletKey:
    return d.WalletKey(
        provider=rec.provider,
        created_at=rec.created_at.ToDatetime(tzinfo=UTC) if rec.HasField("created_at") else None,
        last_used_at=rec.last_used_at.ToDatetime(tzinfo=UTC)
        if rec.HasField("last_used_at")
        else None,
        hint=rec.hint,
        rejected_at=rec.rejected_at.ToDatetime(tzinfo=UTC) if rec.HasField("rejected_at") else None,
        stored_at=rec.stored_at.ToDatetime(tzinfo=UTC) if rec.HasField("stored_at") else None,
    )


TURN_ROLES = {"user": common.ROLE_USER, "assistant": common.ROLE_ASSISTANT}


def exchange_turns(
    turns: Sequence[d.HistoryTurn], *, job_id: str, conversation_id: str, personality_id: str
) -> list[common.Turn]:
    """The turns of one delivered exchange, as memory's StoreExchange takes them."""
    return [
        common.Turn(
            role=TURN_ROLES[turn.role],
            author_id=turn.author_id,
            author_name=turn.author_name,
            content=turn.content,
            message_ids=list(turn.message_ids),
            personality_id=personality_id,
            channel_id=conversation_id,
            job_id=job_id,
            attachments=[attachment_proto(a) for a in turn.attachments],
        )
        for turn in turns
    ]


_IMPORT_FORMATS: dict[int, ImportFormat] = {
    gw.IMPORT_FORMAT_SEED_YAML: ImportFormat.SEED_YAML,
    gw.IMPORT_FORMAT_CHARACTER_CARD_JSON: ImportFormat.CHARACTER_CARD_JSON,
}


def import_format(value: int) -> ImportFormat:
    found = _IMPORT_FORMATS.get(int(value))
    if found is None:
        raise InvalidArgument(
            "format", "format is IMPORT_FORMAT_SEED_YAML or IMPORT_FORMAT_CHARACTER_CARD_JSON"
        )
    return found

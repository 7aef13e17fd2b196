"""Jobs and Generate's stream as gateway's API replies them: the job and what informed its
answer, its usage and files, an unfinished answer."""

from __future__ import annotations

from tzurot.gateway import domain as d
from tzurot.gateway import lore_convert
from tzurot.gateway.message_convert import timestamp
from tzurot.gateway.personality_convert import personality
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

_JOB_STATUS = {
    d.JobStatus.QUEUED: common.JOB_STATUS_QUEUED,
    d.JobStatus.RUNNING: common.JOB_STATUS_RUNNING,
    d.JobStatus.STREAMED: common.JOB_STATUS_STREAMED,
    d.JobStatus.DELIVERED: common.JOB_STATUS_DELIVERED,
    d.JobStatus.FAILED: common.JOB_STATUS_FAILED,
}


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
        footer=u.footer,
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

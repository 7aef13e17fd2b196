"""What inference is asked for a job, and what the user's settings add to its answer: the
request (lore and group from the turn's reads, attachments within the settings' limits),
reasoning kept for Inspect or shown with the answer, the footer (the model, the files left
unread for want of a key), whether the answer is spoken."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tzurot.gateway.attachment_reads import with_reads
from tzurot.gateway.domain import (
    ConfigSource,
    GenerateCommand,
    Job,
    JobContext,
    Location,
    Personality,
    ReplyFinished,
    ReplyRequest,
    Usage,
    User,
)
from tzurot.gateway.gateway_core import GatewayState, Prepared
from tzurot.gateway.settings import (
    KEEP_REASONING,
    MAX_AUDIO,
    MAX_HISTORY_MESSAGES,
    MAX_IMAGES,
    MEMORY_LIMIT,
    MEMORY_THRESHOLD,
    MODEL_FOOTER,
    SHOW_REASONING,
    ResolvedSetting,
    channel_ids,
    limit_attachments,
    set_at,
)
from tzurot.gateway.unread_files import UnreadFile, unread_files, unread_lines
from tzurot.gateway.voice import decide as decide_voice

FOOTER_SEPARATOR = " · "
"""Between the footer's parts (the model, each key a file wanted)."""


class ReplyRequests(GatewayState):
    """What a job asks of inference, and whether its answer is spoken."""

    async def _reply_request(
        self,
        job: Job,
        user: User,
        personality: Personality,
        command: GenerateCommand,
        prepared: Prepared,
        *,
        directive: str,
    ) -> ReplyRequest:
        """What inference is asked for this job (lore and group from the turn's reads).

        A scheduled turn (free will, a chain reply) is said in public to nobody: its payer
        only pays (`shared_context`), their persona and own memories stay out of it."""
        settings = prepared.settings
        scheduled = bool(command.turn_id)
        conversation = command.location.conversation_id
        context = prepared.context
        if context is not None:
            lore, group = context.lore, context.group
        else:
            lore = await self._store.lore_context(personality.id, conversation)
            group = await self.groups.members(command.location)
        return ReplyRequest(
            job_id=job.id,
            user_id=user.id,
            actor=command.actor,
            location=command.location,
            personality=personality,
            config=prepared.config,
            content=command.content,
            references=command.references,
            # Those read by a helper model on an earlier attempt go with that text: not paid twice.
            attachments=with_reads(
                limit_attachments(
                    command.attachments,
                    max_images=int(settings[MAX_IMAGES].value),
                    max_audio=int(settings[MAX_AUDIO].value),
                ),
                dict(job.attachment_reads),
            ),
            timezone=user.timezone,
            max_history_messages=int(settings[MAX_HISTORY_MESSAGES].value),
            keep_reasoning=keep_reasoning(command, prepared),
            persona=None if scheduled else prepared.persona,
            memory_threshold=float(settings[MEMORY_THRESHOLD].value),
            memory_limit=int(settings[MEMORY_LIMIT].value),
            mentions=command.mentions,
            lore=lore if lore.books else None,
            group=group,
            directive=directive,
            message_ids=command.message_ids,
            shared_context=scheduled,
            replaces_job_id=job.replaces_job_id,
        )

    async def _should_speak(
        self, personality: Personality, where: Location, prepared: Prepared
    ) -> bool:
        """Whether the answer will be spoken once delivered (tzurot.gateway.voice)."""
        context = prepared.context
        voice = await self._voices.voice(personality.id) if context is None else context.voice
        if voice is None:
            return False
        levels: Mapping[ConfigSource, dict[str, Any]]
        if context is None:
            levels = await self._admin_store.setting_levels(**channel_ids(where))
        else:
            levels = context.setting_levels
        return decide_voice(
            voice, prepared.settings, levels.get(ConfigSource.CHANNEL, {}), self._voice_rng
        )


def keep_reasoning(command: GenerateCommand, prepared: Prepared) -> bool:
    """Reasoning is kept for Inspect only when its user's own keep_reasoning setting is on
    (set for themselves: a value stored at another level before it became theirs alone is not
    applied, settings.YOURS_ALONE): kept reasoning may restate their memories and the prompt,
    and superusers can read it, so no client's request keeps it (show_reasoning only shows
    it). A scheduled turn (free will, a chain reply) is said to nobody: its payer's setting
    does not apply."""
    setting = prepared.settings[KEEP_REASONING]
    return not command.turn_id and set_at(setting) and bool(setting.value)


def shown_reasoning(finished: ReplyFinished, command: GenerateCommand, prepared: Prepared) -> str:
    """The reasoning the client shows with the answer (as a spoiler, never in history): when
    it asks (show_reasoning) or its user's own show_reasoning setting is on (set for
    themselves: a value at another level is not theirs, settings.YOURS_ALONE). A scheduled turn
    (free will, a chain reply) is said to nobody: its payer's setting does not apply."""
    setting = prepared.settings[SHOW_REASONING]
    asked = command.show_reasoning or (
        not command.turn_id and set_at(setting) and bool(setting.value)
    )
    return finished.reasoning if asked else ""


def footer(finished: ReplyFinished, prepared: Prepared, job: Job) -> str:
    """The line under the job's answer, as it is streamed (`footer_line`): the files unread
    found in what inference added to the request's content (`job.request_content`, what the
    client sent)."""
    unread = unread_files(
        job.request_content, finished.user_content, finished.attachments, job_id=job.id
    )
    return footer_line(finished.usage, unread, prepared.settings)


def stored_footer(job: Job, context: JobContext, settings: Mapping[str, ResolvedSetting]) -> str:
    """The same line for the job's stored answer, handed out again (a replay, a restarted
    bot's `unfinished`): rebuilt from the job's row, its context (`user_content` and files,
    job_context.py) and what was read of its files (`attachment_reads`), as the model from
    its usage."""
    unread = unread_files(
        job.request_content,
        context.user_content,
        context.attachments,
        dict(job.attachment_reads),
        job_id=job.id,
    )
    return footer_line(job.usage, unread, settings)


def footer_line(
    usage: Usage | None, unread: Sequence[UnreadFile], settings: Mapping[str, ResolvedSetting]
) -> str:
    """The line under an answer: the answering model, when the model_footer setting is on,
    then, whatever the setting, each file inference left unread for want of a key and which
    key reads it (unread_files.py), " · " between them: one line, as
    GenerationFinished.footer is."""
    parts = unread_lines(unread)
    if usage is not None and settings[MODEL_FOOTER].value:
        parts.insert(0, f"{usage.provider}/{usage.model}")
    return FOOTER_SEPARATOR.join(parts)
